"""The one rule turning a device preference (``auto``, ``cpu``, ``cuda``, ``cuda:N``) into a torch device."""

from __future__ import annotations

import torch


def resolve_device(preference: str = "auto", local_rank: int | None = None) -> torch.device:
    """``auto`` is CUDA when available, else CPU; ``cuda`` is this rank's GPU when ``local_rank`` is given.

    Refuses an unknown preference and CUDA on a machine without it.
    """
    if preference == "auto":
        preference = "cuda" if torch.cuda.is_available() else "cpu"
    if preference == "cpu":
        return torch.device("cpu")
    if preference != "cuda" and not preference.startswith("cuda:"):
        raise ValueError(f"unknown device {preference!r}; expected auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise ValueError(f"device {preference!r} requested but no CUDA device is available")
    if preference == "cuda" and local_rank is not None:
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device(preference)


def mixed_precision(device: torch.device) -> torch.dtype | None:
    """The autocast type for training on ``device``: bfloat16 where the GPU has it, else float16; CPU: None.

    Only the ResNet trunk runs in it: the RGA modules stay in float32 (``model.rga.RGAModule.forward``).
    """
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
