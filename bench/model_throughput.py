"""CPU (and GPU when present) throughput of RGA-SC against the paper's naive form and plain ResNet-50.

All models share one run so the noisy machine affects them alike: parameters, FLOPs per image,
images/s at batch 1 and 32 for eager, TorchScript, ONNX Runtime and the int8 ONNX model
(``reid-train export --int8``: RGA modules and head in float32, as the service runs it, and for RGA-SC
also the whole network in int8), and activation memory of a training forward pass at batch 16 (it
grows linearly with the batch; the naive form at batch 64 needs more memory than this 24 GB machine
has). Then where the int8 model's time goes (ONNX Runtime's profile, by part of the network), and its
fidelity on a trained network: the synthetic recipe's model (``bench/store_day.py`` trains and caches
it), its embeddings' cosine similarity to the float model's and rank-1/mAP of both, on the recipe's
synthetic evaluation and on a larger synthetic set. Prints tables and writes JSON.
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from model import build_model, export_model, load_embedder
from model.export_format import INT8_ONNX_FILE, ONNX_FILE
from model.network import EmbeddingNet
from model.quantize import KEEP_FLOAT, node_parts, quantize_export
from model.rga_naive import materialized_copy
from training.datasets import build_dataset
from training.datasets.synthetic import make_synthetic, render_person
from training.evaluation.fidelity import compare_runtimes

INPUT_SIZE = (256, 128)
ROOT = Path(__file__).resolve().parent.parent
OURS, PLAIN = "RGA-SC (factored, ours)", "ResNet-50 LS1 (plain)"
WHOLE_INT8 = "onnx-int8-all"  # the bench's name for the whole network in int8 (not a service runtime)
SPEED_CALIBRATION = 32  # crops calibrating the throughput models: their number does not change the speed


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
    return export_runner(out, runtime, device)


def export_runner(model_dir: Path, runtime: str, device: str = "cpu"):
    """Embed a batch with an export's ``runtime`` (``onnx-int8-all``: a whole-network int8 export)."""
    embedder = load_embedder(
        model_dir, device=device, runtime="onnx-int8" if runtime == WHOLE_INT8 else runtime
    )

    def run(x: torch.Tensor):
        result = embedder.embed_tensor(x)
        if device == "cuda":
            torch.cuda.synchronize()
        return result

    return run


