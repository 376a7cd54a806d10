"""What small hostile images cost the running service, with the image limits off and on, in one run.

Each case starts a fresh ``reid-serve`` (subprocess, loopback, temporary SQLite, rate limiting off, an
untrained ResNet-18 RGA-SC export unless ``--model-dir``), warms it with four concurrent
``POST /sightings`` of eight ordinary crops (twice, so that the model's memory for full batches is in
use before), then sends four concurrent ``POST /sightings`` of eight test images each and measures:

- the wall time until all four are answered, and their status codes;
- the server's CPU time over the burst (``/proc/<pid>/stat``);
- the server's peak memory growth: the kernel's resident-set high-water mark (``VmHWM``, reset through
  ``/proc/<pid>/clear_refs`` just before the burst) minus the resident set before it.

Three workloads, each without the limits (``REID_IMAGE_MAX_SIDE=0``, ``REID_IMAGE_MAX_ASPECT=0``,
``REID_DECODE_MEMORY_MB=0``: only the 16-megapixel limit, as before issue 16) and with the defaults:

- ``hostile (8 kinds)``: eight different images of 68 bytes to 190 KB with up to 16 million pixels
  each (the issue's 1 x 16,000,000 PNG among them), all of which the old limit let through;
- ``largest accepted PNG``: eight 4,000 x 4,000 black PNGs (47 KB each), the largest images the
  default side and aspect limits accept, so only the decoding budget bounds them;
- ``large JPEG``: eight 4,000 x 4,000 JPEGs (190 KB each), decoded at 1/8 scale with the limits on.

Prints a table and writes ``bench/results/hostile_images.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path

import httpx
import torch
from PIL import Image

from model import build_model, export_model

ADMIN_KEY = "bench-admin-key"
RESULTS = Path(__file__).resolve().parent / "results" / "hostile_images.json"
REQUESTS = 4
MIB = 1024 * 1024
LIMITS_OFF = {"REID_IMAGE_MAX_SIDE": "0", "REID_IMAGE_MAX_ASPECT": "0", "REID_DECODE_MEMORY_MB": "0"}


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_declaring(width: int, height: int, color_type: int = 0) -> bytes:
    """A PNG of a few dozen bytes whose header declares ``width`` x ``height`` 8-bit pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    idat = chunk(b"IDAT", zlib.compress(b"\x00" * 16))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + idat + chunk(b"IEND", b"")


