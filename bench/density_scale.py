"""Density and flows at scale: a store with 100,000 sightings a day for 30 days, on SQLite and PostgreSQL.

The data is written straight into SQL (the embedding column holds 8 bytes instead of 8 KiB: no query
below reads it, and every one of them is answered from indexes that do not hold it), through the real
migrations, with the density-summary triggers on, so loading also measures what they cost ingest. A
store of 12 zones; shoppers arrive from 08:00 to 20:00 local time (Europe/Berlin), walk the entrance,
two to five zones and often the tills, and are seen every 20-60 s while in a zone; 10 staff walk the
zones eight hours a day (flagged as staff, so every query also filters them out).

Timed, each ``--repeats`` times after one untimed warm-up run, through the service's own functions
(what the routes call, without HTTP):

- ``density day``: ``/density`` for the last day in 15-minute buckets (computed from the sightings);
- ``density month``: ``/density`` for all days in days (the density summary): before each run one
  sighting of the last day is moved to another visitor, as ingest and re-linking keep doing, so each run
  recomputes that day; the first run on an empty summary (every day computed) is reported as ``cold``;
- ``flows day``: ``/flows`` for the last day.

Prints p50 and p95 per database and query, the query plans of one run of each (PostgreSQL: EXPLAIN
ANALYZE with buffers; SQLite: EXPLAIN QUERY PLAN), and writes ``bench/results/density_scale.json``.
Goal on PostgreSQL: p95 under 1 s for the day queries and under 3 s for the month.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import Engine, event, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scratch_database import scratch_postgres  # noqa: E402
from service.common.timeparse import to_ms  # noqa: E402
from service.density.service import density_zones  # noqa: E402
from service.flows.compute import compute_flows  # noqa: E402
from service.settings import Settings  # noqa: E402
from service.storage.counting import for_reports  # noqa: E402
from service.storage.db import make_engine, make_session_factory, migrate  # noqa: E402
from service.storage.models import Store  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "density_scale.json"
TIMEZONE = "Europe/Berlin"
ZONES = 12
STAFF = 10
OPEN_H, CLOSE_H = 8, 20
EMBEDDING = b"\0" * 8
GOALS_S = {"density day": 1.0, "density month": 3.0, "flows day": 1.0}
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
SIGHTING_COLUMNS = ", ".join(
    ("id", "store_id", "zone_id", "camera_id", "visitor_id")
    + ("captured_at", "captured_ms", "received_at", "model_version", "embedding")
)


@dataclass(frozen=True)
class Day:
    """One generated day: parallel arrays of zone, visitor and capture time, and the day's visitors."""

    zones: np.ndarray
    visitors: np.ndarray
    times: np.ndarray
    shoppers: list[int]
    staff: list[tuple[int, int]]  # (visitor, staff member)


