"""Process-group setup for ``torchrun`` (env:// init) with a single-process fallback."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from model.device import resolve_device


@dataclass(frozen=True)
class DistEnv:
    """Where this process runs: its rank, the world size and its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Only rank 0 writes checkpoints, logs and evaluates."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when running under a process group of more than one rank."""
        return self.world_size > 1


def init_distributed(preference: str = "auto") -> DistEnv:
    """Join the torchrun process group when ``WORLD_SIZE`` > 1 (NCCL on CUDA, gloo on CPU)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(preference, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", init_method="env://")
    return DistEnv(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def barrier(env: DistEnv) -> None:
    """Wait for every rank (no-op when not distributed)."""
    if env.distributed:
        dist.barrier()


def all_reduce_sum(values: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """Sum a tensor over ranks (returned unchanged when not distributed)."""
    if env.distributed:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def cleanup(env: DistEnv) -> None:
    """Leave the process group if this process joined one."""
    if env.distributed and dist.is_initialized():
        dist.destroy_process_group()