def png_of_zeros(width: int, height: int, color_type: int = 0, bit_depth: int = 8) -> bytes:
    """A complete PNG of ``width`` x ``height`` black pixels: tens of kilobytes for 16 million pixels."""
    channels = {0: 1, 2: 3, 6: 4}[color_type]
    row = b"\x00" * (1 + width * channels * bit_depth // 8)
    packer = zlib.compressobj(9)
    rows_per_block = max(1, (1 << 20) // len(row))
    parts = [
        packer.compress(row * min(rows_per_block, height - done)) for done in range(0, height, rows_per_block)
    ]
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    idat = chunk(b"IDAT", b"".join(parts) + packer.flush())
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + idat + chunk(b"IEND", b"")


def flat_jpeg(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height), 128).save(buffer, format="JPEG", quality=50)
    return buffer.getvalue()


def hostile_images() -> dict[str, bytes]:
    """Eight small images of up to 16 million pixels each, all of which the 16-megapixel limit let
    through and Pillow decodes (the first is the issue's: a PNG of a few dozen bytes whose data ends
    early, which Pillow decodes anyway)."""
    return {
        "PNG 1 x 16,000,000 gray (truncated)": png_declaring(1, 16_000_000),
        "PNG 16,000,000 x 1 gray": png_of_zeros(16_000_000, 1),
        "PNG 2 x 8,000,000 RGBA": png_of_zeros(2, 8_000_000, color_type=6),
        "PNG 8,000,000 x 2 RGB": png_of_zeros(8_000_000, 2, color_type=2),
        "PNG 1,000 x 16,000 gray": png_of_zeros(1_000, 16_000),
        "PNG 4,000 x 4,000 RGB": png_of_zeros(4_000, 4_000, color_type=2),
        "PNG 4,000 x 4,000 16-bit gray": png_of_zeros(4_000, 4_000, bit_depth=16),
        "JPEG 4,000 x 4,000 gray": flat_jpeg(4_000, 4_000),
    }


WORKLOADS = {
    "hostile (8 kinds)": lambda: list(hostile_images().values()),
    "largest accepted PNG": lambda: [png_of_zeros(4_000, 4_000, color_type=2)] * 8,
    "large JPEG": lambda: [flat_jpeg(4_000, 4_000)] * 8,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_model(model_dir: Path | None, workdir: Path) -> Path:
    """The given export, or an untrained ResNet-18 RGA-SC (256 x 128) exported into ``workdir``."""
    if model_dir is not None:
        return model_dir
    out = workdir / "model"
    if not (out / "model.json").is_file():
        torch.manual_seed(0)
        print(
            "exporting an untrained resnet18 rgasc 256x128 (the images, not the model, are measured)",
            flush=True,
        )
        export_model(build_model("resnet18", "rgasc", (256, 128)), out, {"note": "untrained, for bench only"})
    return out


def proc_status(pid: int, field: str) -> float:
    """A ``/proc/<pid>/status`` field in MiB (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for process {pid}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(workdir: Path, model_dir: Path, limits_on: bool) -> tuple[subprocess.Popen, str]:
    from service.storage.db import migrate

    workdir.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{workdir / 'bench.db'}"
    migrate(url)
    port = free_port()
    env = os.environ | {
        "REID_DATABASE_URL": url,
        "REID_MODEL_DIR": str(model_dir),
        "REID_INDEX_DIR": str(workdir / "indexes"),
        "REID_ADMIN_KEY": ADMIN_KEY,
        "REID_RATE_LIMIT_PER_MINUTE": "0",
        "REID_DEVICE": "cpu",
        "REID_MAX_IMAGES_PER_REQUEST": "32",
    }
    if not limits_on:
        env |= LIMITS_OFF
    command = [sys.executable, "-c", "from service.cli import serve; serve()", "--port", str(port)]
    server = subprocess.Popen(command + ["--log-level", "error"], env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("server exited during start")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return server, base
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    server.kill()
    raise TimeoutError("server not ready")


def setup_store(base: str) -> tuple[int, dict[str, str]]:
    admin = {"X-API-Key": ADMIN_KEY}
    with httpx.Client(base_url=base, timeout=60) as client:
        store = client.post("/stores", json={"name": "bench"}, headers=admin).json()
        zone = client.post(f"/stores/{store['id']}/zones", json={"name": "z"}, headers=admin).json()
        camera = client.post(
            f"/stores/{store['id']}/cameras", json={"name": "c", "zone_id": zone["id"]}, headers=admin
        ).json()
        key = client.post(f"/stores/{store['id']}/keys", json={"name": "bench"}, headers=admin).json()["key"]
    return camera["id"], {"X-API-Key": key}


def ordinary_crop() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 128), (120, 80, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


async def burst(base: str, camera_id: int, headers: dict, images: list[bytes]) -> list[int]:
    """Four concurrent POST /sightings of ``images``; their status codes."""
    data = {"camera_id": str(camera_id), "captured_at": datetime.now(UTC).isoformat()}
    files = [("images", (f"{i}.img", image, "application/octet-stream")) for i, image in enumerate(images)]
    async with httpx.AsyncClient(base_url=base, timeout=600) as client:
        answers = await asyncio.gather(
            *(client.post("/sightings", data=data, files=files, headers=headers) for _ in range(REQUESTS))
        )
    return [answer.status_code for answer in answers]


def run_case(workdir: Path, model_dir: Path, workload: str, limits_on: bool) -> dict:
    server, base = start_server(workdir, model_dir, limits_on)
    try:
        camera_id, headers = setup_store(base)
        for _ in range(2):  # warm: the model embeds full batches, so its memory is in use before
            warm = asyncio.run(burst(base, camera_id, headers, [ordinary_crop()] * 8))
            assert warm == [201] * REQUESTS, warm
        time.sleep(1.0)
        images = WORKLOADS[workload]()
        Path(f"/proc/{server.pid}/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        rss_before = proc_status(server.pid, "VmRSS")
        cpu_before = cpu_seconds(server.pid)
        started = time.perf_counter()
        statuses = asyncio.run(burst(base, camera_id, headers, images))
        wall = time.perf_counter() - started
        cpu = cpu_seconds(server.pid) - cpu_before
        peak = proc_status(server.pid, "VmHWM")
        with httpx.Client(base_url=base, timeout=30) as client:
            alive = client.get("/healthz").status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=60)
    return {
        "workload": workload,
        "limits": "on (defaults)" if limits_on else "off",
        "requests": REQUESTS,
        "images_per_request": len(images),
        "image_bytes": sorted({len(image) for image in images}),
        "statuses": statuses,
        "wall_s": round(wall, 3),
        "server_cpu_s": round(cpu, 2),
        "rss_before_mib": round(rss_before, 1),
        "peak_growth_mib": round(peak - rss_before, 1),
        "server_alive_after": alive,
    }


def print_table(rows: list[dict]) -> None:
    print()
    print("| workload | limits | answers | wall | server CPU | peak memory growth |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        answers = ", ".join(f"{n} x {s}" for s, n in sorted(_count(row["statuses"]).items()))
        print(
            f"| {row['workload']} | {row['limits']} | {answers} | {row['wall_s']:.2f} s "
            f"| {row['server_cpu_s']:.1f} s | {row['peak_growth_mib']:.0f} MiB |"
        )


def _count(values: list[int]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, default=None, help="an exported model (default: untrained)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON results")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hostile-images-") as tmp:
        workdir = Path(tmp)
        model_dir = ensure_model(args.model_dir, workdir)
        rows = []
        for workload in WORKLOADS:
            for limits_on in (False, True):
                case = workdir / f"{workload.replace(' ', '-')}-{'on' if limits_on else 'off'}"
                rows.append(run_case(case, model_dir, workload, limits_on))
                print(json.dumps(rows[-1]), flush=True)
    print_table(rows)
    report = {
        "what": "four concurrent POST /sightings of eight images each against reid-serve on loopback",
        "images": {name: len(data) for name, data in hostile_images().items()},
        "limits_off": LIMITS_OFF,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "cases": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