def generate_day(rng: np.random.Generator, midnight_ms: int, per_day: int, first_visitor: int) -> Day:
    """About ``per_day`` sightings: staff first (eight hours each), then shoppers until the count."""
    zones, visitors, times = [], [], []
    staff = []
    visitor = first_visitor
    for member in range(1, STAFF + 1):
        start = midnight_ms + int(rng.uniform(OPEN_H - 1, OPEN_H + 3) * 3_600_000)
        stamps = start + np.cumsum(rng.integers(40_000, 80_000, size=480))
        zones.append(np.repeat(rng.integers(1, ZONES + 1, size=48), 10))
        visitors.append(np.full(480, visitor))
        times.append(stamps)
        staff.append((visitor, member))
        visitor += 1
    count = sum(len(t) for t in times)
    shoppers = []
    while count < per_day:
        t = midnight_ms + int(rng.uniform(OPEN_H, CLOSE_H) * 3_600_000)
        middle = rng.choice(np.arange(2, ZONES), size=int(rng.integers(2, 6)), replace=False)
        path = [1, *middle.tolist(), *([ZONES] if rng.random() < 0.7 else [])]
        for zone in path:
            k = int(rng.integers(3, 12))
            stamps = t + np.cumsum(rng.integers(20_000, 60_000, size=k))
            zones.append(np.full(k, zone))
            visitors.append(np.full(k, visitor))
            times.append(stamps)
            t = int(stamps[-1]) + int(rng.integers(10_000, 90_000))
            count += k
        shoppers.append(visitor)
        visitor += 1
    return Day(np.concatenate(zones), np.concatenate(visitors), np.concatenate(times), shoppers, staff)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def load(engine: Engine, days: int, per_day: int, seed: int, first_day: datetime) -> dict:
    """Create the store and write every day; returns counts and load times."""
    rng = np.random.default_rng(seed)
    pg = engine.dialect.name == "postgresql"
    with engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO stores (id, name, timezone, created_at, ingest_seq, match_enabled)"
                " VALUES (1, 'Scale store', :tz, CURRENT_TIMESTAMP, 0, false)"
            ),
            {"tz": TIMEZONE},
        )
        for z in range(1, ZONES + 1):
            c.execute(
                text("INSERT INTO zones (id, store_id, name) VALUES (:z, 1, :n)"), {"z": z, "n": f"zone {z}"}
            )
            c.execute(
                text("INSERT INTO cameras (id, store_id, zone_id, name) VALUES (:z, 1, :z, :n)"),
                {"z": z, "n": f"cam {z}"},
            )
        for member in range(1, STAFF + 1):
            c.execute(
                text(
                    "INSERT INTO staff (id, store_id, name, source, created_at, model_version, prototype,"
                    " enrolled) VALUES (:i, 1, :n, 'photos', CURRENT_TIMESTAMP, 'bench', :p, 1)"
                ),
                {"i": member, "n": f"staff {member}", "p": EMBEDDING},
            )
    tz = ZoneInfo(TIMEZONE)
    next_visitor, next_sighting, sightings = 1, 1, 0
    started = time.perf_counter()
    for d in range(days):
        midnight = datetime.combine((first_day + timedelta(days=d)).date(), datetime.min.time(), tzinfo=tz)
        day = generate_day(rng, to_ms(midnight), per_day, next_visitor)
        ids = np.arange(next_sighting, next_sighting + len(day.times))
        next_sighting += len(day.times)
        next_visitor = max(day.shoppers) + 1
        staff_of = dict(day.staff)
        visitors = sorted(set(day.shoppers) | set(staff_of))
        with engine.begin() as c:
            if pg:
                cursor = c.connection.driver_connection.cursor()
                buffer = io.StringIO()
                for v in visitors:
                    buffer.write(f"{v}\t1\t2026-01-01T00:00:00Z\t{staff_of.get(v, chr(92) + 'N')}\n")
                with cursor.copy("COPY visitors (id, store_id, created_at, staff_id) FROM STDIN") as copy:
                    copy.write(buffer.getvalue())
                buffer = io.StringIO()
                for i, z, v, ms in zip(
                    ids.tolist(), day.zones.tolist(), day.visitors.tolist(), day.times.tolist(), strict=True
                ):
                    at = _iso(ms)
                    buffer.write(f"{i}\t1\t{z}\t{z}\t{v}\t{at}\t{ms}\t{at}\tbench\t\\\\x0000000000000000\n")
                with cursor.copy(f"COPY sightings ({SIGHTING_COLUMNS}) FROM STDIN") as copy:
                    copy.write(buffer.getvalue())
            else:
                c.execute(
                    text(
                        "INSERT INTO visitors (id, store_id, created_at, staff_id)"
                        " VALUES (:i, 1, '2026-01-01', :s)"
                    ),
                    [{"i": v, "s": staff_of.get(v)} for v in visitors],
                )
                c.execute(
                    text(
                        f"INSERT INTO sightings ({SIGHTING_COLUMNS})"
                        " VALUES (:i, 1, :z, :z, :v, :at, :ms, :at, 'bench', :e)"
                    ),
                    [
                        {"i": i, "z": z, "v": v, "ms": ms, "at": _iso(ms), "e": EMBEDDING}
                        for i, z, v, ms in zip(
                            ids.tolist(),
                            day.zones.tolist(),
                            day.visitors.tolist(),
                            day.times.tolist(),
                            strict=True,
                        )
                    ],
                )
        sightings += len(day.times)
        print(
            f"  day {d + 1}/{days}: {len(day.times)} sightings, {len(visitors)} visitors",
            end="\r",
            flush=True,
        )
    seconds = time.perf_counter() - started
    print()
    if pg:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text("VACUUM ANALYZE"))  # what autovacuum does after a bulk load
    return {
        "sightings": sightings,
        "visitors": next_visitor - 1,
        "load_s": seconds,
        "rows_per_s": sightings / seconds,
    }


