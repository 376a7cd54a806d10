"""The service's two vector-store backends on the same vectors: FAISS (in process) vs Milvus Lite.

Both are driven through the service's ``VectorStore`` interface: one store, clustered L2-normalised
vectors captured over three UTC days in three zones. For each backend (and each Milvus index): ingest
time, flush/save time, Milvus Lite's background index build, p50 latency of single queries (one at a
time on one FAISS thread, as a request thread searches; Milvus Lite runs FAISS in this process too),
per-query time of one batched call, and recall@10 against exact (numpy) search, without a filter and
with a one-day-one-zone filter. Milvus Lite is an embedded engine: its numbers say how the adapter
behaves, not how a Milvus cluster performs. Prints a table and writes ``bench/results/milvus_vs_faiss.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np
import pymilvus

from service.vectors.base import VectorFilter, VectorStore
from service.vectors.faiss_store import FaissVectorStore
from service.vectors.milvus_store import MilvusVectorStore

DAY_MS = 86_400_000
T0 = 20_000 * DAY_MS
STORE = 1
K = 10
CHUNK = 5_000
RESULTS = Path(__file__).resolve().parent / "results" / "milvus_vs_faiss.json"


class Data:
    """Deterministic clustered unit vectors with capture times over three days and zones 1..3."""

    def __init__(self, count: int, dim: int, clusters: int, spread: float = 0.6) -> None:
        rng = np.random.default_rng(0)
        centres = rng.standard_normal((clusters, dim)).astype(np.float32)
        self.centres = centres / np.linalg.norm(centres, axis=1, keepdims=True)
        self.spread = spread / np.sqrt(dim)
        self.ids = np.arange(1, count + 1, dtype=np.int64)
        self.ms = np.sort(T0 + rng.integers(0, 3 * DAY_MS, count)).astype(np.int64)
        self.zones = rng.integers(1, 4, count).astype(np.int64)
        self.vectors = np.vstack(
            [self.sample(start, min(CHUNK, count - start)) for start in range(0, count, CHUNK)]
        )

    def sample(self, seed: int, count: int) -> np.ndarray:
        """``count`` vectors near random centres, L2-normalised."""
        rng = np.random.default_rng(seed + 1)
        picks = rng.integers(0, len(self.centres), count)
        noise = rng.standard_normal((count, self.centres.shape[1]), dtype=np.float32) * self.spread
        vectors = self.centres[picks] + noise
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def exact(self, queries: np.ndarray, where: VectorFilter) -> list[set[int]]:
        """The exact top-k ids of each query among the vectors passing ``where``."""
        mask = where.mask(self.ms, self.zones)
        sims = queries @ self.vectors[mask].T
        top = np.argsort(-sims, axis=1)[:, :K]
        return [set(self.ids[mask][row].tolist()) for row in top]


def wait_for_lite_index(collection: str) -> float:
    """Wait for Milvus Lite's background worker (compaction and index build after a flush); seconds waited.

    Milvus Lite reports every index as finished at once, so this queues a no-op behind the worker's tasks
    (a private attribute of Milvus Lite 3.x: bench-only).
    """
    from milvus_lite.server_manager import server_manager_instance

    started = time.perf_counter()
    for _, db, _ in list(server_manager_instance._servers.values()):
        if db.has_collection(collection):
            db.get_collection(collection)._bg_executor.submit(lambda: None).result()
    return time.perf_counter() - started


def ingest(store: VectorStore, data: Data, directory: Path) -> dict:
    """Add every vector in chunks, save (FAISS: files; Milvus: a flush), wait for Milvus Lite's indexing."""
    started = time.perf_counter()
    for start in range(0, len(data.ids), CHUNK):
        rows = slice(start, start + CHUNK)
        store.add(STORE, data.ids[rows], data.vectors[rows], data.ms[rows], data.zones[rows])
    added = time.perf_counter() - started
    started = time.perf_counter()
    store.save(STORE, directory)
    saved = time.perf_counter() - started
    waited = wait_for_lite_index(store.collection) if isinstance(store, MilvusVectorStore) else 0.0
    return {"ingest_s": added, "save_s": saved, "index_wait_s": waited}


