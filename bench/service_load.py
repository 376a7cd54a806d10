"""Load on the running service: ingest-only sightings/s, or a mixed ingest/match/density workload.

Both modes start ``reid-serve`` in a subprocess on 127.0.0.1 with a temporary SQLite database, rate
limiting off, and an exported model (``--model-dir``; without one, an untrained ResNet-50 RGA-SC is
exported to a temp dir first).

Default (ingest only): N clients post one synthetic person crop per request (bounded by a request count
and a time limit), the mean embed batch size is read from ``/metrics``, then the server is stopped and
``Embedder.embed_tensor`` is timed at batch 32 on the same model. Writes
``bench/results/service_load.json``.

``--mixed``: a store with four zones/cameras, person search enabled by the admin and some seeded
sightings; first ``/match`` alone on the idle server (its p50 is the yardstick), then C clients for a
bounded time each draw every request with fixed odds (POST /sightings of 1-4 crops, POST /match with a
case id, GET /density over the last hour in PT15M buckets) while the server's RSS is read from /proc
every second. Reports count, requests/s, errors and p50/p95/p99 latency per kind and overall, sightings
stored per second, and whether RSS levels off (growth in the second half of the run, net of the vectors
added, against the first half). ``--compare`` runs it twice in one go, with the behaviour before search
went ahead of ingest (``REID_EMBED_PRIORITY=false``, ``REID_LINK_OPTIMISTIC_ATTEMPTS=0``: linking under
the row lock, ``REID_BULK_NICE=0``) and with the defaults, on SQLite and (``--postgres URL``, a server
where the bench may create databases) on PostgreSQL, and prints /match p99 under load against the idle
p50 of the same server, and ingest throughput against the "before" run's. Each run also prints where
``/match`` spends its time, from the server's ``Server-Timing`` header: per phase, the idle p50, p50 and
p99 under load, and the mean over the slowest 1 % of requests. Exits 1 on any error and 2 when memory
keeps growing. Writes ``bench/results/service_load_mixed.json`` and a PNG of RSS and latencies over time
beside it (one per run with ``--compare``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import math
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scratch_database import scratch_postgres  # noqa: E402
from model import build_model, export_model, load_embedder  # noqa: E402
from service.common.phases import GC, parse_server_timing  # noqa: E402
from service.storage.db import migrate
from training.datasets.synthetic import render_person

ADMIN_KEY = "bench-admin-key"
RESULTS = Path(__file__).resolve().parent / "results" / "service_load.json"
MIXED_RESULTS = RESULTS.with_name("service_load_mixed.json")
ZONES = ("entrance", "aisle", "toys", "checkout")
KINDS = ("sightings", "match", "density")
CASE_ID = "bench-load"
RECENT_S = 3600
SEED_BATCH = 8
SHOWN_ERRORS = 5
MIB = 1024 * 1024
BEFORE = {  # the behaviour before: one queue in arrival order, linking under the lock, bulk not nicer
    "REID_EMBED_PRIORITY": "false",
    "REID_LINK_OPTIMISTIC_ATTEMPTS": "0",
    "REID_BULK_NICE": "0",
}


@dataclass(frozen=True)
class BenchStore:
    """A store made for the bench: its id, a store key and one camera per zone."""

    id: int
    key: str
    cameras: list[int]


@dataclass(frozen=True)
class Outcome:
    """One request of the mixed load: kind, end time (s from the start), latency (s), success, crops sent,
    and the server's phases (s, from its ``Server-Timing`` header)."""

    kind: str
    ended: float
    latency: float
    ok: bool
    crops: int
    error: str
    phases: dict[str, float] = field(default_factory=dict)


Sent = tuple[httpx.Response, int]


@dataclass
class MixedRun:
    """What the mixed clients share: the store, crops, kind odds, duration, and what they measured."""

    store: BenchStore
    images: list[bytes]
    weights: list[float]
    seconds: float
    start: float = 0.0
    outcomes: list[Outcome] = field(default_factory=list)
    rss: list[tuple[float, float]] = field(default_factory=list)


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


def ago(seconds: float) -> str:
    """ISO 8601 UTC timestamp ``seconds`` before now (the service refuses capture times in the future)."""
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat()