def write_crops(folder: Path, count: int) -> Path:
    """``count`` synthetic person crops as PNG files (many people, several cameras)."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        image = render_person(index % 97 + 1, index % 5, index)
        Image.fromarray(image).save(folder / f"{index:04d}.png")
    return folder


def export_with_int8(net: torch.nn.Module, out: Path, crops: Path, whole: Path | None = None) -> Path:
    """One export with its int8 model (RGA and head float); ``whole``: a copy quantised end to end."""
    export_model(
        net, out, {"purpose": "benchmark"}, int8_calibration=crops, calibration_images=SPEED_CALIBRATION
    )
    if whole is not None:
        shutil.copytree(out, whole)
        quantize_export(whole, crops, SPEED_CALIBRATION, keep_float=())
    return out


PROFILE_PARTS = ("trunk", "rga", "head", "other")


def time_by_part(model_dir: Path, file: str, batch: int, threads: int, runs: int = 3) -> dict[str, float]:
    """Milliseconds per image in each part of the network, from ONNX Runtime's profile of ``runs`` calls.

    Nodes keep their names through quantisation and ONNX Runtime's fusions, except the fused int8
    convolutions and adds; those, (de)quantisation and float convolutions count as the trunk.
    """
    import onnxruntime

    parts = {name: part for part, names in node_parts(model_dir / ONNX_FILE, True).items() for name in names}
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.enable_profiling = True
    options.profile_file_prefix = str(model_dir / f"profile_{file}_{batch}")
    session = onnxruntime.InferenceSession(str(model_dir / file), options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((batch, 3, *INPUT_SIZE)).astype(np.float32)
    for _ in range(1 + runs):
        session.run(None, {"images": x})
    trace = json.loads(Path(session.end_profiling()).read_text())
    starts = sorted(e["ts"] for e in trace if e.get("cat") == "Session" and e["name"] == "model_run")
    trace = [e for e in trace if e["ts"] >= starts[1]]  # the first call (allocations) is a warm-up
    totals: collections.Counter[str] = collections.Counter()
    for event in trace:
        if event.get("cat") != "Node" or not event["name"].endswith("_kernel_time"):
            continue
        name, op = event["name"].removesuffix("_kernel_time"), event["args"].get("op_name", "")
        part = parts.get(name, "")
        if part in ("stem", "layer1", "layer2", "layer3", "layer4") or op.startswith(
            ("QLinear", "Quantize", "Dequantize", "Conv", "FusedConv", "MaxPool")
        ):
            part = "trunk"
        totals[part if part in PROFILE_PARTS else "other"] += event["dur"]
    return {part: totals[part] / 1000 / runs / batch for part in PROFILE_PARTS}


def store_day_model() -> tuple[Path, Path]:
    """The synthetic recipe's trained export and its dataset (bench/store_day.py trains them once)."""
    spec = importlib.util.spec_from_file_location("store_day_bench", ROOT / "bench" / "store_day.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.ensure_model(None), module.MODEL_CACHE / "data"


def fidelity(args: argparse.Namespace, workdir: Path) -> list[dict]:
    """int8 against float embeddings and rankings of a trained network, per evaluation and variant."""
    model_dir, data = args.fidelity_model, args.fidelity_data
    if model_dir is None or data is None:
        model_dir, data = store_day_model()
    larger = make_synthetic(
        workdir / "synthetic-larger", ids=args.fidelity_ids, cameras=4, seed=1, image_size=(64, 32)
    )
    evaluations = [
        ("the recipe's synthetic evaluation", data),
        (f"synthetic, {args.fidelity_ids} ids", larger),
    ]
    variants = [("RGA + head float (default)", KEEP_FLOAT), ("whole network int8", ())]
    rows = []
    for evaluation, root in evaluations:
        dataset = build_dataset("market1501", root)
        for variant, keep in variants:
            if keep == () and root is larger:
                continue
            copy = workdir / f"fidelity-{len(rows)}"
            copy.mkdir()
            for name in ("model.json", "model.ts", "model.onnx"):
                shutil.copy2(Path(model_dir) / name, copy / name)
            record = quantize_export(
                copy, root / "bounding_box_train", args.calibration_images, keep_float=keep
            )
            result = compare_runtimes(copy, dataset)
            rows.append(
                {
                    "evaluation": evaluation,
                    "variant": variant,
                    "calibration_images": record["calibration"]["images"],
                    "queries": len(dataset.query),
                    "gallery": len(dataset.gallery),
                    **result,
                }
            )
            print(
                f"  fidelity, {evaluation}, {variant}: cosine {result['mean_cosine']:.4f}, rank-1 "
                f"{result['delta_rank1']:+.2f}, mAP {result['delta_mAP']:+.2f}",
                flush=True,
            )
    return rows


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
    parser.add_argument(
        "--fidelity-model",
        type=Path,
        help="trained export for the int8 fidelity (default: the synthetic recipe's)",
    )
    parser.add_argument("--fidelity-data", type=Path, help="its synthetic dataset (Market-1501 layout)")
    parser.add_argument(
        "--fidelity-ids", type=int, default=200, help="identities of the larger synthetic set"
    )
    parser.add_argument(
        "--calibration-images", type=int, default=300, help="int8 calibration crops (fidelity)"
    )
    parser.add_argument("--no-fidelity", action="store_true", help="throughput only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    batches = (1, 8) if args.quick else (1, 32)
    repeats = 1 if args.quick else args.repeats

    ours = build_model("resnet50", "rgasc", INPUT_SIZE).eval()
    models = {
        OURS: ours,
        "RGA-SC (naive, paper form)": materialized_copy(ours),
        PLAIN: build_model("resnet50", "none", INPUT_SIZE).eval(),
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        crops = write_crops(workdir / "crops", SPEED_CALIBRATION)
        runners: dict[tuple[str, str], Callable] = {}
        exports: dict[str, Path] = {}
        for index, (name, net) in enumerate(models.items()):
            runners[(name, "eager")] = eager_runner(net, torch.device("cpu"))
            if "naive" not in name:
                whole = workdir / f"whole{index}" if name == OURS else None
                exports[name] = export_with_int8(net, workdir / f"model{index}", crops, whole)
                for runtime in ("torchscript", "onnx", "onnx-int8"):
                    runners[(name, runtime)] = export_runner(exports[name], runtime)
                if whole is not None:
                    runners[(name, WHOLE_INT8)] = export_runner(whole, WHOLE_INT8)
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
        profile = {
            f"{runtime} batch {batch}": time_by_part(
                exports[OURS], file, batch, args.threads, 1 if args.quick else 3
            )
            for batch in batches
            for runtime, file in (("onnx", ONNX_FILE), ("onnx-int8", INT8_ONNX_FILE))
        }
        fidelity_rows = [] if args.no_fidelity else fidelity(args, workdir)

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

    plain = PLAIN
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
    int8_rows = int8_speedups(rows)
    print_int8(int8_rows, profile, fidelity_rows)
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
                "int8_speedup": int8_rows,
                "int8_profile_ms_per_image": profile,
                "int8_fidelity": fidelity_rows,
            },
            indent=2,
        )
    )
    print(f"\nwrote {args.output}")


