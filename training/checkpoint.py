"""Training checkpoints: the model payload of :func:`model.checkpoint_payload` plus resumable state.

``model.load_checkpoint`` reads the same files, so everything stored must load with ``weights_only``.
"""

# Keys added to the model payload: epoch (completed epochs), optimizer, scaler, scheduler, sampler,
# rng (torch, CUDA, numpy, python random), config (resolved recipe), dataset and metrics.

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import model
from model.files import atomic_write
from model.weights import MissingWeightsFileError, WeightsError, read_weights_file

CHECKPOINT_FILE = "epoch_{epoch:04d}.pt"
FINAL_CHECKPOINT = "final.pt"


class CheckpointError(ValueError):
    """Raised for a missing or unusable training checkpoint."""


def capture_rng_state() -> dict[str, Any]:
    """Snapshot of the torch, CUDA, numpy and python ``random`` generators (``weights_only``-safe)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {
            "version": version,
            "internal": torch.tensor(internal, dtype=torch.int64),
            "gauss": gauss_next,
        },
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore generators saved by :func:`capture_rng_state` (CUDA only when present and matching)."""
    torch.set_rng_state(state["torch"])
    saved = state["numpy"]
    keys = saved["keys"].numpy().astype(np.uint32)
    np.random.set_state((saved["kind"], keys, saved["pos"], saved["has_gauss"], saved["cached_gaussian"]))
    python = state["python"]
    random.setstate((python["version"], tuple(int(v) for v in python["internal"].tolist()), python["gauss"]))
    cuda_states = state.get("cuda")
    if (
        cuda_states is not None
        and torch.cuda.is_available()
        and len(cuda_states) == torch.cuda.device_count()
    ):
        torch.cuda.set_rng_state_all(cuda_states)


def restore_optimisation(
    state: dict[str, Any], net: nn.Module, optimizer: Any, scaler: Any, schedule: Any, mismatch: str
) -> None:
    """Load a training checkpoint's weights, optimiser, scaler and schedule; ``mismatch`` names what the
    checkpoint must match when its weights or optimiser do not fit."""
    try:
        net.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"checkpoint does not match {mismatch}: {exc}") from exc
    if state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    if state.get("scheduler"):
        schedule.load_state_dict(state["scheduler"])


def build_training_checkpoint(net: nn.Module, **extra: Any) -> dict[str, Any]:
    """The lead's model payload merged with training state; ``extra`` keys must not clash with it."""
    payload = model.checkpoint_payload(net)
    clashes = set(payload) & set(extra)
    if clashes:
        raise CheckpointError(f"training keys {sorted(clashes)} clash with the model payload")
    payload.update(extra)
    payload["rng"] = capture_rng_state()
    return payload


def save_checkpoint(payload: dict[str, Any], path: str | Path) -> Path:
    """Write atomically (temporary file then rename) so an interrupted save never corrupts ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def read_checkpoint_file(path: str | Path) -> dict[str, Any]:
    """A checkpoint's whole payload, read by :func:`model.weights.read_weights_file` (CheckpointError)."""
    try:
        return read_weights_file(path, what="checkpoint")
    except MissingWeightsFileError as exc:
        raise CheckpointError(f"checkpoint {path} does not exist") from exc
    except WeightsError as exc:
        raise CheckpointError(str(exc)) from exc


def load_training_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a training checkpoint on CPU, checking it holds the state needed to resume."""
    payload = read_checkpoint_file(path)
    missing = [key for key in ("state_dict", "epoch", "optimizer", "sampler", "rng") if key not in payload]
    if missing:
        raise CheckpointError(f"checkpoint {path} cannot be resumed: missing {', '.join(missing)}")
    return payload


def prune_checkpoints(directory: str | Path, keep: int) -> None:
    """Delete all but the ``keep`` newest periodic checkpoints (``keep`` 0 keeps everything)."""
    if keep <= 0:
        return
    periodic = sorted(Path(directory).glob("epoch_*.pt"))
    for stale in periodic[:-keep]:
        stale.unlink(missing_ok=True)


def plain_data(value: Any) -> Any:
    """Convert numpy/torch scalars and arrays inside nested containers to plain Python values."""
    if isinstance(value, dict):
        return {str(k): plain_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_data(v) for v in value]
    if isinstance(value, np.ndarray | torch.Tensor):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def read_checkpoint_metadata(path: str | Path) -> dict[str, Any]:
    """Everything but the weights and resumable state of a checkpoint (config, dataset, metrics, epoch)."""
    payload = read_checkpoint_file(path)
    skipped = {"state_dict", "optimizer", "scaler", "rng", "sampler", "scheduler"}
    return {key: value for key, value in payload.items() if key not in skipped}
