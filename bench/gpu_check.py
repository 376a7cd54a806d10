"""One command that checks what the project promises on a CUDA GPU (`make gpu-check`), in under 8 minutes.

No dataset and no internet: synthetic people, networks trained from scratch. Steps, each time-boxed
(``--budget``, 450 s in all; ``--steps`` runs a subset); a failing step never stops the others:

- training: the paper's recipe (256x128, batch 64 = 16 ids x 4, Adam, CE-LS + batch-hard triplet, mixed
  precision) for a few hundred steps on a pool of synthetic people held on the GPU, once with our
  factored RGA-SC and once with the paper's naive form with the same initial weights and batches:
  images/s, peak CUDA memory (torch.cuda.max_memory_allocated); the loss falls; both forms give the
  same first-step loss.
- resume: ``training.trainer.train`` on a synthetic dataset (the recipe, 4 epochs) against a run resumed
  from its ``epoch_0002.pt``: per-epoch losses and final weights match (bit-exact on the CPU; on CUDA,
  whose backward has a few nondeterministic kernels, losses within 1e-3).
- ddp: two processes on one device under torchrun (``-m training.cli train``): NCCL on the GPU when it
  accepts two ranks on one device, else gloo (reported, with NCCL's refusal); gloo on the CPU.
- embedding: the exported model (TorchScript fp16 as the service runs it on the GPU, TorchScript fp32,
  ONNX Runtime with the CUDA provider when present) and eager fp16 against eager fp32 on the same crops
  (cosine >= 0.999), images/s at batch 1, 32 and 128.
- faiss_cpu / faiss_gpu: exact inner-product search on 100,000 2048-d vectors: CPU FAISS against numpy,
  the GPU index against the CPU index (same top-10), query times. Skipped, saying why, when faiss is
  missing or sees no GPU.
- service: ``bench/service_load.py`` (its command line) against the exported model, with the service on
  the GPU (``REID_DEVICE=cuda``): sightings/s beside the model's own batch-32 images/s.

Every step ends ``ok``, ``failed`` (with the error or the check that failed) or ``skipped`` (with why). The
JSON (``bench/results/gpu_check.json``, or ``--out``) is rewritten after every step, so a run cut short
still keeps what it measured. Exit code 1 only when a step that ran failed its own check.

Without CUDA (or with ``--tiny``) each step runs a tiny version (ResNet-18 at 64x32, a few steps, a few
thousand FAISS vectors) in under two minutes on a 2-core CPU; ``tests/bench/test_gpu_check.py`` runs it.
A tiny run writes ``bench/results/gpu_check_tiny.json`` by default, never over a GPU run's results.
Run from the repository root: ``python bench/gpu_check.py`` (the package need not be installed).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib
import importlib.util
import json
import math
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
# cuBLAS reads this once, at first use: set it before any CUDA work so the trainer's deterministic mode holds.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

STARTED = time.monotonic()  # the time budget counts from here: imports and machine probing included
RESULTS = ROOT / "bench" / "results"
RECIPE = ROOT / "training" / "configs" / "cuhk03_labeled_rgasc.yaml"
STEPS = ("training", "resume", "ddp", "embedding", "faiss_cpu", "faiss_gpu", "service")
OWN_PACKAGES = {"model", "training", "service", "bench"}
COSINE_MIN = 0.999
# Relative difference allowed between the two forms' features on the same weights and batch (float32).
FORMS_TOLERANCE = 1e-4
TOP_K = 10
MIB = 2**20
SERVICE_MODULES = {
    "fastapi": "fastapi",
    "starlette": "starlette",
    "pydantic": "pydantic",
    "pydantic-settings": "pydantic_settings",
    "sqlalchemy": "sqlalchemy",
    "alembic": "alembic",
    "python-multipart": "python_multipart",
    "uvicorn": "uvicorn",
    "httpx": "httpx",
    "faiss": "faiss",
}
EPOCH_LINE = re.compile(r"epoch (\d+): lr (\S+) loss (\S+) .* ([\d.]+) img/s")


@dataclass(frozen=True)
class Profile:
    """Sizes of one run: ``gpu`` (the real check) or ``tiny`` (the CPU smoke version)."""

    name: str
    backbone: str
    input_size: tuple[int, int]
    ids_per_batch: int
    instances: int
    pool_ids: int
    pool_images_per_id: int
    factored_steps: int
    naive_steps: int
    warmup_steps: int
    lr_warmup_steps: int
    factored_seconds: float
    naive_seconds: float
    min_timed_steps: int
    data_ids: int
    data_cameras: int
    data_images_per_camera: int
    resume_epochs: int
    ddp_epochs: int
    ddp_timeout: float
    workers: int
    crops: int
    embed_batches: tuple[int, ...]
    embed_seconds: float
    faiss_vectors: int
    faiss_dim: int
    faiss_queries: int
    service_clients: int
    service_seconds: float
    service_requests: int
    service_timeout: float
    budget: float

    @property
    def batch_size(self) -> int:
        return self.ids_per_batch * self.instances


GPU = Profile(
    name="gpu",
    backbone="resnet50",
    input_size=(256, 128),
    ids_per_batch=16,
    instances=4,
    pool_ids=64,
    pool_images_per_id=8,
    factored_steps=300,
    naive_steps=150,
    warmup_steps=5,
    lr_warmup_steps=50,
    factored_seconds=70.0,
    naive_seconds=45.0,
    min_timed_steps=60,
    data_ids=96,
    data_cameras=2,
    data_images_per_camera=2,
    resume_epochs=4,
    ddp_epochs=2,
    ddp_timeout=150.0,
    workers=min(8, max(1, (os.cpu_count() or 2) // 2)),
    crops=32,
    embed_batches=(1, 32, 128),
    embed_seconds=1.5,
    faiss_vectors=100_000,
    faiss_dim=2048,
    faiss_queries=200,
    service_clients=32,
    service_seconds=40.0,
    service_requests=20_000,
    service_timeout=240.0,
    budget=450.0,
)

TINY = Profile(
    name="tiny",
    backbone="resnet18",
    input_size=(64, 32),
    ids_per_batch=4,
    instances=4,
    pool_ids=8,
    pool_images_per_id=8,
    factored_steps=16,
    naive_steps=6,
    warmup_steps=1,
    lr_warmup_steps=4,
    factored_seconds=8.0,
    naive_seconds=4.0,
    min_timed_steps=6,
    data_ids=8,
    data_cameras=2,
    data_images_per_camera=4,
    resume_epochs=2,
    ddp_epochs=2,
    ddp_timeout=120.0,
    workers=0,
    crops=8,
    embed_batches=(1, 8, 32),
    embed_seconds=0.3,
    faiss_vectors=4000,
    faiss_dim=2048,
    faiss_queries=50,
    service_clients=8,
    service_seconds=8.0,
    service_requests=200,
    service_timeout=150.0,
    budget=110.0,
)


class SkipStepError(Exception):
    """A step that cannot run here; the message says why."""


@dataclass
class Context:
    """What the steps share: sizes, device, a scratch folder, the time left and what earlier steps made."""

    profile: Profile
    device: torch.device
    workdir: Path
    deadline: float
    trained_net: Any = None
    trained_steps: int = 0
    export_dir: Path | None = None
    data_root: Path | None = None
    faiss_data: dict[str, Any] = field(default_factory=dict)

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def box(self, seconds: float) -> float:
        """``seconds``, cut to what is left of the run's time budget (at least 5 s)."""
        return max(5.0, min(seconds, self.remaining() - 5.0))

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def dataset(self) -> Path:
        """A synthetic Market-1501-layout dataset at the model's input size (made once)."""
        if self.data_root is None:
            from training.datasets.synthetic import make_synthetic

            p = self.profile
            self.data_root = make_synthetic(
                self.workdir / "synthetic",
                ids=p.data_ids,
                cameras=p.data_cameras,
                images_per_camera=p.data_images_per_camera,
                image_size=p.input_size,
            )
        return self.data_root