def ensure_model(model_dir: Path | None, workdir: Path) -> Path:
    """The given export, or an untrained ResNet-50 RGA-SC exported into ``workdir``."""
    if model_dir is not None:
        return model_dir
    out = workdir / "model"
    torch.manual_seed(0)
    print("no --model-dir: exporting an untrained resnet50 rgasc 256x128 (throughput only)", flush=True)
    export_model(build_model("resnet50", "rgasc", (256, 128)), out, {"note": "untrained, for bench only"})
    return out


def start_server(
    workdir: Path,
    model_dir: Path,
    port: int,
    args: argparse.Namespace,
    database_url: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen:
    """Migrate a fresh database (SQLite in ``workdir`` by default) and start reid-serve on it."""
    url = database_url or f"sqlite:///{workdir / 'bench.db'}"
    migrate(url)
    env = (
        os.environ
        | (extra_env or {})
        | {
            "REID_DATABASE_URL": url,
            "REID_MODEL_DIR": str(model_dir),
            "REID_INDEX_DIR": str(workdir / "indexes"),
            "REID_ADMIN_KEY": ADMIN_KEY,
            "REID_EMBED_BATCH_SIZE": str(args.batch_size),
            "REID_EMBED_MAX_WAIT_MS": str(args.max_wait_ms),
            "REID_RATE_LIMIT_PER_MINUTE": "0",
        }
    )
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


@contextlib.contextmanager
def serving(
    workdir: Path,
    model_dir: Path,
    args: argparse.Namespace,
    database_url: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[tuple[str, subprocess.Popen]]:
    """A ready server on a free loopback port (base URL and process), stopped on exit."""
    port = free_port()
    server = start_server(workdir, model_dir, port, args, database_url, extra_env)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, server)
        yield base, server
    finally:
        server.terminate()
        server.wait(timeout=60)


def setup_store(base: str) -> BenchStore:
    """A store with one camera in each of four zones, and a store key."""
    admin = {"X-API-Key": ADMIN_KEY}
    with httpx.Client(base_url=base, headers=admin, timeout=30) as client:
        store = client.post("/stores", json={"name": "bench"}).raise_for_status().json()["id"]
        cameras = []
        for name in ZONES:
            zone = client.post(f"/stores/{store}/zones", json={"name": name}).raise_for_status().json()["id"]
            camera = client.post(f"/stores/{store}/cameras", json={"name": name, "zone_id": zone})
            cameras.append(camera.raise_for_status().json()["id"])
        key = client.post(f"/stores/{store}/keys", json={"name": "bench"}).raise_for_status().json()["key"]
    return BenchStore(store, key, cameras)


def enable_person_search(base: str, store_id: int) -> str:
    """Let the store use /match (admin PATCH); a 404/405 means a server from before the opt-in."""
    response = httpx.patch(
        f"{base}/stores/{store_id}",
        json={"match_enabled": True},
        headers={"X-API-Key": ADMIN_KEY},
        timeout=30,
    )
    if response.status_code == 200:
        return "enabled"
    if response.status_code in (404, 405):
        return f"older server (PATCH /stores/{{id}} answered {response.status_code}); /match not gated"
    raise RuntimeError(f"enabling person search: {response.status_code} {response.text[:300]}")


async def load(base: str, store: BenchStore, images: list[bytes], args: argparse.Namespace) -> dict:
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
                "camera_id": str(store.cameras[index % len(store.cameras)]),
                "captured_at": ago(index % 60),
            }
            files = [("images", ("crop.png", images[index % len(images)], "image/png"))]
            started = time.perf_counter()
            response = await client.post("/sightings", data=data, files=files)
            latencies.append(time.perf_counter() - started)
            failures += response.status_code != 201

    limits = httpx.Limits(max_connections=args.clients)
    async with httpx.AsyncClient(
        base_url=base, headers={"X-API-Key": store.key}, timeout=120, limits=limits
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


def mean_batch(before: str, after: str) -> float:
    """Mean embed batch size between two ``/metrics`` scrapes."""
    batches = metric(after, "reid_embed_batch_size_count") - metric(before, "reid_embed_batch_size_count")
    embedded = metric(after, "reid_embed_batch_size_sum") - metric(before, "reid_embed_batch_size_sum")
    return embedded / batches if batches else 0.0


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


def run_ingest(args: argparse.Namespace) -> int:
    """The ingest-only measurement beside the model's batch-32 throughput; prints a table, writes JSON."""
    with tempfile.TemporaryDirectory(prefix="reid-load-") as tmp:
        workdir = Path(tmp)
        model_dir = ensure_model(args.model_dir, workdir)
        with serving(workdir, model_dir, args) as (base, _):
            store = setup_store(base)
            images = crops(64)
            asyncio.run(load(base, store, images[:4], argparse.Namespace(**vars(args) | {"requests": 8})))
            before = httpx.get(f"{base}/metrics").text
            result = asyncio.run(load(base, store, images, args))
            after = httpx.get(f"{base}/metrics").text
        result["mean_batch"] = mean_batch(before, after)
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
    return 0


async def post_sightings(
    client: httpx.AsyncClient, store: BenchStore, images: list[bytes], rng: random.Random
) -> Sent:
    """POST /sightings with 1-4 crops from a random camera, captured within the last minute."""
    count = rng.randint(1, 4)
    files = [("images", ("crop.png", rng.choice(images), "image/png")) for _ in range(count)]
    data = {"camera_id": str(rng.choice(store.cameras)), "captured_at": ago(rng.uniform(0, 60))}
    return await client.post("/sightings", data=data, files=files), count


async def post_match(
    client: httpx.AsyncClient, store: BenchStore, images: list[bytes], rng: random.Random
) -> Sent:
    """POST /match with one crop, a case id, top 10 over the last hour."""
    data = {"case_id": CASE_ID, "top_k": "10", "since": ago(RECENT_S)}
    files = {"image": ("query.png", rng.choice(images), "image/png")}
    return await client.post("/match", data=data, files=files), 1


async def get_density(
    client: httpx.AsyncClient, store: BenchStore, images: list[bytes], rng: random.Random
) -> Sent:
    """GET /density for every zone over the last hour in 15-minute buckets."""
    params = {"start": ago(RECENT_S), "end": ago(0), "bucket": "PT15M"}
    return await client.get("/density", params=params), 0


REQUESTS: dict[
    str, Callable[[httpx.AsyncClient, BenchStore, list[bytes], random.Random], Awaitable[Sent]]
] = {"sightings": post_sightings, "match": post_match, "density": get_density}


async def timed(kind: str, client: httpx.AsyncClient, run: MixedRun, rng: random.Random) -> Outcome:
    """Send one request of ``kind`` and record it; a non-2xx answer or a transport error is an error."""
    started = time.perf_counter()
    phases: dict[str, float] = {}
    try:
        response, count = await REQUESTS[kind](client, run.store, run.images, rng)
        ok = response.is_success
        error = "" if ok else f"{response.status_code} {response.text[:300]}"
        phases = parse_server_timing(response.headers.get("server-timing", ""))
    except httpx.HTTPError as exc:
        ok, count, error = False, 0, f"{type(exc).__name__}: {exc!r}"
    ended = time.perf_counter()
    return Outcome(kind, ended - run.start, ended - started, ok, count, error, phases)


async def mixed_client(client: httpx.AsyncClient, run: MixedRun, rng: random.Random) -> None:
    """One client: requests drawn with the run's odds, back to back, until the run's time is up."""
    while time.perf_counter() - run.start < run.seconds:
        kind = rng.choices(KINDS, weights=run.weights)[0]
        run.outcomes.append(await timed(kind, client, run, rng))


def rss_mib(pid: int) -> float:
    """Resident set size of a process in MiB (VmRSS in /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (from /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def sample_rss(pid: int, run: MixedRun, interval: float, stop: asyncio.Event) -> None:
    """Append (seconds since start, RSS MiB) every ``interval`` until ``stop``, and once more at the end."""
    while not stop.is_set():
        run.rss.append((time.perf_counter() - run.start, rss_mib(pid)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
    run.rss.append((time.perf_counter() - run.start, rss_mib(pid)))


async def seed(base: str, run: MixedRun, count: int) -> list[str]:
    """Seed ``count`` sightings (8 crops a request, over the past hour), then try /match and /density once."""
    rng = random.Random(len(run.images))
    statuses = []
    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": run.store.key}, timeout=300) as client:
        for first in range(0, count, SEED_BATCH):
            files = [("images", ("c.png", rng.choice(run.images), "image/png")) for _ in range(SEED_BATCH)]
            data = {
                "camera_id": str(rng.choice(run.store.cameras)),
                "captured_at": ago(rng.uniform(60, RECENT_S)),
            }
            response = await client.post("/sightings", data=data, files=files[: count - first])
            statuses.append(f"seed {response.status_code}")
        for kind in ("match", "density"):
            response, _ = await REQUESTS[kind](client, run.store, run.images, rng)
            statuses.append(f"{kind} {response.status_code}")
            if not response.is_success:
                print(f"warm-up {kind}: {response.status_code} {response.text[:300]}", flush=True)
    return statuses


async def mixed_load(base: str, pid: int, run: MixedRun, clients: int, interval: float) -> float:
    """Run the mixed clients for the run's duration while sampling RSS; returns the elapsed seconds."""
    stop = asyncio.Event()
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(
        base_url=base, headers={"X-API-Key": run.store.key}, timeout=120, limits=limits
    ) as client:
        run.start = time.perf_counter()
        sampler = asyncio.create_task(sample_rss(pid, run, interval, stop))
        await asyncio.gather(*(mixed_client(client, run, random.Random(n)) for n in range(clients)))
        elapsed = time.perf_counter() - run.start
        stop.set()
        await sampler
    return elapsed


def percentile(ordered: list[float], q: float) -> float | None:
    """Nearest-rank percentile of sorted values (None when empty)."""
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def group_stats(group: list[Outcome], elapsed: float) -> dict:
    """Count, requests/s, errors and p50/p95/p99 latency in ms of some outcomes."""
    ordered = sorted(o.latency for o in group)
    stats = {"count": len(group), "per_s": len(group) / elapsed, "errors": sum(not o.ok for o in group)}
    for q in (50, 95, 99):
        value = percentile(ordered, q)
        stats[f"p{q}_ms"] = None if value is None else value * 1000
    return stats


def summarise(outcomes: list[Outcome], elapsed: float) -> dict[str, dict]:
    """Per-kind and overall statistics."""
    groups = {kind: [o for o in outcomes if o.kind == kind] for kind in KINDS}
    return {name: group_stats(group, elapsed) for name, group in (groups | {"all": outcomes}).items()}


def rss_at(samples: list[tuple[float, float]], when: float) -> float:
    """The RSS sample taken nearest to ``when``."""
    return min(samples, key=lambda sample: abs(sample[0] - when))[1]


def memory_report(run: MixedRun, elapsed: float, dim: int, args: argparse.Namespace) -> dict:
    """RSS at start, growth per half (raw and net of the vectors added), and the levels-off verdict."""
    start, middle, end = run.rss[0][1], rss_at(run.rss, elapsed / 2), run.rss[-1][1]
    vector_mib = (dim * 4 + 8) / MIB
    stored = [o for o in run.outcomes if o.ok and o.kind == "sightings"]
    early = sum(o.crops for o in stored if o.ended <= elapsed / 2)
    added = [early, sum(o.crops for o in stored) - early]
    first, second = middle - start, end - middle
    net_first, net_second = first - added[0] * vector_mib, second - added[1] * vector_mib
    allowed = max(args.growth_fraction * max(net_first, 0.0), args.growth_tolerance_mib)
    return {
        "rss_start_mib": start,
        "rss_middle_mib": middle,
        "rss_end_mib": end,
        "rss_peak_mib": max(mib for _, mib in run.rss),
        "growth_first_half_mib": first,
        "growth_second_half_mib": second,
        "vectors_added": added,
        "vector_payload_mib": [n * vector_mib for n in added],
        "net_growth_first_half_mib": net_first,
        "net_growth_second_half_mib": net_second,
        "allowed_second_half_mib": allowed,
        "levels_off": net_second <= allowed,
    }


def windows(outcomes: list[Outcome], elapsed: float, width: float) -> list[tuple[float, float, float]]:
    """(window middle, p50 s, p99 s) of the latencies of requests ending in each ``width``-second window."""
    rows = []
    for index in range(math.ceil(elapsed / width)):
        ordered = sorted(o.latency for o in outcomes if index * width <= o.ended < (index + 1) * width)
        if ordered:
            middle = (index * width + min((index + 1) * width, elapsed)) / 2
            rows.append((middle, percentile(ordered, 50), percentile(ordered, 99)))
    return rows


def plot(path: Path, run: MixedRun, elapsed: float, memory: dict) -> str:
    """RSS over time and every request's latency (with windowed p50/p99) to a PNG; returns a note."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no plot"
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    top.plot([t for t, _ in run.rss], [mib for _, mib in run.rss], color="black")
    top.axvline(elapsed / 2, color="grey", linestyle="--")
    verdict = "levels off" if memory["levels_off"] else "keeps growing"
    top.set(ylabel="server RSS (MiB)", title=f"server RSS: {verdict}")
    for kind, colour in zip(KINDS, ("tab:blue", "tab:orange", "tab:green"), strict=True):
        points = [(o.ended, o.latency) for o in run.outcomes if o.kind == kind]
        bottom.scatter(
            [t for t, _ in points], [s for _, s in points], s=6, alpha=0.5, color=colour, label=kind
        )
    rows = windows(run.outcomes, elapsed, 5.0)
    bottom.plot([r[0] for r in rows], [r[1] for r in rows], color="black", linestyle="--", label="p50 (5 s)")
    bottom.plot([r[0] for r in rows], [r[2] for r in rows], color="red", label="p99 (5 s)")
    bottom.set(xlabel="seconds since start", ylabel="latency (s)", yscale="log")
    bottom.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return f"wrote {path}"


def machine() -> dict:
    """What the numbers were measured on."""
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def print_mixed(stats: dict[str, dict], memory: dict, errors: list[str]) -> None:
    """The per-kind table, the memory verdict and the first few errors."""

    def ms(value: float | None) -> str:
        return f"{value:>8.0f}" if value is not None else f"{'-':>8}"

    print(f"{'kind':<10} {'count':>6} {'req/s':>7} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for name, s in stats.items():
        print(
            f"{name:<10} {s['count']:>6} {s['per_s']:>7.2f} {s['errors']:>6} "
            f"{ms(s['p50_ms'])} {ms(s['p95_ms'])} {ms(s['p99_ms'])}"
        )
    m = memory
    verdict = "levels off" if m["levels_off"] else "KEEPS GROWING"
    print(f"server RSS: start {m['rss_start_mib']:.0f} MiB, peak {m['rss_peak_mib']:.0f} MiB")
    for half in ("first", "second"):
        print(
            f"  growth {half} half {m[f'growth_{half}_half_mib']:+.1f} MiB, "
            f"net of vectors added {m[f'net_growth_{half}_half_mib']:+.1f} MiB"
        )
    print(f"  second half allowed {m['allowed_second_half_mib']:.1f} MiB: {verdict}")
    for error in errors:
        print(f"error: {error}")


async def idle_matches(base: str, run: MixedRun, count: int) -> list[Outcome]:
    """``count`` /match requests one after another on the otherwise idle server."""
    rng = random.Random(7)
    outcomes = []
    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": run.store.key}, timeout=120) as client:
        for _ in range(count):
            outcome = await timed("match", client, run, rng)
            if not outcome.ok:
                raise RuntimeError(f"idle /match: {outcome.error}")
            outcomes.append(outcome)
    return outcomes


def with_derived_phases(outcome: Outcome) -> dict[str, float]:
    """The server's phases, plus ``other`` (server time in no phase) and ``client`` (latency the server did
    not see: connection, sending, the client's own event loop); nested phases (``a.b``) are parts of ``a``
    and ``gc`` pauses fall inside the others."""
    phases = dict(outcome.phases)
    app = phases.pop("app", None)
    if app is None:
        return {"client": outcome.latency}
    accounted = sum(seconds for name, seconds in phases.items() if "." not in name and name != GC)
    return phases | {"other": max(app - accounted, 0.0), "server": app, "client": outcome.latency - app}


def phase_profile(idle: list[Outcome], loaded: list[Outcome]) -> dict:
    """Per phase of /match: idle p50, p50 and p99 under load, and the mean over the slowest 1 % of the
    loaded requests (those at or above their p99), with its share of their latency."""
    if not loaded:
        return {}
    idle_phases = [with_derived_phases(o) for o in idle]
    loaded_phases = [with_derived_phases(o) for o in loaded]
    cut = percentile(sorted(o.latency for o in loaded), 99)
    slowest = [p for o, p in zip(loaded, loaded_phases, strict=True) if o.latency >= cut]
    slowest_latency = statistics.fmean(o.latency for o in loaded if o.latency >= cut)
    names = list(dict.fromkeys(name for p in idle_phases + loaded_phases for name in p))
    names.sort(key=lambda name: name in ("other", "server", "client"))
    profile = {}
    for name in names:
        idle_values = sorted(p.get(name, 0.0) for p in idle_phases)
        load_values = sorted(p.get(name, 0.0) for p in loaded_phases)
        slow_mean = statistics.fmean(p.get(name, 0.0) for p in slowest)
        profile[name] = {
            "idle_p50_ms": (percentile(idle_values, 50) or 0.0) * 1000,
            "load_p50_ms": (percentile(load_values, 50) or 0.0) * 1000,
            "load_p99_ms": (percentile(load_values, 99) or 0.0) * 1000,
            "slowest_mean_ms": slow_mean * 1000,
            "slowest_share": slow_mean / slowest_latency,
        }
    return {"slowest_requests": len(slowest), "slowest_mean_latency_ms": slowest_latency * 1000} | {
        "phases": profile
    }


def print_profile(profile: dict) -> None:
    """The /match phase table (nested phases indented)."""
    if not profile:
        return
    print(
        f"/match phases (ms): the slowest {profile['slowest_requests']} requests took "
        f"{profile['slowest_mean_latency_ms']:.0f} ms on average"
    )
    print(f"{'phase':<18} {'idle p50':>8} {'load p50':>8} {'load p99':>8} {'slowest':>8} {'share':>6}")
    for name, row in profile["phases"].items():
        label = ("  " if "." in name else "") + name
        print(
            f"{label:<18} {row['idle_p50_ms']:>8.1f} {row['load_p50_ms']:>8.1f} {row['load_p99_ms']:>8.1f}"
            f" {row['slowest_mean_ms']:>8.1f} {row['slowest_share']:>6.0%}"
        )


@contextlib.contextmanager
def database(kind: str, postgres: str | None) -> Iterator[str | None]:
    """None for SQLite (a file in the run's folder), or a fresh PostgreSQL database dropped afterwards."""
    if kind == "sqlite":
        yield None
        return
    assert postgres is not None
    with scratch_postgres(postgres, "reid_bench") as url:
        yield url


def mixed_arm(
    args: argparse.Namespace, workdir: Path, model_dir: Path, kind: str, label: str, env: dict[str, str]
) -> dict:
    """One server, one store: idle /match, then the mixed load; the run's report (a PNG beside --out)."""
    workdir.mkdir(parents=True)
    print(f"== {kind}, {label} {env or '(defaults)'}", flush=True)
    with database(kind, args.postgres) as url, serving(workdir, model_dir, args, url, env) as (base, server):
        rss_ready = rss_mib(server.pid)
        store = setup_store(base)
        search = enable_person_search(base, store.id)
        print(f"person search: {search}", flush=True)
        run = MixedRun(store, crops(64), args.mix, args.seconds)
        warm_up = asyncio.run(seed(base, run, args.seed_sightings))
        idle_outcomes = asyncio.run(idle_matches(base, run, args.idle_matches))
        idle = sorted(o.latency for o in idle_outcomes)
        readyz = httpx.get(f"{base}/readyz", timeout=30).json()
        before, cpu_before = httpx.get(f"{base}/metrics").text, cpu_seconds(server.pid)
        elapsed = asyncio.run(mixed_load(base, server.pid, run, args.clients, args.rss_interval))
        cpu = cpu_seconds(server.pid) - cpu_before
        after = httpx.get(f"{base}/metrics").text
    metadata = json.loads((model_dir / "model.json").read_text())
    stats = summarise(run.outcomes, elapsed)
    memory = memory_report(run, elapsed, readyz["model"]["dim"], args)
    errors = [f"{o.kind} at {o.ended:.1f} s: {o.error}" for o in run.outcomes if not o.ok]
    stored = sum(o.crops for o in run.outcomes if o.ok and o.kind == "sightings")
    idle_p50 = percentile(idle, 50) * 1000
    matches = [o for o in run.outcomes if o.ok and o.kind == "match"]
    profile = phase_profile(idle_outcomes, matches)
    report = {
        "mode": "mixed",
        "database": kind,
        "behaviour": label,
        "env": env,
        "clients": args.clients,
        "seconds": args.seconds,
        "elapsed_s": elapsed,
        "mix": dict(zip(KINDS, args.mix, strict=True)),
        "seed_sightings": args.seed_sightings,
        "batch_size": args.batch_size,
        "max_wait_ms": args.max_wait_ms,
        "model": metadata["architecture"],
        "model_dim": readyz["model"]["dim"],
        "runtime": readyz["model"]["runtime"],
        "person_search": search,
        "warm_up": warm_up,
        "idle_match": {"count": len(idle), "p50_ms": idle_p50, "p99_ms": percentile(idle, 99) * 1000},
        "match_p99_over_idle_p50": stats["match"]["p99_ms"] / idle_p50 if stats["match"]["count"] else None,
        "sightings_stored_per_s": stored / elapsed,
        "link_retries": metric(after, "reid_link_retries_total") - metric(before, "reid_link_retries_total"),
        "mean_batch": mean_batch(before, after),
        "server_cpu_cores": cpu / elapsed,
        "rss_ready_mib": rss_ready,
        "machine": machine(),
        "kinds": stats,
        "match_phases": profile,
        "first_errors": errors[:SHOWN_ERRORS],
        "memory": memory,
        "rss_samples": [[round(t, 2), round(mib, 2)] for t, mib in run.rss],
    }
    png = (
        args.out.with_suffix(".png")
        if args.single
        else args.out.with_name(f"{args.out.stem}_{kind}_{label}.png")
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    print(plot(png, run, elapsed, memory))
    print_mixed(stats, memory, errors[:SHOWN_ERRORS])
    print_profile(profile)
    print(
        f"idle /match p50 {idle_p50:.0f} ms; under load p99 {stats['match']['p99_ms'] or 0:.0f} ms; "
        f"{report['sightings_stored_per_s']:.2f} sightings stored/s; server used {cpu / elapsed:.2f} cores; "
        f"mean embed batch {report['mean_batch']:.1f}; {report['link_retries']:.0f} link retries",
        flush=True,
    )
    return report


def print_comparison(reports: list[dict]) -> list[dict]:
    """/match p99 under load against the idle p50 of the same server; ingest against the "before" run."""
    rows = []
    baseline = {r["database"]: r for r in reports if r["behaviour"] == "before"}
    print(
        f"\n{'database':<10} {'behaviour':<9} {'idle p50':>8} {'p50':>6} {'p95':>6} {'p99':>6}"
        f" {'p99/idle':>8} {'match/s':>7} {'sight/s':>7} {'vs before':>9} {'req/s':>6}"
    )
    for r in reports:
        match = r["kinds"]["match"]
        base = baseline.get(r["database"])
        ingest = r["sightings_stored_per_s"] / base["sightings_stored_per_s"] if base else None
        rows.append(
            {
                "database": r["database"],
                "behaviour": r["behaviour"],
                "idle_match_p50_ms": r["idle_match"]["p50_ms"],
                "match_p50_ms": match["p50_ms"],
                "match_p95_ms": match["p95_ms"],
                "match_p99_ms": match["p99_ms"],
                "match_p99_over_idle_p50": r["match_p99_over_idle_p50"],
                "match_per_s": match["per_s"],
                "sightings_stored_per_s": r["sightings_stored_per_s"],
                "ingest_vs_before": ingest,
                "requests_per_s": r["kinds"]["all"]["per_s"],
            }
        )
        print(
            f"{r['database']:<10} {r['behaviour']:<9} {r['idle_match']['p50_ms']:>8.0f}"
            f" {match['p50_ms']:>6.0f} {match['p95_ms']:>6.0f} {match['p99_ms']:>6.0f}"
            f" {r['match_p99_over_idle_p50']:>7.1f}x"
            f" {match['per_s']:>7.2f} {r['sightings_stored_per_s']:>7.2f}"
            f" {'-' if ingest is None else f'{ingest:.2f}x':>9} {r['kinds']['all']['per_s']:>6.1f}"
        )
    return rows


def run_mixed(args: argparse.Namespace) -> int:
    """The mixed workload, once or per database and behaviour (--compare); 1 on errors, 2 if memory grows."""
    kinds = ["sqlite"] + (["postgresql"] if args.postgres else [])
    behaviours = [("before", BEFORE), ("after", {})] if args.compare else [("current", {})]
    args.single = len(kinds) * len(behaviours) == 1
    reports = []
    with tempfile.TemporaryDirectory(prefix="reid-load-") as tmp:
        workdir = Path(tmp)
        model_dir = ensure_model(args.model_dir, workdir)
        for kind in kinds:
            for label, env in behaviours:
                reports.append(mixed_arm(args, workdir / f"{kind}-{label}", model_dir, kind, label, env))
    comparison = print_comparison(reports)
    result = (
        reports[0] if args.single else {"mode": "mixed-compare", "comparison": comparison, "runs": reports}
    )
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    if any(r["first_errors"] for r in reports):
        return 1
    return 0 if all(r["memory"]["levels_off"] for r in reports) else 2


def mix(text: str) -> list[float]:
    """Three non-negative weights for sightings,match,density (e.g. ``70,20,10``)."""
    weights = [float(part) for part in text.split(",")]
    if len(weights) != len(KINDS) or min(weights) < 0 or sum(weights) <= 0:
        raise argparse.ArgumentTypeError("give three non-negative weights, e.g. 70,20,10")
    return weights


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; --clients, --seconds and --out default per mode."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mixed", action="store_true", help="ingest + match + density instead of ingest only"
    )
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--clients", type=int, default=None, help="default 32 (ingest) or 16 (mixed)")
    parser.add_argument("--seconds", type=float, default=None, help="time limit; default 180 (ingest) or 60")
    parser.add_argument("--requests", type=int, default=600, help="ingest: request count limit")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=10)
    parser.add_argument("--mix", type=mix, default=[70.0, 20.0, 10.0], help="mixed: sightings,match,density")
    parser.add_argument(
        "--seed-sightings", type=int, default=96, help="mixed: sightings stored before the run"
    )
    parser.add_argument("--rss-interval", type=float, default=1.0, help="mixed: seconds between RSS samples")
    parser.add_argument(
        "--idle-matches",
        type=int,
        default=30,
        help="mixed: /match requests on the idle server, one at a time",
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help="mixed: run before (REID_EMBED_PRIORITY=false, REID_LINK_OPTIMISTIC_ATTEMPTS=0) and after",
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="mixed: also on PostgreSQL, in a fresh database made on this server (dropped afterwards)",
    )
    parser.add_argument(
        "--growth-fraction", type=float, default=0.5, help="mixed: see --growth-tolerance-mib"
    )
    parser.add_argument(
        "--growth-tolerance-mib",
        type=float,
        default=8.0,
        help="mixed: RSS levels off if its second-half growth (net of vectors added) is at most this or "
        "--growth-fraction of the first half's",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    args.clients = args.clients or (16 if args.mixed else 32)
    args.seconds = args.seconds or (60.0 if args.mixed else 180.0)
    args.out = args.out or (MIXED_RESULTS if args.mixed else RESULTS)
    return args


def main() -> None:
    """Run the chosen mode and exit with its status."""
    args = parse_args()
    sys.exit(run_mixed(args) if args.mixed else run_ingest(args))


if __name__ == "__main__":
    main()
