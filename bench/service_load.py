"""Sightings/s of the running service under N concurrent clients, beside the model's own batch throughput.

Starts ``reid-serve`` in a subprocess on 127.0.0.1 with a temporary SQLite database and an exported
model (``--model-dir``; without one, an untrained ResNet-50 RGA-SC is exported to a temp dir first),
posts synthetic person crops from N clients (bounded by a request count and a time limit), reads the
mean embed batch size from ``/metrics``, then stops the server and times ``Embedder.embed_tensor`` at
batch 32 on the same model. Prints a table and writes ``bench/results/service_load.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import torch
from PIL import Image

from model import build_model, export_model, load_embedder
from service.db import migrate
from training.datasets.synthetic import render_person

ADMIN_KEY = "bench-admin-key"
RESULTS = Path(__file__).resolve().parent / "results" / "service_load.json"


def free_port() -> int:
    """An unused TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def crops(count: int) -> list[bytes]:
    """PNG crops of synthetic people (many ids, several cameras)."""
    images = []
    for index in range(count):
        buffer = io.BytesIO()
        Image.fromarray(render_person(index % 97 + 1, index % 5, index)).save(buffer, format="PNG")
        images.append(buffer.getvalue())
    return images


def ensure_model(model_dir: Path | None, workdir: Path) -> Path:
    """The given export, or an untrained ResNet-50 RGA-SC exported into ``workdir``."""
    if model_dir is not None:
        return model_dir
    out = workdir / "model"
    torch.manual_seed(0)
    print("no --model-dir: exporting an untrained resnet50 rgasc 256x128 (throughput only)", flush=True)
    export_model(build_model("resnet50", "rgasc", (256, 128)), out, {"note": "untrained, for bench only"})
    return out


def start_server(workdir: Path, model_dir: Path, port: int, args: argparse.Namespace) -> subprocess.Popen:
    """Migrate a fresh SQLite database and start reid-serve on it."""
    url = f"sqlite:///{workdir / 'bench.db'}"
    migrate(url)
    env = os.environ | {
        "REID_DATABASE_URL": url,
        "REID_MODEL_DIR": str(model_dir),
        "REID_INDEX_DIR": str(workdir / "indexes"),
        "REID_ADMIN_KEY": ADMIN_KEY,
        "REID_EMBED_BATCH_SIZE": str(args.batch_size),
        "REID_EMBED_MAX_WAIT_MS": str(args.max_wait_ms),
        "REID_RATE_LIMIT_PER_MINUTE": "0",
    }
    command = [sys.executable, "-c", "from service.cli import serve; serve()", "--port", str(port)]
    command += ["--log-level", "warning"]
    return subprocess.Popen(command, env=env)


def wait_ready(base: str, server: subprocess.Popen, timeout: float = 300) -> None:
    """Poll /readyz until it answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("server exited during start")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError("server not ready")


def setup_store(base: str) -> tuple[str, list[int]]:
    """A store with four zones/cameras; returns its key and camera ids."""
    admin = {"X-API-Key": ADMIN_KEY}
    with httpx.Client(base_url=base, headers=admin, timeout=30) as client:
        store = client.post("/stores", json={"name": "bench"}).json()["id"]
        cameras = []
        for name in ("entrance", "aisle", "toys", "checkout"):
            zone = client.post(f"/stores/{store}/zones", json={"name": name}).json()["id"]
            cameras.append(
                client.post(f"/stores/{store}/cameras", json={"name": name, "zone_id": zone}).json()["id"]
            )
        key = client.post(f"/stores/{store}/keys", json={"name": "bench"}).json()["key"]
    return key, cameras


async def load(
    base: str, key: str, cameras: list[int], images: list[bytes], args: argparse.Namespace
) -> dict:
    """N clients posting one crop per request until the request count or time limit is reached."""
    latencies: list[float] = []
    failures = 0
    counter = iter(range(args.requests))
    deadline = time.monotonic() + args.seconds

    async def client_loop(client: httpx.AsyncClient) -> None:
        nonlocal failures
        for index in counter:
            if time.monotonic() > deadline:
                return
            data = {
                "camera_id": str(cameras[index % len(cameras)]),
                "captured_at": f"2026-11-25T10:00:{index % 60:02d}Z",
            }
            files = [("images", ("crop.png", images[index % len(images)], "image/png"))]
            started = time.perf_counter()
            response = await client.post("/sightings", data=data, files=files)
            latencies.append(time.perf_counter() - started)
            failures += response.status_code != 201

    limits = httpx.Limits(max_connections=args.clients)
    async with httpx.AsyncClient(
        base_url=base, headers={"X-API-Key": key}, timeout=120, limits=limits
    ) as client:
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for _ in range(args.clients)))
        elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "requests": len(latencies),
        "failures": failures,
        "seconds": elapsed,
        "sightings_per_s": (len(latencies) - failures) / elapsed,
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000,
    }


def metric(text: str, name: str) -> float:
    """The value of an unlabelled sample in Prometheus text."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def model_throughput(model_dir: Path, batch: int, repeats: int) -> float:
    """Median images/s of ``Embedder.embed_tensor`` at ``batch`` (same runtime the service picks)."""
    embedder = load_embedder(model_dir)
    x = torch.randn(batch, 3, *embedder.input_size)
    embedder.embed_tensor(x)
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        embedder.embed_tensor(x)
        runs.append(batch / (time.perf_counter() - started))
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="reid-load-") as tmp:
        workdir = Path(tmp)
        model_dir = ensure_model(args.model_dir, workdir)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = start_server(workdir, model_dir, port, args)
        try:
            wait_ready(base, server)
            key, cameras = setup_store(base)
            images = crops(64)
            asyncio.run(
                load(base, key, cameras, images[:4], argparse.Namespace(**vars(args) | {"requests": 8}))
            )
            before = httpx.get(f"{base}/metrics").text
            result = asyncio.run(load(base, key, cameras, images, args))
            after = httpx.get(f"{base}/metrics").text
        finally:
            server.terminate()
            server.wait(timeout=60)
        batches = metric(after, "reid_embed_batch_size_count") - metric(before, "reid_embed_batch_size_count")
        embedded = metric(after, "reid_embed_batch_size_sum") - metric(before, "reid_embed_batch_size_sum")
        result["mean_batch"] = embedded / batches if batches else 0.0
        result["model_batch32_images_per_s"] = model_throughput(model_dir, 32, 5)
        metadata = json.loads((model_dir / "model.json").read_text())
    result["ratio"] = result["sightings_per_s"] / result["model_batch32_images_per_s"]
    report = {
        "clients": args.clients,
        "batch_size": args.batch_size,
        "max_wait_ms": args.max_wait_ms,
        "model": metadata["architecture"],
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        **result,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(
        f"{'clients':>7} {'requests':>8} {'sight/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'mean batch':>10} "
        f"{'model b32 img/s':>15} {'ratio':>6}"
    )
    r = result
    print(
        f"{args.clients:>7} {r['requests']:>8} {r['sightings_per_s']:>8.2f} {r['p50_ms']:>8.0f} "
        f"{r['p99_ms']:>8.0f} {r['mean_batch']:>10.1f} {r['model_batch32_images_per_s']:>15.2f} "
        f"{r['ratio']:>6.2f}"
    )
    print(f"failures: {result['failures']}; wrote {args.out}")


if __name__ == "__main__":
    main()