def log(message: str) -> None:
    print(message, flush=True)


def plain(value: Any) -> Any:
    """JSON fallback for numpy scalars, paths and tuples."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, torch.device):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def finite(value: float | None) -> float | None:
    """``value`` when it is a finite number, else None (JSON has no NaN)."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def child_env(**extra: str) -> dict[str, str]:
    """The environment for subprocesses: ours, with the repository root on PYTHONPATH."""
    paths = [str(ROOT), *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths)), **extra}


def run_process(command: list[str], timeout: float, env: dict[str, str]) -> tuple[int | None, str]:
    """Run ``command`` in its own process group, echoing its output indented; on timeout kill the group.

    Returns (exit code, or None after a timeout; everything it printed).
    """
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    lines: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            print(f"    | {line.rstrip()}", flush=True)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        proc.wait(timeout=timeout)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        stop_group(proc)
        code = None
    except BaseException:
        stop_group(proc)
        raise
    reader.join(timeout=10)
    return code, "".join(lines)


def stop_group(proc: subprocess.Popen) -> None:
    """Terminate the process group that ``proc`` leads, then kill it if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


def tail(text: str, lines: int = 12, chars: int = 1500) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])[-chars:]


@contextlib.contextmanager
def torch_flags() -> Iterator[None]:
    """Restore cuDNN and deterministic-algorithm settings that the code inside may change."""
    saved = (
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cuda.matmul.allow_tf32,
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved[:2]
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved[2:4]
        torch.use_deterministic_algorithms(saved[4], warn_only=saved[5])


def free_cuda() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# ----------------------------------------------------------------------------------------------- training


def render_pool(profile: Profile) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised images of ``pool_ids`` synthetic people x ``pool_images_per_id`` views, and their labels."""
    from model.preprocess import normalize_batch
    from training.datasets.synthetic import render_person

    images, labels = [], []
    for label in range(profile.pool_ids):
        for view in range(profile.pool_images_per_id):
            images.append(render_person(label + 1, view % 4, view, image_size=profile.input_size))
            labels.append(label)
    return normalize_batch(np.stack(images)), torch.tensor(labels)