@contextmanager
def recorded(engine: Engine):
    """Collect every statement the engine runs (for the query plans)."""
    statements: list[tuple[str, object]] = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", grab)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", grab)


def plans(engine: Engine, statements: list[tuple[str, object]]) -> list[str]:
    """The plan of every SELECT that touches sightings or the summary."""
    out = []
    pg = engine.dialect.name == "postgresql"
    seen = set()
    with engine.connect() as c:
        if pg:
            c.exec_driver_sql("SET jit = off")
            c.exec_driver_sql("SET work_mem = '64MB'")
        for statement, parameters in statements:
            head = statement.lstrip().upper()
            if not (head.startswith("SELECT") or head.startswith("WITH")) or statement in seen:
                continue
            if "sightings" not in statement and "density_days" not in statement:
                continue
            seen.add(statement)
            prefix = "EXPLAIN (ANALYZE, BUFFERS) " if pg else "EXPLAIN QUERY PLAN "
            rows = c.exec_driver_sql(prefix + statement, parameters).all()
            lines = [r[0] for r in rows] if pg else [f"{'  ' * (r[1] > 0)}{r[-1]}" for r in rows]
            out.append(" ".join(statement.split())[:300] + " ...\n" + "\n".join(lines))
    return out


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(np.ceil(q * len(ordered))) - 1))]


def touch_last_day(engine: Engine, lo: int, hi: int, step: int) -> None:
    """Move one sighting of the last day to another visitor (as ingest and re-linking do all day)."""
    with engine.begin() as c:
        row = c.execute(
            text(
                "SELECT id, visitor_id FROM sightings WHERE store_id = 1"
                " AND captured_ms >= :lo AND captured_ms < :hi ORDER BY id LIMIT 1 OFFSET :k"
            ),
            {"lo": lo, "hi": hi, "k": step},
        ).first()
        other = c.execute(
            text(
                "SELECT visitor_id FROM sightings WHERE store_id = 1"
                " AND captured_ms >= :lo AND visitor_id <> :v LIMIT 1"
            ),
            {"lo": lo, "v": row.visitor_id},
        ).scalar_one()
        c.execute(text("UPDATE sightings SET visitor_id = :o WHERE id = :i"), {"o": other, "i": row.id})
        c.execute(
            text("UPDATE sightings SET visitor_id = :v WHERE id = :i"), {"v": row.visitor_id, "i": row.id}
        )


