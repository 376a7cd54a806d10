"""How right are the counts? Replay a labelled store day through the HTTP API and score the answers.

Sources: a generated synthetic day (default: shoppers arriving through the day, zone paths with
dwell, several crops per pass, look-alike clothing), a folder-format set (``ROOT/<person>/<camera>_<n>``
plus ``--zones`` camera,zone and ``--times`` path,captured_at[,track_id] CSVs), or Market-1501 as it is
(``--source market --root DIR``: six cameras as six zones, times from sequence and frame at 25 fps,
tracks from the person's run of frames in one sequence). Every mode replays the same day against a
fresh server and database, in one run:

- ``today``: the earlier linking (nearest single sighting, threshold 0.75), crops posted one by one;
- ``loose``: prototype linking under the place rules, crops posted one by one, then a re-linking pass;
- ``tracks``: prototype linking, each camera pass posted as one track, then a re-linking pass.

Scores: per zone and hour, unique visitors and entries against the truth (mean absolute percentage
error over buckets with people), per-zone and whole-store unique visitors, mean dwell error, pairwise
and B-cubed precision/recall/F1 of visitors against people, people split and visitors merged, and
``/match`` rank-1 and mAP for a held-out photo of each person. Without ``--model-dir`` the synthetic
recipe's model is trained and exported first (cached under ``runs/store_day``). Writes
``bench/results/store_day.json`` and a PNG of true against counted visitors per zone.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
from PIL import Image
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scratch_database import scratch_postgres  # noqa: E402
from model.layouts import parse_market_name, scan_person_folders  # noqa: E402
from service.ingest.calibration import pairwise_scores  # noqa: E402
from service.storage.db import migrate  # noqa: E402
from training.datasets.store_day import StoreDayConfig, make_store_day  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "store_day.json"
MODEL_CACHE = ROOT / "runs" / "store_day"
ADMIN_KEY = "store-day-admin-key"
ADMIN = {"X-API-Key": ADMIN_KEY}
TODAY_THRESHOLD = 0.75
DENSITY_GAP_S = 300.0
BUCKET_S = 3600
MARKET_FPS = 25.0
MARKET_TRACK_GAP_FRAMES = 250


@dataclass(frozen=True)
class Event:
    """One crop to post: who it truly is, where, when, its camera track, and how to get its bytes."""

    person: str
    camera: str
    zone: str
    captured_at: datetime
    track: str | None
    image: Callable[[], bytes]


@dataclass
class Replay:
    """A labelled day: crops in time order, the zone of each camera, a query photo per person."""

    name: str
    events: list[Event]
    cameras: dict[str, str]
    queries: dict[str, Callable[[], bytes]] = field(default_factory=dict)


def png(array: np.ndarray) -> bytes:
    """Lossless PNG bytes of an RGB array."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def synthetic_replay(people: int, seed: int) -> Replay:
    """The generated store day."""
    day = make_store_day(StoreDayConfig(people=people, seed=seed))
    events = [
        Event(
            str(c.person),
            c.zone,
            c.zone,
            c.captured_at,
            f"{c.camera}-{c.track}",
            lambda c=c: png(day.image(c)),
        )
        for c in day.crops
    ]
    queries = {str(p): (lambda p=p: png(day.query_image(p))) for p in day.people}
    return Replay(f"synthetic day ({people} people, seed {seed})", events, {z: z for z in day.zones}, queries)


def folder_replay(root: Path, zones_csv: Path, times_csv: Path) -> Replay:
    """A folder-format set with a camera -> zone map and capture times (and optional tracks)."""
    with zones_csv.open() as handle:
        cameras = {row["camera"]: row["zone"] for row in csv.DictReader(handle)}
    with times_csv.open() as handle:
        times = {row["path"]: row for row in csv.DictReader(handle)}
    events = []
    for image in scan_person_folders(root):
        row = times.get(str(image.path.relative_to(root)))
        if row is None:
            raise SystemExit(f"{image.path}: no capture time in {times_csv}")
        if image.camera not in cameras:
            raise SystemExit(f"{image.path}: camera {image.camera!r} has no zone in {zones_csv}")
        events.append(
            Event(
                image.person,
                image.camera,
                cameras[image.camera],
                datetime.fromisoformat(row["captured_at"]),
                row.get("track_id") or None,
                image.path.read_bytes,
            )
        )
    events.sort(key=lambda e: e.captured_at)
    return Replay(f"folder {root}", events, cameras)