def pk_batches(profile: Profile, steps: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``steps`` PK batches (P ids x K views) of pool indices, each with a random horizontal-flip mask."""
    generator = torch.Generator().manual_seed(seed)
    per_id = profile.pool_images_per_id
    batches = []
    for _ in range(steps):
        ids = torch.randperm(profile.pool_ids, generator=generator)[: profile.ids_per_batch]
        views = torch.stack([torch.randperm(per_id, generator=generator)[: profile.instances] for _ in ids])
        index = (ids.view(-1, 1) * per_id + views).flatten()
        batches.append((index, torch.rand(index.numel(), generator=generator) < 0.5))
    return batches


def train_form(
    net: torch.nn.Module,
    pool: tuple[torch.Tensor, torch.Tensor],
    batches: list[tuple[torch.Tensor, torch.Tensor]],
    recipe: Any,
    ctx: Context,
    seconds: float,
    min_steps: int,
) -> dict[str, Any]:
    """Train ``net`` on ``batches``, time-boxed once ``min_steps`` are timed: losses, images/s, memory."""
    from model.device import mixed_precision
    from training.losses import ReIDLoss

    profile, device = ctx.profile, ctx.device
    images, labels = pool[0].to(device), pool[1].to(device)
    net = net.to(device).train()
    optim = recipe.optim
    optimizer = torch.optim.Adam(
        [p for p in net.parameters() if p.requires_grad],
        lr=optim.warmup_start_lr,
        betas=tuple(optim.betas),
        eps=optim.eps,
        weight_decay=optim.weight_decay,
    )
    amp_dtype = mixed_precision(device) if recipe.train.amp else None
    amp = amp_dtype is not None
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    loss = recipe.loss
    criterion = ReIDLoss(loss.label_smoothing, loss.margin, loss.ce_weight, loss.triplet_weight)
    losses: list[torch.Tensor] = []
    ctx.sync()
    if ctx.cuda:
        torch.cuda.reset_peak_memory_stats()
    baseline = torch.cuda.memory_allocated() / MIB if ctx.cuda else None
    started = time.perf_counter()
    timed_from = None
    for step, (index, flip) in enumerate(batches):
        if step == profile.warmup_steps:
            ctx.sync()
            timed_from = time.perf_counter()
        ramp = min(1.0, step / max(1, profile.lr_warmup_steps))
        for group in optimizer.param_groups:
            group["lr"] = optim.warmup_start_lr + ramp * (optim.lr - optim.warmup_start_lr)
        index, flip = index.to(device), flip.to(device)
        x = images[index]
        x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp):
            pooled, _, logits = net(x)
        out = criterion(pooled, logits, labels[index])
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(out.total).backward()
        scaler.step(optimizer)
        scaler.update()
        losses.append(out.total.detach())
        if timed_from is not None and (step % 10 == 0 or not ctx.cuda):
            losses[-1].item()  # wait for the GPU so the time box measures work done, not work queued
            timed = step - profile.warmup_steps
            if timed >= min_steps and time.perf_counter() - timed_from > seconds:
                break
        if step % 50 == 0:
            log(f"    step {step}: loss {float(losses[-1]):.4f} ({time.perf_counter() - started:.1f} s)")
    ctx.sync()
    ended = time.perf_counter()
    values = torch.stack(losses).float().cpu().tolist()
    timed_steps = len(values) - profile.warmup_steps
    peak = torch.cuda.max_memory_allocated() / MIB if ctx.cuda else None
    net.cpu()
    del optimizer, images, labels
    free_cuda()
    window = max(3, len(values) // 10)
    first, last = statistics.fmean(values[:window]), statistics.fmean(values[-window:])
    return {
        "steps": len(values),
        "timed_steps": timed_steps,
        "seconds": ended - started,
        "images_per_s": timed_steps * profile.batch_size / (ended - timed_from) if timed_steps > 0 else None,
        "peak_cuda_mib": peak,
        "cuda_mib_before_first_step": baseline,
        "loss_first": first,
        "loss_last": last,
        "loss_window": window,
        "loss_falls": last < first,
        "losses_finite": all(math.isfinite(v) for v in values),
        "losses": [round(v, 5) for v in values],
    }


def forms_agree(
    net: torch.nn.Module,
    naive: torch.nn.Module,
    pool: tuple[torch.Tensor, torch.Tensor],
    batch: tuple[torch.Tensor, torch.Tensor],
    ctx: Context,
) -> float:
    """Relative difference of both forms' training-mode pooled features on one batch, in float32 (TF32 off).

    Mixed precision makes the two forms' losses drift apart from the first step on, so their equality is
    checked here, before training, where it is exact up to float32 rounding.
    """
    x = pool[0][batch[0].to(pool[0].device)].to(ctx.device)
    with torch_flags(), torch.no_grad():
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        factored = net.to(ctx.device).train()(x)[0].float()
        materialized = naive.to(ctx.device).train()(x)[0].float()
    return float((factored - materialized).norm() / materialized.norm())


def step_training(ctx: Context) -> dict[str, Any]:
    from model import build_model
    from model.device import mixed_precision
    from model.rga_naive import materialized_copy
    from training.config import build_config

    p = ctx.profile
    recipe = build_config({})  # the paper's recipe: every field at its default
    started = time.perf_counter()
    pool = render_pool(p)
    seconds = time.perf_counter() - started
    log(f"  rendered {len(pool[1])} synthetic people at {p.input_size} in {seconds:.1f} s")
    torch.manual_seed(recipe.train.seed)
    net = build_model(p.backbone, "rgasc", p.input_size, num_classes=p.pool_ids)
    naive = materialized_copy(net)  # the paper's form with the same initial weights
    batches = pk_batches(p, max(p.factored_steps, p.naive_steps), recipe.train.seed)
    agreement = forms_agree(net, naive, pool, batches[0], ctx)
    forms: dict[str, dict[str, Any]] = {}
    deterministic = recipe.train.deterministic
    for name, module, steps, seconds, min_steps in (
        ("factored", net, p.factored_steps, p.factored_seconds, p.min_timed_steps),
        ("naive", naive, p.naive_steps, p.naive_seconds, max(2, p.min_timed_steps // 3)),
    ):
        log(f"  {name}: up to {steps} steps of batch {p.batch_size}, at most {ctx.box(seconds):.0f} s")
        try:
            with torch_flags():
                torch.backends.cudnn.benchmark = not deterministic
                torch.backends.cudnn.deterministic = deterministic
                box = ctx.box(seconds)
                forms[name] = train_form(module, pool, batches[:steps], recipe, ctx, box, min_steps)
        except Exception as exc:  # one form failing (out of memory, say) still reports the other
            module.cpu()
            free_cuda()
            forms[name] = {"error": f"{type(exc).__name__}: {exc}"[:800]}
            log(f"  {name} failed: {forms[name]['error']}")
    factored, naive_result = forms["factored"], forms["naive"]
    ok = "error" not in factored and "error" not in naive_result
    checks = {
        "factored_ran": "error" not in factored,
        "naive_ran": "error" not in naive_result,
        "loss_falls": bool(factored.get("loss_falls")),
        "losses_finite": bool(factored.get("losses_finite")) and bool(naive_result.get("losses_finite")),
    }
    result: dict[str, Any] = {
        "model": f"{p.backbone} rgasc {p.input_size[0]}x{p.input_size[1]}, {p.pool_ids} ids, untrained start",
        "batch": f"{p.batch_size} = {p.ids_per_batch} ids x {p.instances}",
        "mixed_precision": (
            str(mixed_precision(ctx.device)) if recipe.train.amp and mixed_precision(ctx.device) else None
        ),
        "cudnn_deterministic": deterministic,
        "pool_images": len(pool[1]),
        "lr": f"Adam {recipe.optim.lr:g}, linear warm-up from {recipe.optim.warmup_start_lr:g} over "
        f"{p.lr_warmup_steps} steps, weight decay {recipe.optim.weight_decay:g}",
        "forms": forms,
    }
    if ok:
        first_f, first_n = factored["losses"][0], naive_result["losses"][0]
        rel = abs(first_f - first_n) / max(abs(first_f), 1e-12)
        result["first_step_loss_rel_diff"] = rel
        if factored["images_per_s"] and naive_result["images_per_s"]:
            result["speedup_vs_naive"] = factored["images_per_s"] / naive_result["images_per_s"]
        if ctx.cuda:
            result["memory_vs_naive"] = factored["peak_cuda_mib"] / naive_result["peak_cuda_mib"]
    result["forms_fp32_rel_diff"] = agreement
    checks["forms_agree_in_fp32"] = agreement <= FORMS_TOLERANCE
    ctx.trained_net, ctx.trained_steps = net.eval(), factored.get("steps", 0)
    result["checks"] = checks
    summary = []
    for name in ("factored", "naive"):
        form = forms[name]
        if "error" in form:
            summary.append(f"{name}: {form['error'][:80]}")
            continue
        memory = f", peak {form['peak_cuda_mib'] / 1024:.1f} GiB" if form["peak_cuda_mib"] else ""
        summary.append(f"{name} {fmt(form['images_per_s'])} img/s{memory}")
    if "speedup_vs_naive" in result:
        summary.append(f"{result['speedup_vs_naive']:.2f}x faster")
    if "error" not in factored:
        summary.append(
            f"loss {factored['loss_first']:.3f} -> {factored['loss_last']:.3f} in {factored['steps']} steps"
        )
    result["summary"] = "; ".join(summary)
    return result


# ------------------------------------------------------------------------------------------------- resume


def recipe_overrides(ctx: Context, epochs: int, checkpoint_every: int, workers: int) -> list[str]:
    """The paper's recipe on the synthetic set at the profile's sizes, from scratch, no final evaluation."""
    p = ctx.profile
    return [
        "data.dataset=market1501",
        "data.kwargs={}",
        f"data.num_workers={workers}",
        f"model.backbone={p.backbone}",
        f"model.input_size=[{p.input_size[0]}, {p.input_size[1]}]",
        "model.pretrained=null",
        f"sampler.batch_size={p.batch_size}",
        f"sampler.num_instances={p.instances}",
        "optim.warmup_epochs=1",
        f"optim.milestones=[{max(1, epochs - 1)}]",
        f"train.epochs={epochs}",
        f"train.checkpoint_every={checkpoint_every}",
        "train.evaluate_at_end=false",
    ]


def step_resume(ctx: Context) -> dict[str, Any]:
    import model
    from training.config import load_config
    from training.trainer import train

    p = ctx.profile
    epochs, half = p.resume_epochs, p.resume_epochs // 2
    root = ctx.dataset()
    config = load_config(RECIPE, recipe_overrides(ctx, epochs, half, p.workers))
    device = ctx.device.type
    with torch_flags():
        if ctx.cuda:
            torch.cuda.reset_peak_memory_stats()
        log(f"  uninterrupted: {epochs} epochs")
        full = train(config, root, ctx.workdir / "resume" / "full", device=device, progress=False)
        peak = torch.cuda.max_memory_allocated() / MIB if ctx.cuda else None
        checkpoint = ctx.workdir / "resume" / "full" / f"epoch_{half:04d}.pt"
        log(f"  resumed from {checkpoint.name} to epoch {epochs}")
        resumed = train(
            config, root, ctx.workdir / "resume" / "resumed", resume=checkpoint, device=device, progress=False
        )
    free_cuda()
    expected = [s.loss for s in full.history[half:]]
    actual = [s.loss for s in resumed.history]
    loss_diff = max(
        (abs(a - b) / max(abs(b), 1e-12) for a, b in zip(actual, expected, strict=False)), default=0.0
    )
    reference = model.load_checkpoint(full.final_checkpoint).state_dict()
    other = model.load_checkpoint(resumed.final_checkpoint).state_dict()
    weight_diff, weights_equal = 0.0, reference.keys() == other.keys()
    for key, tensor in reference.items():
        if key not in other or other[key].shape != tensor.shape:
            weights_equal = False
            continue
        if tensor.is_floating_point():
            weight_diff = max(weight_diff, float((tensor - other[key]).abs().max()))
        weights_equal = weights_equal and torch.equal(tensor, other[key])
    bit_exact = actual == expected and weights_equal
    checks = {
        "resumed_epochs": [s.epoch for s in resumed.history] == list(range(half, epochs)),
        # CPU kernels are deterministic: demand identity. CUDA has a few nondeterministic backward kernels
        # (atomics), so there the per-epoch losses must agree to 1e-3 (a wrong batch order or optimizer
        # state is off by far more).
        "losses_match": bit_exact if not ctx.cuda else loss_diff <= 1e-3,
    }
    train_rates = [s.images_per_second for s in full.history[1:]] or [
        s.images_per_second for s in full.history
    ]
    batches = full.history[0].images // p.batch_size if full.history else 0
    exactness = "bit-exact" if bit_exact else f"loss diff {loss_diff:.1e}, weight diff {weight_diff:.1e}"
    return {
        "recipe": f"{RECIPE.name} on synthetic people ({p.data_ids} ids), {p.backbone} {p.input_size}, "
        f"batch {p.batch_size}, {batches} batches/epoch, {p.workers} loader workers",
        "epochs": epochs,
        "resumed_from": checkpoint.name,
        "losses_uninterrupted": expected,
        "losses_resumed": actual,
        "max_loss_rel_diff": loss_diff,
        "max_weight_abs_diff": weight_diff,
        "bit_exact": bit_exact,
        "trainer_images_per_s": statistics.median(train_rates) if train_rates else None,
        "peak_cuda_mib": peak,
        "checks": checks,
        "summary": f"{half} + resume {epochs - half} epochs vs {epochs} straight: {exactness}; trainer "
        f"{statistics.median(train_rates) if train_rates else 0:.1f} img/s with data loading",
    }


# ---------------------------------------------------------------------------------------------------- ddp


def torchrun(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]


def parse_train_log(path: Path) -> dict[str, Any]:
    text = path.read_text() if path.is_file() else ""
    epochs = [
        {"epoch": int(m[1]), "lr": float(m[2]), "loss": float(m[3]), "images_per_s": float(m[4])}
        for m in EPOCH_LINE.finditer(text)
    ]
    match = re.search(r"(\d+) process\(es\) on (\S+),", text)
    return {
        "processes": int(match[1]) if match else None,
        "device": match[2] if match else None,
        "epochs": epochs,
    }


def nccl_reason(output: str) -> str:
    """The most telling lines of a failed NCCL launch."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    keys = ("ncclInvalidUsage", "Duplicate GPU", "NCCL error", "DistBackendError", "Error", "error")
    for key in keys:
        found = [line for line in lines if key in line]
        if found:
            return " | ".join(dict.fromkeys(found[-3:]))[:600]
    return tail(output, 3, 600)


def step_ddp(ctx: Context) -> dict[str, Any]:
    p = ctx.profile
    root = ctx.dataset()
    workers = min(2, p.workers)
    sets = []
    for override in recipe_overrides(ctx, p.ddp_epochs, 1000, workers):
        sets += ["--set", override]

    def cli_args(out: Path) -> list[str]:
        return ["train", "--config", str(RECIPE), "--data-root", str(root), "--output", str(out)]

    device = ctx.device.type
    env = child_env(OMP_NUM_THREADS="1" if not ctx.cuda else os.environ.get("OMP_NUM_THREADS", "4"))
    attempts: list[dict[str, Any]] = []
    out = ctx.workdir / "ddp" / ("nccl" if ctx.cuda else "gloo")
    backend = "nccl" if ctx.cuda else "gloo"
    command = torchrun(["-m", "training.cli", *cli_args(out), "--device", device, "--no-progress", *sets])
    log(f"  torchrun x2 -m training.cli train --device {device} ({backend}, chosen by training.distributed)")
    started = time.perf_counter()
    # NCCL either runs or refuses within seconds; a hang is cut at 90 s to leave time for gloo.
    rc, output = run_process(command, ctx.box(min(p.ddp_timeout, 90.0) if ctx.cuda else p.ddp_timeout), env)
    attempts.append({"backend": backend, "returncode": rc, "seconds": time.perf_counter() - started})
    nccl_refused = None
    if rc != 0 and ctx.cuda:
        nccl_refused = "timed out" if rc is None else nccl_reason(output)
        attempts[-1]["error"] = nccl_refused
        log(f"  NCCL did not run two ranks on one GPU ({nccl_refused[:200]}); falling back to gloo")
        backend = "gloo"
        out = ctx.workdir / "ddp" / "gloo"
        worker = [str(Path(__file__).resolve()), "--ddp-worker", "gloo", *cli_args(out)]
        command = torchrun([*worker, "--device", device, "--no-progress", *sets])
        started = time.perf_counter()
        rc, output = run_process(command, ctx.box(p.ddp_timeout), env)
        attempts.append({"backend": "gloo", "returncode": rc, "seconds": time.perf_counter() - started})
    parsed = parse_train_log(out / "train.log")
    epochs = parsed["epochs"]
    losses = [e["loss"] for e in epochs]
    checks = {
        "finished_in_time": rc is not None,
        "exit_ok": rc == 0,
        "two_processes": parsed["processes"] == 2,
        "all_epochs_logged": [e["epoch"] for e in epochs] == list(range(1, p.ddp_epochs + 1)),
        "final_checkpoint": (out / "final.pt").is_file(),
        "losses_finite": bool(losses) and all(math.isfinite(v) for v in losses),
    }
    result: dict[str, Any] = {
        "backend": backend,
        "device": parsed["device"],
        "world_size": parsed["processes"],
        "nccl_refused": nccl_refused,
        "attempts": attempts,
        "epochs": epochs,
        "steps": p.ddp_epochs * (p.data_ids // 2 // p.ids_per_batch),
        "checks": checks,
    }
    if rc != 0:
        result["output_tail"] = tail(output, 25, 3000)
    rate = statistics.median([e["images_per_s"] for e in epochs[1:] or epochs]) if epochs else 0.0
    fallback = f" (NCCL refused: {nccl_refused[:90]})" if nccl_refused else ""
    result["summary"] = (
        f"{backend}{fallback}, {parsed['processes']} processes on {parsed['device']}, "
        f"{len(epochs)} epochs, {rate:.1f} img/s over both ranks"
    )
    return result


def ddp_worker(backend: str, cli_args: list[str]) -> int:
    """Under torchrun: join the process group with ``backend``, then run ``training.cli`` in it."""
    import torch.distributed as dist

    from training.cli import main as cli_main

    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
    dist.init_process_group(backend=backend, init_method="env://")
    try:
        return cli_main(cli_args)  # training.distributed keeps an already initialised group
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


# ---------------------------------------------------------------------------------------------- embedding


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


def throughput(
    run: Callable[[torch.Tensor], object], x: torch.Tensor, seconds: float, min_calls: int
) -> tuple[float, int]:
    """Median images/s of ``run(x)``: calls for ``seconds`` (at least ``min_calls``) after a warm-up."""
    run(x)
    times: list[float] = []
    begun = time.perf_counter()
    while len(times) < min_calls or (time.perf_counter() - begun < seconds and len(times) < 500):
        started = time.perf_counter()
        run(x)
        times.append(time.perf_counter() - started)
    return x.shape[0] / statistics.median(times), len(times)


def onnx_providers(embedder: Any) -> list[str]:
    """Providers the ONNX Runtime session really uses (best effort; [] when it cannot be told)."""
    session = getattr(embedder, "_backend", None)
    get = getattr(session, "get_providers", None)
    return list(get()) if callable(get) else []


def preload_onnxruntime_cuda() -> bool:
    """Let ONNX Runtime's CUDA provider find the CUDA and cuDNN libraries torch ships (ORT >= 1.21)."""
    try:
        import onnxruntime

        if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            return False
        onnxruntime.preload_dlls()
        return True
    except Exception:
        return False


def step_embedding(ctx: Context) -> dict[str, Any]:
    from model import build_model, export_model, load_embedder
    from model.device import mixed_precision
    from model.preprocess import normalize_batch, resize_rgb
    from training.datasets.synthetic import render_person

    p, device = ctx.profile, ctx.device
    if ctx.trained_net is not None:
        net = copy.deepcopy(ctx.trained_net).cpu().float().eval()
        origin = f"the training step's factored network after {ctx.trained_steps} steps"
    else:
        torch.manual_seed(0)
        net = build_model(p.backbone, "rgasc", p.input_size).eval()
        origin = "untrained (the training step did not run)"
    started = time.perf_counter()
    export_dir = export_model(
        net, ctx.workdir / "export", {"purpose": "bench/gpu_check.py", "origin": origin}
    )
    export_seconds = time.perf_counter() - started
    ctx.export_dir = export_dir
    log(f"  exported {origin} in {export_seconds:.1f} s")
    crops = [resize_rgb(render_person(k % 13 + 1, k % 4, k), p.input_size) for k in range(p.crops)]
    x = normalize_batch(np.stack(crops))

    with torch_flags():
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        eager = copy.deepcopy(net).to(device)
        reference = eager.embed(x.to(device)).float().cpu().numpy()

    runners: list[dict[str, Any]] = []

    def add(name: str, precision: str, run: Callable[[torch.Tensor], np.ndarray], **meta: Any) -> None:
        runners.append({"runtime": name, "precision": precision, "run": run, **meta})

    add("eager", "fp32", lambda t: eager.embed(t.to(device)).float().cpu().numpy(), device=str(device))
    if ctx.cuda:
        for name, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
            reduced = copy.deepcopy(net).to(device, dtype)
            add(
                "eager",
                name,
                lambda t, m=reduced, d=dtype: m.embed(t.to(device, d)).float().cpu().numpy(),
                device="cuda",
                informational="RGA's relation maps lose their precision below float32; shown, not used",
            )
        autocast = copy.deepcopy(net).to(device)

        def run_autocast(t: torch.Tensor) -> np.ndarray:
            with torch.autocast("cuda", dtype=mixed_precision(device)):
                return autocast.embed(t.to(device)).float().cpu().numpy()

        add(
            "eager",
            "amp",
            run_autocast,
            device="cuda",
            informational="trunk in mixed precision, RGA in float32: still too far off; shown, not used",
        )
    scripted = load_embedder(export_dir, device=device.type, runtime="torchscript")
    add(
        "torchscript",
        "fp32",
        scripted.embed_tensor,
        device=str(scripted.device),
        note="load_embedder: what the service runs" if ctx.cuda else "load_embedder",
    )
    if ctx.cuda:
        ts32 = torch.jit.load(str(export_dir / "model.ts"), map_location=device).eval()

        def run_ts32(t: torch.Tensor) -> np.ndarray:
            with torch.inference_mode():
                return ts32(t.to(device)).float().cpu().numpy()

        add("torchscript", "fp32", run_ts32, device="cuda", note="model.ts, torch.jit.load")
    preloaded = preload_onnxruntime_cuda() if ctx.cuda else False
    onnx = load_embedder(export_dir, device=device.type, runtime="onnx")
    providers = onnx_providers(onnx)
    on_gpu = "CUDAExecutionProvider" in providers
    add(
        "onnxruntime",
        "fp32",
        onnx.embed_tensor,
        device="cuda" if on_gpu else "cpu",
        providers=providers,
        note=None if on_gpu or not ctx.cuda else "no CUDA provider: ONNX Runtime ran on the CPU",
    )
    auto = load_embedder(export_dir)

    rows = []
    for runner in runners:
        run = runner.pop("run")
        row = {**runner}
        out = run(x)
        cos = cosines(out, reference)
        row["cosine_min"], row["cosine_mean"] = float(cos.min()), float(cos.mean())
        row["agrees"] = bool(cos.min() >= COSINE_MIN)
        row["images_per_s"] = {}
        cpu_only = ctx.cuda and row["device"] == "cpu"
        for batch in p.embed_batches:
            if cpu_only and batch > 32:
                continue
            if ctx.remaining() < (15 if ctx.cuda else 3):
                row.setdefault("note", "time budget ran out before every batch was timed")
                break
            x_batch = torch.randn(batch, 3, *p.input_size)
            rate, _ = throughput(run, x_batch, p.embed_seconds, 3 if ctx.cuda else 2)
            row["images_per_s"][str(batch)] = rate
        rows.append(row)
        rates = ", ".join(f"b{b} {r:.1f}" for b, r in row["images_per_s"].items())
        where = f"{row['runtime']:12s} {row['precision']} {row['device']:4s}"
        log(f"  {where}: cos min {row['cosine_min']:.6f}; {rates}")
    free_cuda()
    checks = {
        f"{r['runtime']}_{r['precision']}_cosine": r["agrees"] for r in rows if "informational" not in r
    }
    served = next(r for r in rows if r["runtime"] == "torchscript")  # load_embedder's TorchScript
    compared = ", ".join(
        f"{r['runtime']} {r['precision']}{' (CPU)' if ctx.cuda and r['device'] == 'cpu' else ''} "
        f"{r['cosine_min']:.6f}"
        for r in rows
        if r is not rows[0]
    )
    summary = f"cos vs eager fp32: {compared}"
    best = max(served["images_per_s"].items(), key=lambda kv: int(kv[0]), default=None)
    if best:
        summary += f"; {served['runtime']} {served['precision']} b{best[0]} {best[1]:.0f} img/s"
    return {
        "model": f"{p.backbone} rgasc {p.input_size[0]}x{p.input_size[1]}, {origin}",
        "export_seconds": export_seconds,
        "crops": p.crops,
        "reference": "eager fp32 (TF32 off) on the same device",
        "auto": {"runtime": auto.runtime, "device": str(auto.device)},
        "onnxruntime_preload_dlls": preloaded,
        "rows": rows,
        "checks": checks,
        "summary": summary,
    }


# -------------------------------------------------------------------------------------------------- faiss


def import_faiss() -> Any:
    try:
        return importlib.import_module("faiss")
    except ImportError as exc:
        raise SkipStepError(f"faiss is not installed ({exc}); pip install faiss-cpu or faiss-gpu") from None


def faiss_data(ctx: Context) -> dict[str, Any]:
    """L2-normalised random vectors and queries near some of them (made once, shared by both FAISS steps)."""
    if not ctx.faiss_data:
        p = ctx.profile
        rng = np.random.default_rng(0)
        base = rng.standard_normal((p.faiss_vectors, p.faiss_dim), dtype=np.float32)
        base /= np.linalg.norm(base, axis=1, keepdims=True)
        near = base[rng.choice(p.faiss_vectors, p.faiss_queries, replace=False)]
        queries = 0.6 * near + 0.8 * rng.standard_normal(near.shape, dtype=np.float32) / math.sqrt(
            p.faiss_dim
        )
        queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
        ctx.faiss_data = {"base": base, "queries": queries}
    return ctx.faiss_data


def search_times(index: Any, queries: np.ndarray, singles: int = 20) -> dict[str, Any]:
    """Top-10 of every query in one batch (per-query ms) and single-query latency (median ms)."""
    index.search(queries[:2], TOP_K)
    started = time.perf_counter()
    scores, ids = index.search(queries, TOP_K)
    batched = (time.perf_counter() - started) / len(queries) * 1000
    single = []
    for row in queries[:singles]:
        started = time.perf_counter()
        index.search(row[None], TOP_K)
        single.append((time.perf_counter() - started) * 1000)
    return {
        "ids": ids,
        "scores": scores,
        "batched_ms_per_query": batched,
        "single_query_ms": statistics.median(single),
    }


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Mean fraction of shared ids between the top-k rows of ``a`` and ``b``."""
    return float(
        np.mean([len(set(x.tolist()) & set(y.tolist())) / a.shape[1] for x, y in zip(a, b, strict=True)])
    )


def step_faiss_cpu(ctx: Context) -> dict[str, Any]:
    faiss = import_faiss()
    data = faiss_data(ctx)
    base, queries = data["base"], data["queries"]
    started = time.perf_counter()
    index = faiss.IndexFlatIP(base.shape[1])
    index.add(base)
    build = time.perf_counter() - started
    timed = search_times(index, queries)
    exact_scores = queries @ base.T
    exact_ids = np.argpartition(-exact_scores, TOP_K, axis=1)[:, :TOP_K]
    order = np.argsort(-np.take_along_axis(exact_scores, exact_ids, 1), axis=1)
    exact_ids = np.take_along_axis(exact_ids, order, 1)
    recall = overlap(timed["ids"], exact_ids)
    score_diff = float(np.abs(np.take_along_axis(exact_scores, exact_ids, 1) - timed["scores"]).max())
    data["cpu"] = {"ids": timed["ids"], "batched_ms_per_query": timed["batched_ms_per_query"]}
    data["cpu_index"] = index
    return {
        "vectors": int(base.shape[0]),
        "dim": int(base.shape[1]),
        "queries": int(queries.shape[0]),
        "index": "IndexFlatIP (exact inner product)",
        "faiss": getattr(faiss, "__version__", "?"),
        "threads": faiss.omp_get_max_threads(),
        "build_s": build,
        "batched_ms_per_query": timed["batched_ms_per_query"],
        "single_query_ms": timed["single_query_ms"],
        "recall_at_10_vs_numpy": recall,
        "max_score_diff_vs_numpy": score_diff,
        "checks": {"exact": recall >= 0.999 and score_diff < 1e-4},
        "summary": f"{base.shape[0]:,} x {base.shape[1]}: recall@10 vs numpy {recall:.4f}, "
        f"{timed['single_query_ms']:.2f} ms/query single, {timed['batched_ms_per_query']:.3f} ms batched",
    }


def step_faiss_gpu(ctx: Context) -> dict[str, Any]:
    faiss = import_faiss()
    version = getattr(faiss, "__version__", "?")
    gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    if not ctx.cuda:
        raise SkipStepError(f"no CUDA device (faiss {version} sees {gpus} GPUs)")
    if gpus == 0 or not hasattr(faiss, "StandardGpuResources"):
        raise SkipStepError(f"faiss {version} reports 0 GPUs (a CPU-only build such as the faiss-cpu wheel)")
    data = faiss_data(ctx)
    base, queries = data["base"], data["queries"]
    if "cpu" not in data:
        cpu_index = faiss.IndexFlatIP(base.shape[1])
        cpu_index.add(base)
        data["cpu"] = {"ids": search_times(cpu_index, queries)["ids"]}
        data["cpu_index"] = cpu_index
    resources = faiss.StandardGpuResources()
    started = time.perf_counter()
    gpu_index = faiss.index_cpu_to_gpu(resources, 0, data["cpu_index"])
    transfer = time.perf_counter() - started
    timed = search_times(gpu_index, queries)
    same = overlap(timed["ids"], data["cpu"]["ids"])
    identical = float(np.mean(np.all(timed["ids"] == data["cpu"]["ids"], axis=1)))
    cpu_ms = data["cpu"].get("batched_ms_per_query")
    return {
        "vectors": int(base.shape[0]),
        "dim": int(base.shape[1]),
        "faiss": version,
        "gpus": gpus,
        "to_gpu_s": transfer,
        "batched_ms_per_query": timed["batched_ms_per_query"],
        "single_query_ms": timed["single_query_ms"],
        "cpu_batched_ms_per_query": cpu_ms,
        "same_top10_fraction": same,
        "identical_order_fraction": identical,
        "checks": {"same_top10": same >= 0.999},
        "summary": f"top-10 overlap with CPU {same:.4f}; {timed['single_query_ms']:.2f} ms/query single, "
        f"{timed['batched_ms_per_query']:.4f} ms batched" + (f" (CPU {cpu_ms:.3f})" if cpu_ms else ""),
    }


# ------------------------------------------------------------------------------------------------ service


class GpuMemoryWatch:
    """Polls nvidia-smi for the GPU memory of processes other than this one (the server), if it can."""

    def __init__(self) -> None:
        self.peak_mib: float | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        command = ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"]
        while not self.stop.wait(2.0):
            try:
                out = subprocess.run(command, capture_output=True, text=True, timeout=10).stdout
            except (OSError, subprocess.SubprocessError):
                return
            used = None
            for line in out.splitlines():
                parts = [part.strip() for part in line.split(",")]
                if len(parts) == 2 and parts[0].isdigit() and int(parts[0]) != os.getpid():
                    with contextlib.suppress(ValueError):
                        used = (used or 0.0) + float(parts[1])
            if used is not None:  # None: nvidia-smi shows no other process (e.g. in a container)
                self.peak_mib = max(self.peak_mib or 0.0, used)

    def __enter__(self) -> GpuMemoryWatch:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=15)


def step_service(ctx: Context) -> dict[str, Any]:
    missing = [
        name
        for name, module in SERVICE_MODULES.items()
        if importlib.util.find_spec(module) is None
        and not (module == "python_multipart" and importlib.util.find_spec("multipart"))
    ]
    if missing:
        raise SkipStepError(f"the service's dependencies are missing: {', '.join(missing)}")
    p = ctx.profile
    export_dir = ctx.export_dir
    if export_dir is None:
        from model import build_model, export_model

        torch.manual_seed(0)
        export_dir = export_model(
            build_model(p.backbone, "rgasc", p.input_size).eval(),
            ctx.workdir / "export",
            {"note": "untrained"},
        )
        ctx.export_dir = export_dir
    out = ctx.workdir / "service_load.json"
    command = [sys.executable, str(ROOT / "bench" / "service_load.py"), "--model-dir", str(export_dir)]
    command += ["--clients", str(p.service_clients), "--seconds", str(p.service_seconds)]
    command += ["--requests", str(p.service_requests), "--out", str(out)]
    env = child_env(REID_DEVICE=ctx.device.type)
    clients, seconds = p.service_clients, p.service_seconds
    log(f"  service_load.py: {clients} clients, {seconds:.0f} s, REID_DEVICE={ctx.device.type}")
    timeout = ctx.box(p.service_timeout)
    with GpuMemoryWatch() if ctx.cuda else contextlib.nullcontext() as watch:
        rc, output = run_process(command, timeout, env)
    report = json.loads(out.read_text()) if out.is_file() else {}
    failures = report.get("failures")
    result: dict[str, Any] = {
        "returncode": rc,
        "service_device": ctx.device.type,
        "clients": p.service_clients,
        "seconds_limit": p.service_seconds,
        **{
            key: report.get(key)
            for key in (
                "requests",
                "failures",
                "sightings_per_s",
                "p50_ms",
                "p99_ms",
                "mean_batch",
                "model_batch32_images_per_s",
                "ratio",
                "model",
            )
        },
        "server_gpu_mib": watch.peak_mib if watch is not None else None,
        "checks": {
            "exit_ok": rc == 0,
            "no_failed_requests": failures == 0,
            "served": bool(report.get("requests")) and (report.get("requests") or 0) > (failures or 0),
        },
    }
    if rc is None:
        result["checks"] = {"finished_in_time": False}
    if rc != 0:
        result["output_tail"] = tail(output, 30, 4000)
    if report:
        result["summary"] = (
            f"{report['requests']} requests, {report['sightings_per_s']:.1f} sightings/s vs model b32 "
            f"{report['model_batch32_images_per_s']:.1f} img/s (ratio {report['ratio']:.2f}), "
            f"p50 {report['p50_ms']:.0f} ms, mean batch {report['mean_batch']:.1f}"
        )
    elif rc is None:
        result["summary"] = f"service_load.py killed after {timeout:.0f} s (its time box)"
    else:
        result["summary"] = f"no result (exit {rc})"
    return result


# ----------------------------------------------------------------------------------------------- the run


def machine_info(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "device": str(device),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info["gpu"] = props.name
        info["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
        info["compute_capability"] = f"{props.major}.{props.minor}"
        info["cudnn"] = torch.backends.cudnn.version()
        with contextlib.suppress(Exception):
            info["nccl"] = ".".join(str(v) for v in torch.cuda.nccl.version())
    for module in ("torchvision", "onnxruntime", "faiss", "numpy"):
        try:
            imported = importlib.import_module(module)
            info[module] = getattr(imported, "__version__", "?")
        except ImportError:
            info[module] = None
    with contextlib.suppress(Exception):
        import onnxruntime

        info["onnxruntime_providers"] = onnxruntime.get_available_providers()
    with contextlib.suppress(Exception):
        import faiss

        info["faiss_gpus"] = faiss.get_num_gpus()
    return info


STEP_FUNCTIONS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "training": step_training,
    "resume": step_resume,
    "ddp": step_ddp,
    "embedding": step_embedding,
    "faiss_cpu": step_faiss_cpu,
    "faiss_gpu": step_faiss_gpu,
    "service": step_service,
}
# Seconds a step needs to be worth starting, per profile; with less left it is skipped for the time budget.
STEP_MINIMUM = {
    "gpu": {
        "training": 60,
        "resume": 30,
        "ddp": 30,
        "embedding": 40,
        "faiss_cpu": 15,
        "faiss_gpu": 10,
        "service": 60,
    },
    "tiny": {
        "training": 20,
        "resume": 10,
        "ddp": 12,
        "embedding": 25,
        "faiss_cpu": 2,
        "faiss_gpu": 2,
        "service": 25,
    },
}


def write_report(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    public = {key: value for key, value in report.items() if not key.startswith("_")}
    tmp.write_text(json.dumps(sanitize(public), indent=2, default=plain, allow_nan=False))
    os.replace(tmp, path)


def sanitize(value: Any) -> Any:
    """Replace NaN/inf by None so the JSON stays valid."""
    if isinstance(value, float):
        return finite(value)
    if isinstance(value, dict):
        return {str(k): sanitize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [sanitize(v) for v in value]
    return value


def run_step(name: str, ctx: Context, report: dict[str, Any], out: Path) -> None:
    minimum = STEP_MINIMUM[ctx.profile.name][name]
    steps = report["steps"]
    if ctx.remaining() < minimum:
        steps[name] = {
            "status": "skipped",
            "reason": f"time budget: {max(ctx.remaining(), 0):.0f} s left, the step needs {minimum:.0f} s",
        }
        log(f"== {name}: skipped ({steps[name]['reason']})")
        write_report(report, out)
        return
    log(f"== {name} ({ctx.remaining():.0f} s of the budget left)")
    steps[name] = {"status": "running"}
    write_report(report, out)
    started = time.perf_counter()
    entry: dict[str, Any]
    try:
        result = STEP_FUNCTIONS[name](ctx)
        failed = [check for check, passed in result.get("checks", {}).items() if not passed]
        entry = {"status": "failed" if failed else "ok", **result}
        if failed:
            entry["error"] = f"check failed: {', '.join(failed)}"
    except SkipStepError as exc:
        entry = {"status": "skipped", "reason": str(exc)}
    except ModuleNotFoundError as exc:
        package = (exc.name or "").split(".")[0]
        if package and package not in OWN_PACKAGES:
            entry = {"status": "skipped", "reason": f"missing Python package {package!r} ({exc})"}
        else:
            entry = {
                "status": "failed",
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc()[-3000:],
            }
    except KeyboardInterrupt as exc:
        why = str(exc) or "Ctrl-C"
        steps[name] = {
            "status": "failed",
            "error": f"interrupted ({why}) before the step finished",
            "seconds": time.perf_counter() - started,
        }
        write_report(report, out)
        raise
    except Exception as exc:
        entry = {
            "status": "failed",
            "error": f"{type(exc).__name__}: {exc}"[:2000],
            "traceback": traceback.format_exc()[-3000:],
        }
    free_cuda()
    entry["seconds"] = time.perf_counter() - started
    steps[name] = sanitize(entry)
    report["seconds"] = time.monotonic() - STARTED
    write_report(report, out)
    detail = entry.get("summary") or entry.get("reason") or entry.get("error") or ""
    log(f"== {name}: {entry['status']} in {entry['seconds']:.1f} s: {detail}")
    if entry["status"] == "failed" and "traceback" in entry:
        log(tail(entry["traceback"], 8))


def fmt(value: Any, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def print_tables(report: dict[str, Any]) -> None:
    steps = report["steps"]
    machine = report["machine"]
    where = machine.get("gpu") or "CPU"
    log(f"\nGPU check ({report['profile']} profile) on {where}, torch {machine['torch']}")
    log(f"\n{'step':10s} {'status':8s} {'seconds':>7s}  result")
    for name in STEPS:
        entry = steps.get(name)
        if entry is None:
            continue
        detail = (
            entry.get("summary") if entry["status"] == "ok" else entry.get("reason") or entry.get("error")
        )
        if entry["status"] == "failed" and entry.get("summary"):
            detail = f"{entry.get('error')}; {entry['summary']}"
        log(f"{name:10s} {entry['status']:8s} {fmt(entry.get('seconds')):>7s}  {detail or ''}")
    training = steps.get("training", {})
    if training.get("forms"):
        head = f"{'steps':>5s} {'img/s':>8s} {'peak MiB':>9s} {'loss first':>10s} {'loss last':>9s}"
        log(f"\n{'training form':14s} {head}")
        for name, form in training["forms"].items():
            if "error" in form:
                log(f"{name:14s} {form['error'][:80]}")
                continue
            log(
                f"{name:14s} {form['steps']:5d} {fmt(form['images_per_s']):>8s} "
                f"{fmt(form['peak_cuda_mib'], '.0f'):>9s} "
                f"{fmt(form['loss_first'], '.4f'):>10s} {fmt(form['loss_last'], '.4f'):>9s}"
            )
    embedding = steps.get("embedding", {})
    if embedding.get("rows"):
        batches = sorted({int(b) for row in embedding["rows"] for b in row["images_per_s"]})
        head = " ".join(f"{'b' + str(b) + ' img/s':>11s}" for b in batches)
        log(f"\n{'runtime':12s} {'prec':4s} {'device':6s} {'cos min':>9s} {head}")
        for row in embedding["rows"]:
            rates = " ".join(f"{fmt(row['images_per_s'].get(str(b))):>11s}" for b in batches)
            where = f"{row['runtime']:12s} {row['precision']:4s} {row['device']:6s}"
            log(f"{where} {fmt(row['cosine_min'], '.6f'):>9s} {rates}")


def interrupt(signum: int, frame: object) -> None:
    """SIGTERM (``timeout``, a killed job) ends the run like Ctrl-C: the step in progress is marked failed."""
    raise KeyboardInterrupt(f"signal {signum}")


def choose_device(requested: str) -> torch.device:
    if requested == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_check: --device cuda but CUDA is not available")
    if requested == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", 0)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--ddp-worker"]:
        return ddp_worker(argv[1], argv[2:])
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tiny", action="store_true", help="tiny sizes (automatic without CUDA)")
    parser.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    parser.add_argument(
        "--steps", default=",".join(STEPS), help=f"comma-separated subset of {','.join(STEPS)}"
    )
    parser.add_argument(
        "--budget", type=float, default=None, help="seconds for the whole run (gpu 450, tiny 110)"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="JSON path (default bench/results/gpu_check[_tiny].json)"
    )
    args = parser.parse_args(argv)
    device = choose_device(args.device)
    profile = TINY if args.tiny or device.type == "cpu" else GPU
    names = [name.strip() for name in args.steps.split(",") if name.strip()]
    unknown = sorted(set(names) - set(STEPS))
    if unknown:
        parser.error(f"unknown steps {unknown}; choose from {', '.join(STEPS)}")
    out = args.out or RESULTS / ("gpu_check.json" if profile.name == "gpu" else "gpu_check_tiny.json")
    budget = args.budget or profile.budget
    signal.signal(signal.SIGTERM, interrupt)
    report: dict[str, Any] = {
        "profile": profile.name,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "budget_s": budget,
        "machine": machine_info(device),
        "settings": asdict(profile),
        "steps": {},
    }
    where = report["machine"].get("gpu") or device
    log(f"gpu_check: {profile.name} profile on {where}, budget {budget:.0f} s")
    interrupted = False
    with tempfile.TemporaryDirectory(prefix="gpu-check-", ignore_cleanup_errors=True) as tmp:
        ctx = Context(profile, device, Path(tmp), STARTED + budget)
        for name in STEPS:
            if name not in names:
                continue
            if interrupted:
                report["steps"][name] = {
                    "status": "skipped",
                    "reason": "not reached: the run was interrupted",
                }
                continue
            try:
                run_step(name, ctx, report, out)
            except KeyboardInterrupt:
                interrupted = True
    failed = [name for name, entry in report["steps"].items() if entry["status"] == "failed"]
    report["seconds"] = time.monotonic() - STARTED
    report["exit_code"] = 1 if failed or interrupted else 0
    write_report(report, out)
    print_tables(report)
    log(
        f"\n{'FAILED: ' + ', '.join(failed) if failed else 'all steps that ran passed'}; "
        f"{report['seconds']:.0f} s; wrote {out}"
    )
    return report["exit_code"]


if __name__ == "__main__":
    sys.exit(main())