def timed(store: VectorStore, queries: np.ndarray, where: VectorFilter, singles: int, truth) -> dict:
    """After a warm-up: p50 of single queries on one FAISS thread, batched per-query time, recall@10."""
    store.search(queries, K, where)
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    single = []
    for row in range(singles):
        started = time.perf_counter()
        store.search(queries[row : row + 1], K, where)
        single.append(time.perf_counter() - started)
    faiss.omp_set_num_threads(threads)
    started = time.perf_counter()
    hits = store.search(queries, K, where)
    batched = time.perf_counter() - started
    found = [{h.sighting_id for h in row} for row in hits]
    return {
        "single_p50_ms": statistics.median(single) * 1000,
        "batch_size": len(queries),
        "batch_per_query_ms": batched * 1000 / len(queries),
        "recall_at_10": float(np.mean([len(f & t) / len(t) for f, t in zip(found, truth, strict=True)])),
    }


def backends(dim: int, workdir: Path, efs: list[int]) -> list[tuple[str, dict, object]]:
    """(label, settings, factory) of each backend configuration to measure."""
    uri = str(workdir / "milvus.db")
    configs: list[tuple[str, dict, object]] = [
        ("faiss exact (service default)", {}, lambda: FaissVectorStore(dim, use_gpu=False))
    ]
    configs.append(
        (
            "milvus-lite FLAT",
            {"index_type": "FLAT"},
            lambda: MilvusVectorStore(uri, dim, "bench_flat", index_type="FLAT"),
        )
    )
    for ef in efs:
        configs.append(
            (
                f"milvus-lite HNSW ef={ef}",
                {"index_type": "HNSW", "M": 16, "efConstruction": 200, "ef": ef},
                lambda ef=ef: MilvusVectorStore(
                    uri,
                    dim,
                    "bench_hnsw",
                    index_type="HNSW",
                    index_params={"M": 16, "efConstruction": 200},
                    search_params={"ef": ef},
                ),
            )
        )
    return configs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, default=50_000)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--clusters", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--singles", type=int, default=30)
    parser.add_argument("--ef", type=int, nargs="*", default=[64, 256])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    data = Data(args.vectors, args.dim, args.clusters)
    queries = data.sample(10_000_019, args.queries)
    filters = {
        "store only": VectorFilter(STORE),
        "1 day + 1 zone": VectorFilter(STORE, min_ms=T0 + DAY_MS, max_ms=T0 + 2 * DAY_MS, zone_id=2),
    }
    truths = {name: data.exact(queries, where) for name, where in filters.items()}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        ingested: dict[str, dict] = {}
        for label, settings, factory in backends(args.dim, workdir, args.ef):
            store = factory()
            collection = getattr(store, "collection", "faiss")
            if collection not in ingested:
                ingested[collection] = ingest(store, data, workdir / collection)
            for name, where in filters.items():
                row = {
                    "backend": label,
                    "filter": name,
                    **settings,
                    **ingested[collection],
                    **timed(store, queries, where, args.singles, truths[name]),
                }
                rows.append(row)
                print_row(row)
    report = {
        "vectors": args.vectors,
        "dim": args.dim,
        "k": K,
        "clusters": args.clusters,
        "faiss": faiss.__version__,
        "pymilvus": pymilvus.__version__,
        "threads": faiss.omp_get_max_threads(),
        "cpu": platform.processor() or platform.machine(),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


HEADER = (
    f"{'backend':<28} {'filter':<15} {'ingest s':>8} {'save s':>7} {'index s':>7} {'1 query ms':>10} "
    f"{'batch/q ms':>10} {'recall@10':>9}"
)


def print_row(row: dict) -> None:
    """One line of the table (header before the first)."""
    if not getattr(print_row, "started", False):
        print(HEADER)
        print_row.started = True
    print(
        f"{row['backend']:<28} {row['filter']:<15} {row['ingest_s']:>8.1f} {row['save_s']:>7.1f} "
        f"{row['index_wait_s']:>7.1f} "
        f"{row['single_p50_ms']:>10.2f} {row['batch_per_query_ms']:>10.3f} {row['recall_at_10']:>9.3f}"
    )


if __name__ == "__main__":
    main()