def market_replay(root: Path, start: datetime) -> Replay:
    """Market-1501's test gallery as a six-camera store; the first query image of each person as query."""
    gallery = [(p, parse_market_name(p)) for p in sorted((root / "bounding_box_test").glob("*.jpg"))]
    gallery = [(p, name) for p, name in gallery if name is not None and name.person > 0]
    lengths: dict[tuple[int, int], int] = defaultdict(int)
    for _, name in gallery:
        lengths[(name.camera, name.sequence)] = max(lengths[(name.camera, name.sequence)], name.frame)
    offsets: dict[tuple[int, int], int] = {}
    for camera in sorted({c for c, _ in lengths}):
        total = 0
        for sequence in sorted(s for c, s in lengths if c == camera):
            offsets[(camera, sequence)] = total
            total += lengths[(camera, sequence)] + 1
    events = []
    last_frame: dict[tuple[int, int, int], tuple[int, int]] = {}
    for path, name in sorted(gallery, key=lambda g: offsets[(g[1].camera, g[1].sequence)] + g[1].frame):
        frame = offsets[(name.camera, name.sequence)] + name.frame
        key = (name.person, name.camera, name.sequence)
        previous, track = last_frame.get(key, (None, 0))
        if previous is None or frame - previous > MARKET_TRACK_GAP_FRAMES:
            track += 1
        last_frame[key] = (frame, track)
        events.append(
            Event(
                str(name.person),
                f"c{name.camera}",
                f"camera {name.camera}",
                start + timedelta(seconds=frame / MARKET_FPS),
                f"{name.person}-{name.sequence}-{track}",
                path.read_bytes,
            )
        )
    queries: dict[str, Callable[[], bytes]] = {}
    seen = {e.person for e in events}
    for path in sorted((root / "query").glob("*.jpg")):
        name = parse_market_name(path)
        if name is not None and str(name.person) in seen:
            queries.setdefault(str(name.person), path.read_bytes)
    cameras = {e.camera: e.zone for e in events}
    return Replay(f"Market-1501 {root}", events, cameras, queries)


def ensure_model(model_dir: Path | None) -> Path:
    """The given export, or the synthetic recipe's model (README's three commands), cached."""
    if model_dir is not None:
        return model_dir
    export = MODEL_CACHE / "export"
    if (export / "model.json").is_file():
        return export
    from training.cli import main as reid_train

    data, run = MODEL_CACHE / "data", MODEL_CACHE / "run"
    print("training the synthetic recipe's model (once; cached in runs/store_day)", flush=True)
    steps = [
        [
            "make-synthetic",
            "--out",
            data,
            "--ids",
            "40",
            "--cameras",
            "4",
            "--height",
            "64",
            "--width",
            "32",
            "--overwrite",
        ],
        ["train", "--config", ROOT / "training/configs/synthetic.yaml", "--data-root", data, "--output", run],
        ["export", "--checkpoint", run / "final.pt", "--out", export],
    ]
    for step in steps:
        if reid_train([str(part) for part in step]) != 0:
            raise SystemExit(f"reid-train {step[0]} failed")
    return export