def bench_database(url: str, args: argparse.Namespace, first_day: datetime) -> dict:
    """Load one database and time the three queries."""
    migrate(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    print(f"{engine.dialect.name}: loading {args.days} days x {args.per_day} sightings ...")
    loaded = load(engine, args.days, args.per_day, args.seed, first_day)
    print(
        f"  {loaded['sightings']} sightings in {loaded['load_s']:.0f} s"
        f" ({loaded['rows_per_s']:.0f}/s, triggers on)"
    )
    settings = Settings(_env_file=None, database_url=url, retention_days=max(30, args.days + 2))
    tz = ZoneInfo(TIMEZONE)
    store = Store(id=1, timezone=TIMEZONE)
    last = datetime.combine(
        (first_day + timedelta(days=args.days - 1)).date(), datetime.min.time(), tzinfo=tz
    )
    day_end = datetime.combine(last.date() + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    month_start = datetime.combine(first_day.date(), datetime.min.time(), tzinfo=tz)
    lo, hi = to_ms(last), to_ms(day_end)

    def density_day():
        return density_zones(sessions, settings, store=store, start=last, end=day_end, bucket_s=900)

    def density_month():
        return density_zones(sessions, settings, store=store, start=month_start, end=day_end, bucket_s=86400)

    def flows_day():
        with sessions() as session:
            gap_ms = int(settings.store_visit_gap_s * 1000)
            return compute_flows(for_reports(session), 1, lo, hi, gap_ms, ZONES)

    cold_started = time.perf_counter()
    density_month()
    cold = time.perf_counter() - cold_started
    kinds: dict[str, tuple[Callable, Callable | None]] = {
        "density day": (density_day, None),
        "density month": (density_month, lambda k: touch_last_day(engine, lo, hi, k)),
        "flows day": (flows_day, None),
    }
    rows = []
    for name, (run, before) in kinds.items():
        if before:
            before(0)
        with recorded(engine) as statements:
            run()
        shown = plans(engine, statements)
        times = []
        for k in range(args.repeats):
            if before:
                before(k + 1)
            started = time.perf_counter()
            run()
            times.append(time.perf_counter() - started)
        row = {
            "database": engine.dialect.name,
            "query": name,
            "runs": len(times),
            "p50_s": statistics.median(times),
            "p95_s": percentile(times, 0.95),
            "max_s": max(times),
            "goal_s": GOALS_S[name],
            "cold_s": cold if name == "density month" else None,
            "plans": shown,
        }
        rows.append(row)
        print(f"  {name}: p50 {row['p50_s']:.3f} s, p95 {row['p95_s']:.3f} s")
        if not args.quiet_plans:
            print(f"\n  --- query plans: {engine.dialect.name}, {name} ---")
            for plan in shown:
                print("  " + plan.replace("\n", "\n    ") + "\n")
    engine.dispose()
    return {"database": engine.dialect.name, "load": loaded, "rows": rows}


@contextmanager
def fresh_database(kind: str, args: argparse.Namespace, folder: Path) -> Iterator[str]:
    """A new empty database of ``kind``, removed afterwards unless ``--keep``."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'density_scale.db'}"
        return
    with scratch_postgres(args.pg_url, "reid_scale", keep=args.keep) as url:
        yield url


def table(results: list[dict]) -> str:
    """The Markdown table of the README."""
    lines = [
        "| database | query | runs | p50 | p95 | goal (p95) | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for result in results:
        for row in result["rows"]:
            goal = f"< {row['goal_s']:.0f} s" if row["database"] == "postgresql" else "-"
            met = (
                ("yes" if row["p95_s"] < row["goal_s"] else "no") if row["database"] == "postgresql" else "-"
            )
            name = row["query"] + (f" (cold: {row['cold_s']:.1f} s)" if row["cold_s"] is not None else "")
            lines.append(
                f"| {row['database']} | {name} | {row['runs']} | {row['p50_s'] * 1000:.0f} ms"
                f" | {row['p95_s'] * 1000:.0f} ms | {goal} | {met} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--per-day", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument(
        "--pg-url", default=DEFAULT_PG, help="a PostgreSQL server where a database may be created"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    parser.add_argument(
        "--quiet-plans", action="store_true", help="keep the plans out of the output (JSON only)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    first_day = datetime.now(UTC) - timedelta(days=args.days)
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for kind in args.databases.split(","):
            with fresh_database(kind, args, Path(folder)) as url:
                results.append(bench_database(url, args, first_day))
    print()
    print(table(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "days": args.days,
        "per_day": args.per_day,
        "zones": ZONES,
        "staff": STAFF,
        "repeats": args.repeats,
    }
    meta |= {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": __import__("os").cpu_count(),
    }
    args.out.write_text(json.dumps({"config": meta, "results": results}, indent=2, default=str))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
