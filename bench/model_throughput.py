"""CPU (and GPU when present) throughput of RGA-SC against the paper's naive form and plain ResNet-50.

All models share one run so the noisy machine affects them alike: parameters, FLOPs per image,
images/s at batch 1 and 32 for eager, TorchScript and ONNX Runtime, and activation memory of a
training forward pass at batch 16 (it grows linearly with the batch; the naive form at batch 64
needs more memory than this 24 GB machine has). Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from model import build_model, export_model, load_embedder
from model.network import EmbeddingNet
from model.rga_naive import materialized_copy

INPUT_SIZE = (256, 128)


def count_flops(module: torch.nn.Module) -> float:
    """FLOPs (multiply-add = 2) of one 256x128 image through ``module``."""
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        module(torch.randn(1, 3, *INPUT_SIZE))
    return float(counter.get_total_flops())


def images_per_second(run: Callable[[torch.Tensor], object], batch: int, repeats: int) -> tuple[float, float]:
    """Median images per wall second and per CPU second of ``repeats`` calls after a warm-up call.

    The CPU-second figure counts the work of all threads, so it holds up on a shared machine.
    """
    x = torch.randn(batch, 3, *INPUT_SIZE)
    run(x)
    wall, cpu = [], []
    for _ in range(repeats):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        run(x)
        wall.append(time.perf_counter() - start_wall)
        cpu.append(time.process_time() - start_cpu)
    return batch / statistics.median(wall), batch / statistics.median(cpu)


def activation_bytes(net: torch.nn.Module, batch: int) -> int:
    """Bytes of distinct tensors autograd saves for backward in one training forward pass."""
    seen: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    net.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        outputs = net(torch.randn(batch, 3, *INPUT_SIZE))
    del outputs
    return sum(seen.values())


def eager_runner(net: torch.nn.Module, device: torch.device, half: bool = False):
    module = EmbeddingNet(net).to(device).eval()
    if half:
        module = module.half()

    def run(x: torch.Tensor):
        with torch.inference_mode():
            out = module(x.to(device, dtype=torch.float16 if half else torch.float32))
            if device.type == "cuda":
                torch.cuda.synchronize()
            return out

    return run


def exported_runner(net: torch.nn.Module, runtime: str, workdir: Path, device: str = "cpu"):
    out = export_model(net, workdir / runtime, {"purpose": "benchmark"})
    embedder = load_embedder(out, device=device, runtime=runtime)

    def run(x: torch.Tensor):
        result = embedder.embed_tensor(x)
        if device == "cuda":
            torch.cuda.synchronize()
        return result

    return run


def gpu_training_memory(net: torch.nn.Module, batch: int) -> float:
    """Peak CUDA memory (MiB) of one mixed-precision training step at ``batch``."""
    device = torch.device("cuda")
    net = net.to(device).train()
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-4)
    x = torch.randn(batch, 3, *INPUT_SIZE, device=device)
    torch.cuda.reset_peak_memory_stats()
    with torch.autocast("cuda", dtype=torch.float16):
        pooled, bn_feature, _ = net(x)
        loss = pooled.float().pow(2).mean() + bn_feature.float().pow(2).mean()
    loss.backward()
    optimizer.step()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() / 2**20
    net.cpu()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch and ONNX Runtime")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per measurement")
    parser.add_argument("--quick", action="store_true", help="batch 1 and 8 only, one repeat (smoke run)")
    parser.add_argument("--output", type=Path, default=Path("bench/results/model_throughput.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    batches = (1, 8) if args.quick else (1, 32)
    repeats = 1 if args.quick else args.repeats

    ours = build_model("resnet50", "rgasc", INPUT_SIZE).eval()
    models = {
        "RGA-SC (factored, ours)": ours,
        "RGA-SC (naive, paper form)": materialized_copy(ours),
        "ResNet-50 LS1 (plain)": build_model("resnet50", "none", INPUT_SIZE).eval(),
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        runners: dict[tuple[str, str], Callable] = {}
        for name, net in models.items():
            runners[(name, "eager")] = eager_runner(net, torch.device("cpu"))
            if "naive" not in name:
                for runtime in ("torchscript", "onnx"):
                    runners[(name, runtime)] = exported_runner(net, runtime, Path(tmp) / name[:6])
        for batch in batches:
            for (name, runtime), run in runners.items():
                if "naive" in name and batch > 8 and args.quick:
                    continue
                rate, cpu_rate = images_per_second(run, batch, repeats if batch > 1 else 5 * repeats)
                rows.append(
                    {
                        "model": name,
                        "runtime": runtime,
                        "device": "cpu",
                        "batch": batch,
                        "images_per_s": rate,
                        "images_per_cpu_s": cpu_rate,
                    }
                )
                print(f"  {name:28s} {runtime:12s} batch {batch:3d}: {rate:7.2f} img/s", flush=True)

    summary = {
        name: {
            "parameters": sum(p.numel() for p in net.parameters()),
            "gflops_per_image": count_flops(EmbeddingNet(net).eval()) / 1e9,
            "train_activation_mib_batch16": None if args.quick else activation_bytes(net, 16) / 2**20,
        }
        for name, net in models.items()
    }
    if torch.cuda.is_available():
        for name, net in models.items():
            for batch in (1, 32, 128):
                rate, _ = images_per_second(eager_runner(net, torch.device("cuda"), half=True), batch, 10)
                rows.append(
                    {
                        "model": name,
                        "runtime": "eager-fp16",
                        "device": "cuda",
                        "batch": batch,
                        "images_per_s": rate,
                    }
                )
            summary[name]["cuda_train_peak_mib_batch64_amp"] = gpu_training_memory(net, 64)

    plain = "ResNet-50 LS1 (plain)"
    print(f"\n{'model':28s} {'params':>11s} {'GFLOPs':>7s} {'act. MiB@16':>11s}")
    for name, info in summary.items():
        memory = info["train_activation_mib_batch16"]
        print(
            f"{name:28s} {info['parameters']:11,d} {info['gflops_per_image']:7.2f} "
            f"{'-' if memory is None else round(memory):>11}"
        )
    print(
        f"\n{'model':28s} {'runtime':12s} {'device':6s} {'batch':>5s} {'img/s':>8s} {'vs plain':>8s}"
        f" {'img/CPU-s':>9s} {'vs plain':>8s}"
    )
    plain_rows = {(r["runtime"], r["device"], r["batch"]): r for r in rows if r["model"] == plain}
    for row in rows:
        base = plain_rows.get((row["runtime"], row["device"], row["batch"]), {})
        row["vs_plain"] = row["images_per_s"] / base.get("images_per_s", float("nan"))
        cpu_rate = row.get("images_per_cpu_s", float("nan"))
        row["cpu_vs_plain"] = cpu_rate / base.get("images_per_cpu_s", float("nan"))
        print(
            f"{row['model']:28s} {row['runtime']:12s} {row['device']:6s} {row['batch']:5d} "
            f"{row['images_per_s']:8.2f} {row['vs_plain']:7.2f}x {cpu_rate:9.2f} {row['cpu_vs_plain']:7.2f}x"
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "machine": {
                    "platform": platform.platform(),
                    "threads": args.threads,
                    "torch": torch.__version__,
                    "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
                },
                "input_size": list(INPUT_SIZE),
                "models": summary,
                "throughput": rows,
            },
            indent=2,
        )
    )
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