def free_port() -> int:
    """An unused TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serving(model_dir: Path, database_url: str, workdir: Path, env: dict[str, str]) -> Iterator[str]:
    """reid-serve on a migrated database and a free port; yields its base URL."""
    migrate(database_url)
    port = free_port()
    settings = {
        "REID_DATABASE_URL": database_url,
        "REID_MODEL_DIR": str(model_dir),
        "REID_INDEX_DIR": str(workdir / "indexes"),
        "REID_ADMIN_KEY": ADMIN_KEY,
        "REID_RATE_LIMIT_PER_MINUTE": "0",
        "REID_MAX_CLOCK_SKEW_S": str(10 * 365 * 86400),
        "REID_RELINK_INTERVAL_S": "0",
        "REID_RETENTION_DAYS": "36500",
    }
    command = [sys.executable, "-c", "from service.cli import serve; serve()", "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--log-level", "warning"], env=os.environ | settings | env, cwd=workdir
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if server.poll() is not None:
                raise SystemExit("reid-serve exited during start")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit("reid-serve did not get ready")
            time.sleep(0.3)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=60)


@dataclass(frozen=True)
class Mode:
    """One way of replaying: linking rule and threshold, tracks or loose crops, a re-linking pass."""

    name: str
    linking: str
    threshold: float | None
    tracks: bool
    relink: bool


def make_store(client: httpx.Client, replay: Replay) -> tuple[int, dict[str, int], str]:
    """A store with one zone per zone name and one camera per camera; returns id, cameras, store key."""
    store = client.post("/stores", json={"name": "store day", "match_enabled": True}, headers=ADMIN)
    store_id = store.raise_for_status().json()["id"]
    zones = {}
    for zone in sorted(set(replay.cameras.values())):
        zones[zone] = client.post(f"/stores/{store_id}/zones", json={"name": zone}, headers=ADMIN).json()[
            "id"
        ]
    cameras = {}
    for camera, zone in sorted(replay.cameras.items()):
        body = {"name": camera, "zone_id": zones[zone]}
        cameras[camera] = client.post(f"/stores/{store_id}/cameras", json=body, headers=ADMIN).json()["id"]
    key = client.post(f"/stores/{store_id}/keys", json={"name": "bench"}, headers=ADMIN).json()["key"]
    return store_id, cameras, key


def requests_of(replay: Replay, tracks: bool) -> list[list[int]]:
    """Event indices per request: one crop each, or one camera track each (sent when it ends)."""
    if not tracks:
        return [[i] for i in range(len(replay.events))]
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for index, event in enumerate(replay.events):
        groups[(event.camera, event.track or f"single-{index}")].append(index)
    return sorted(groups.values(), key=lambda members: replay.events[members[-1]].captured_at)


def post_day(client: httpx.Client, replay: Replay, cameras: dict[str, int], key: str, tracks: bool) -> dict:
    """Post every crop in time order; returns sighting id -> event index."""
    owners = {}
    for members in tqdm(requests_of(replay, tracks), desc="posting", unit="request", leave=False):
        events = [replay.events[i] for i in members]
        data: dict[str, object] = {
            "camera_id": cameras[events[0].camera],
            "captured_at": [e.captured_at.isoformat() for e in events],
        }
        if tracks and events[0].track is not None:
            data["track_id"] = events[0].track
        files = [
            ("images", (f"{i}.png", e.image(), "image/png")) for i, e in zip(members, events, strict=True)
        ]
        response = client.post("/sightings", data=data, files=files, headers={"X-API-Key": key})
        response.raise_for_status()
        for index, sighting in zip(members, response.json()["sightings"], strict=True):
            owners[sighting["sighting_id"]] = index
    return owners


def current_visitors(client: httpx.Client, key: str) -> dict[int, int]:
    """Sighting id -> visitor id now, read through GET /sightings page by page."""
    found: dict[int, int] = {}
    before = None
    while True:
        params = {"limit": 1000} | ({"before_id": before} if before else {})
        page = client.get("/sightings", params=params, headers={"X-API-Key": key}).raise_for_status().json()
        found.update({s["sighting_id"]: s["visitor_id"] for s in page})
        if len(page) < 1000:
            return found
        before = page[-1]["sighting_id"]


def day_window(replay: Replay) -> tuple[datetime, datetime]:
    """Whole hours around the day's crops."""
    first = replay.events[0].captured_at.replace(minute=0, second=0, microsecond=0)
    last = replay.events[-1].captured_at.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return first, last


def measured_density(client: httpx.Client, key: str, window: tuple[datetime, datetime]) -> dict:
    """Per zone: unique visitors and entries per hour, and the day's totals, as the service reports them."""
    params = {"start": window[0].isoformat(), "end": window[1].isoformat(), "bucket": str(BUCKET_S)}
    body = client.get("/density", params=params, headers={"X-API-Key": key}).raise_for_status().json()
    return {
        zone["name"]: {
            "unique": [b["unique_visitors"] for b in zone["buckets"]],
            "entries": [b["entries"] for b in zone["buckets"]],
            "total_unique": zone["totals"]["unique_visitors"],
            "mean_dwell_s": zone["totals"]["mean_dwell_s"],
        }
        for zone in body["zones"]
    }