def int8_speedups(rows: list[dict]) -> list[dict]:
    """Each int8 row against the float ONNX Runtime row of the same model and batch (same run)."""
    onnx = {(r["model"], r["batch"]): r for r in rows if r["runtime"] == "onnx" and r["device"] == "cpu"}
    result = []
    for row in rows:
        base = onnx.get((row["model"], row["batch"]))
        if base is None or not row["runtime"].startswith("onnx-int8"):
            continue
        result.append(
            {
                "model": row["model"],
                "runtime": row["runtime"],
                "batch": row["batch"],
                "onnx_images_per_s": base["images_per_s"],
                "int8_images_per_s": row["images_per_s"],
                "speedup": row["images_per_s"] / base["images_per_s"],
                "cpu_speedup": row["images_per_cpu_s"] / base["images_per_cpu_s"],
            }
        )
    return result


def print_int8(speedups: list[dict], profile: dict[str, dict[str, float]], fidelity_rows: list[dict]) -> None:
    """The int8 tables: speed-up over float ONNX Runtime, time by part, fidelity."""
    print(
        f"\n{'int8 against float ONNX Runtime':44s} {'batch':>5s} {'onnx':>7s} {'int8':>7s} {'x':>6s}"
        f" {'x CPU-s':>7s}"
    )
    for r in speedups:
        label = f"{r['model']}, {'whole network' if r['runtime'] == WHOLE_INT8 else 'RGA + head float'}"
        print(
            f"{label:44s} {r['batch']:5d} {r['onnx_images_per_s']:7.2f} {r['int8_images_per_s']:7.2f} "
            f"{r['speedup']:5.2f}x {r['cpu_speedup']:6.2f}x"
        )
    print(
        f"\n{'ms per image, ' + OURS:44s} "
        + " ".join(f"{part:>7s}" for part in PROFILE_PARTS)
        + f" {'total':>7s}"
    )
    for label, parts in profile.items():
        cells = " ".join(f"{parts[part]:7.2f}" for part in PROFILE_PARTS)
        print(f"{label:44s} {cells} {sum(parts.values()):7.2f}")
    if fidelity_rows:
        print(
            f"\n{'int8 fidelity (trained synthetic model)':58s} {'cosine':>7s} {'min':>6s} {'rank-1':>13s}"
            f" {'mAP':>13s}"
        )
    for r in fidelity_rows:
        ref, int8 = r["reference"], r["candidate"]
        print(
            f"{r['evaluation'] + ', ' + r['variant']:58s} {r['mean_cosine']:7.4f} {r['min_cosine']:6.3f} "
            f"{ref['rank1']:5.1f}->{int8['rank1']:5.1f} {ref['mAP']:5.1f}->{int8['mAP']:5.1f}"
        )


if __name__ == "__main__":
    main()