def true_density(replay: Replay, window: tuple[datetime, datetime]) -> dict:
    """The same figures from the true identities, with the service's visit rule (gaps under 300 s)."""
    hours = int((window[1] - window[0]).total_seconds() // BUCKET_S)
    out = {}
    for zone in sorted(set(replay.cameras.values())):
        crops = sorted((e.person, e.captured_at) for e in replay.events if e.zone == zone)
        unique = [set() for _ in range(hours)]
        entries = [0] * hours
        dwell = []
        visit: dict[str, list[datetime]] = {}
        for person, when in crops:
            unique[int((when - window[0]).total_seconds() // BUCKET_S)].add(person)
            current = visit.get(person)
            if current is None or (when - current[-1]).total_seconds() >= DENSITY_GAP_S:
                if current is not None:
                    dwell.append((current[-1] - current[0]).total_seconds())
                visit[person] = [when]
                entries[int((when - window[0]).total_seconds() // BUCKET_S)] += 1
            else:
                current.append(when)
        dwell += [(v[-1] - v[0]).total_seconds() for v in visit.values()]
        out[zone] = {
            "unique": [len(s) for s in unique],
            "entries": entries,
            "total_unique": len({p for p, _ in crops}),
            "mean_dwell_s": float(np.mean(dwell)) if dwell else None,
        }
    return out


def mape(pred: list[int], true: list[int]) -> float | None:
    """Mean absolute percentage error over the buckets where the truth is not zero."""
    pairs = [(p, t) for p, t in zip(pred, true, strict=True) if t]
    return float(np.mean([abs(p - t) / t for p, t in pairs])) if pairs else None


def bcubed(labels: list[int], people: list[str]) -> tuple[float, float, float]:
    """B-cubed precision, recall and F1 (per crop, averaged)."""
    cluster, person = Counter(labels), Counter(people)
    together = Counter(zip(labels, people, strict=True))
    precision = float(np.mean([together[(c, p)] / cluster[c] for c, p in zip(labels, people, strict=True)]))
    recall = float(np.mean([together[(c, p)] / person[p] for c, p in zip(labels, people, strict=True)]))
    return precision, recall, 2 * precision * recall / (precision + recall)


def match_scores(client: httpx.Client, replay: Replay, key: str, owners: dict[int, int]) -> dict:
    """/match rank-1 and mAP of each person's query photo against the store's sightings."""
    ranks, aps = [], []
    totals = Counter(e.person for e in replay.events)
    for person, photo in tqdm(sorted(replay.queries.items()), desc="/match", leave=False):
        response = client.post(
            "/match",
            data={"case_id": f"bench-{person}", "top_k": "100"},
            files={"image": ("query.png", photo(), "image/png")},
            headers={"X-API-Key": key},
        ).raise_for_status()
        hits = [replay.events[owners[m["sighting_id"]]].person == person for m in response.json()["matches"]]
        ranks.append(bool(hits and hits[0]))
        found, precisions = 0, []
        for position, hit in enumerate(hits, start=1):
            if hit:
                found += 1
                precisions.append(found / position)
        aps.append(sum(precisions) / totals[person])
    return {"rank1": float(np.mean(ranks)) if ranks else None, "mAP": float(np.mean(aps)) if aps else None}


def score(
    replay: Replay, owners: dict[int, int], visitors: dict[int, int], density: dict, truth: dict
) -> dict:
    """Counts against the truth and visitors against people."""
    ids = sorted(owners)
    labels = [visitors[i] for i in ids]
    people = [replay.events[owners[i]].person for i in ids]
    pairwise = pairwise_scores(labels, people)
    b3 = bcubed(labels, people)
    per_person = defaultdict(set)
    per_visitor = defaultdict(set)
    for label, person in zip(labels, people, strict=True):
        per_person[person].add(label)
        per_visitor[label].add(person)
    zones = {}
    for zone, true in truth.items():
        got = density[zone]
        zones[zone] = {
            "true_unique": true["total_unique"],
            "counted_unique": got["total_unique"],
            "unique_error": (got["total_unique"] - true["total_unique"]) / max(true["total_unique"], 1),
            "hourly_unique_mape": mape(got["unique"], true["unique"]),
            "hourly_entries_mape": mape(got["entries"], true["entries"]),
            "dwell_error": (
                abs(got["mean_dwell_s"] - true["mean_dwell_s"]) / true["mean_dwell_s"]
                if got["mean_dwell_s"] is not None and true["mean_dwell_s"]
                else None
            ),
        }
    store_true, store_counted = len(set(people)), len(set(labels))
    return {
        "visitors": store_counted,
        "people": store_true,
        "store_unique_error": (store_counted - store_true) / store_true,
        "zone_unique_error_mean": float(np.mean([abs(z["unique_error"]) for z in zones.values()])),
        "hourly_unique_mape_mean": float(np.mean([z["hourly_unique_mape"] or 0.0 for z in zones.values()])),
        "pairwise": dict(zip(("precision", "recall", "f1"), pairwise, strict=True)),
        "bcubed": dict(zip(("precision", "recall", "f1"), b3, strict=True)),
        "people_split": sum(1 for v in per_person.values() if len(v) > 1),
        "visitors_merged": sum(1 for v in per_visitor.values() if len(v) > 1),
        "zones": zones,
    }


MODES = (
    Mode("today", "nearest", TODAY_THRESHOLD, tracks=False, relink=False),
    Mode("loose", "prototype", None, tracks=False, relink=True),
    Mode("tracks", "prototype", None, tracks=True, relink=True),
)


@contextlib.contextmanager
def database(postgres: str | None, workdir: Path) -> Iterator[str]:
    """A fresh SQLite file, or a fresh database on the PostgreSQL server ``postgres`` (dropped after)."""
    if postgres is None:
        yield f"sqlite:///{workdir / 'store_day.db'}"
        return
    with scratch_postgres(postgres, "store_day") as url:
        yield url


def run_mode(mode: Mode, replay: Replay, model_dir: Path, args: argparse.Namespace) -> dict:
    """Replay the day in one mode on a fresh server and database; scores before and after re-linking."""
    env = {"REID_LINKING": mode.linking}
    threshold = mode.threshold if mode.threshold is not None else args.threshold
    if threshold is not None:
        env["REID_MATCH_THRESHOLD"] = str(threshold)
    window = day_window(replay)
    truth = true_density(replay, window)
    with tempfile.TemporaryDirectory() as tmp, database(args.postgres, Path(tmp)) as url:  # noqa: SIM117
        with (
            serving(model_dir, url, Path(tmp), env) as base,
            httpx.Client(base_url=base, timeout=300) as client,
        ):
            store_id, cameras, key = make_store(client, replay)
            started = time.perf_counter()
            owners = post_day(client, replay, cameras, key, mode.tracks)
            posted_s = time.perf_counter() - started
            stages = {
                "online": score(
                    replay,
                    owners,
                    current_visitors(client, key),
                    measured_density(client, key, window),
                    truth,
                )
            }
            if mode.relink:
                started = time.perf_counter()
                body = {"start": window[0].isoformat(), "end": window[1].isoformat()}
                client.post(f"/stores/{store_id}/relink", json=body, headers=ADMIN).raise_for_status()
                relink_s = time.perf_counter() - started
                density = measured_density(client, key, window)
                stages["relinked"] = score(replay, owners, current_visitors(client, key), density, truth)
                stages["relinked"]["relink_s"] = relink_s
            match = match_scores(client, replay, key, owners) if replay.queries else {}
    return {
        "mode": mode.__dict__ | {"threshold": threshold},
        "posted_s": posted_s,
        "stages": stages,
        "match": match,
        "truth": {zone: t["total_unique"] for zone, t in truth.items()},
    }


def rows_of(results: list[dict]) -> list[tuple[str, dict, dict]]:
    """Table rows: each mode's online result, then its re-linked one."""
    rows = []
    for result in results:
        for stage, scores in result["stages"].items():
            label = result["mode"]["name"] + (" + re-linking" if stage == "relinked" else "")
            rows.append((label, scores, result["match"]))
    return rows


def print_table(replay: Replay, results: list[dict]) -> None:
    """One row per mode and stage."""
    people = results[0]["stages"]["online"]["people"]
    print(f"\n{replay.name}: {len(replay.events)} crops of {people} people")
    header = (
        f"{'linking':<22} {'visitors':>8} {'store err':>9} {'zone err':>8} {'hour MAPE':>9} "
        f"{'pair F1':>7} {'B3 F1':>6} {'split':>5} {'merged':>6} {'rank-1':>6} {'mAP':>6}"
    )
    print(header)
    for label, s, match in rows_of(results):
        rank1 = f"{match['rank1']:.2f}" if match.get("rank1") is not None else "-"
        mean_ap = f"{match['mAP']:.2f}" if match.get("mAP") is not None else "-"
        print(
            f"{label:<22} {s['visitors']:>8} {100 * s['store_unique_error']:>8.0f}% "
            f"{100 * s['zone_unique_error_mean']:>7.0f}% {100 * s['hourly_unique_mape_mean']:>8.0f}% "
            f"{s['pairwise']['f1']:>7.2f} {s['bcubed']['f1']:>6.2f} {s['people_split']:>5} "
            f"{s['visitors_merged']:>6} {rank1:>6} {mean_ap:>6}"
        )


def plot(results: list[dict], path: Path) -> Path:
    """True against counted unique visitors per zone, one bar group per zone, one bar per mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    zones = sorted(results[0]["truth"])
    rows = rows_of(results)
    width = 0.8 / (len(rows) + 1)
    figure, axis = plt.subplots(figsize=(2.2 * len(zones) + 3, 4))
    positions = np.arange(len(zones))
    axis.bar(positions, [results[0]["truth"][z] for z in zones], width, label="truth", color="black")
    for offset, (label, scores, _) in enumerate(rows, start=1):
        counted = [scores["zones"][z]["counted_unique"] for z in zones]
        axis.bar(positions + offset * width, counted, width, label=label)
    axis.set_xticks(positions + width * len(rows) / 2, zones)
    axis.set_ylabel("unique visitors over the day")
    axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def replay_from(args: argparse.Namespace) -> Replay:
    """The day the arguments name."""
    if args.source == "folder":
        if not (args.root and args.zones and args.times):
            raise SystemExit("--source folder needs --root, --zones and --times")
        return folder_replay(args.root, args.zones, args.times)
    if args.source == "market":
        if not args.root:
            raise SystemExit(
                "--source market needs --root (the folder holding bounding_box_test/ and query/)"
            )
        return market_replay(args.root, datetime(2026, 11, 24, 9, 0, tzinfo=UTC))
    return synthetic_replay(args.people, args.seed)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", choices=("synthetic", "folder", "market"), default="synthetic")
    parser.add_argument("--root", type=Path, default=None, help="folder set or Market-1501 root")
    parser.add_argument("--zones", type=Path, default=None, help="CSV camera,zone (folder source)")
    parser.add_argument(
        "--times", type=Path, default=None, help="CSV path,captured_at[,track_id] (folder source)"
    )
    parser.add_argument("--people", type=int, default=96, help="synthetic day: shoppers")
    parser.add_argument("--seed", type=int, default=0, help="synthetic day: which day")
    parser.add_argument(
        "--model-dir", type=Path, default=None, help="an export; default: the synthetic recipe's"
    )
    parser.add_argument(
        "--threshold", type=float, default=None, help="prototype modes' threshold (default: the service's)"
    )
    parser.add_argument(
        "--modes", nargs="+", choices=[m.name for m in MODES], default=[m.name for m in MODES]
    )
    parser.add_argument(
        "--postgres", default=None, help="a PostgreSQL server URL to make databases on (default SQLite)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    replay = replay_from(args)
    model_dir = ensure_model(args.model_dir)
    results = [run_mode(mode, replay, model_dir, args) for mode in MODES if mode.name in args.modes]
    print_table(replay, results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    picture = plot(results, args.out.with_suffix(".png"))
    args.out.write_text(
        json.dumps(
            {
                "source": replay.name,
                "crops": len(replay.events),
                "model_dir": str(model_dir),
                "results": results,
            },
            indent=2,
            default=str,
        )
    )
    print(f"wrote {args.out} and {picture}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
