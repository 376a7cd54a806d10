"""Exact (IndexFlatIP) vs IVF + 8-bit scalar quantisation, as the service shards them, on 2048-d vectors.

For each shard size: build time, memory, query latency (one query at a time and a batch of queries)
and recall@10 of IVF against exact search, on clustered, L2-normalised synthetic vectors generated in
chunks (1M x 2048 float32 is 8 GB; the exact index is freed before the IVF one is built). Index MB counts
vectors/codes, ids (list id, IDMap2 forward and reverse map) and centroids; RSS+ is the process growth.
Single queries run on one thread (each request thread searches alone); the batch uses all. Prints a table
and writes ``bench/results/index_search.json``.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import time
from pathlib import Path

import faiss
import numpy as np

from service.vectors.faiss_store import ivf_lists, new_ivf

DIM = 2048
CLUSTERS = 2000
CHUNK = 50_000
K = 10
ID_BYTES = 8 + 8 + 32
RESULTS = Path(__file__).resolve().parent / "results" / "index_search.json"


def rss_bytes() -> int:
    """Resident memory of this process."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class ClusteredVectors:
    """Deterministic clustered unit vectors: chunk ``i`` is always the same (people seen many times)."""

    def __init__(self, dim: int, clusters: int, spread: float = 0.6) -> None:
        centres = np.random.default_rng(0).standard_normal((clusters, dim)).astype(np.float32)
        self.centres = centres / np.linalg.norm(centres, axis=1, keepdims=True)
        self.spread = spread / np.sqrt(dim)

    def chunk(self, seed: int, count: int) -> np.ndarray:
        """``count`` vectors near random centres, L2-normalised."""
        rng = np.random.default_rng(seed + 1)
        picks = rng.integers(0, len(self.centres), count)
        vectors = self.centres[picks] + rng.standard_normal(
            (count, self.centres.shape[1]), dtype=np.float32
        ) * (self.spread)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors

    def chunks(self, total: int):
        """Yield (first id, vectors) in chunks covering ``total`` vectors."""
        for start in range(0, total, CHUNK):
            yield start, self.chunk(start // CHUNK, min(CHUNK, total - start))


def timed_queries(index: faiss.Index, queries: np.ndarray, singles: int, params=None) -> dict:
    """p50 latency of single queries (one thread, as each request thread would) and of one batched call."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    index.search(queries[:1], K, params=params)
    single = []
    for row in range(singles):
        started = time.perf_counter()
        index.search(queries[row : row + 1], K, params=params)
        single.append(time.perf_counter() - started)
    faiss.omp_set_num_threads(threads)
    started = time.perf_counter()
    _, ids = index.search(queries, K, params=params)
    batched = time.perf_counter() - started
    return {
        "single_p50_ms": statistics.median(single) * 1000,
        "batch_size": len(queries),
        "batch_total_ms": batched * 1000,
        "batch_per_query_ms": batched * 1000 / len(queries),
        "ids": ids,
    }


def bench_exact(
    data: ClusteredVectors, size: int, queries: np.ndarray, singles: int
) -> tuple[dict, np.ndarray]:
    """Build an IDMap2(FlatIP) shard and time it; returns the row and the exact top-k ids."""
    before = rss_bytes()
    started = time.perf_counter()
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))
    for first, vectors in data.chunks(size):
        index.add_with_ids(vectors, np.arange(first, first + len(vectors), dtype=np.int64))
    build = time.perf_counter() - started
    memory = rss_bytes() - before
    timing = timed_queries(index, queries, singles)
    truth = timing.pop("ids")
    row = {
        "index": "exact FlatIP",
        "build_s": build,
        "index_mb": (index.ntotal * (DIM * 4 + ID_BYTES)) / 2**20,
        "rss_delta_mb": memory / 2**20,
        "recall_at_10": 1.0,
        **timing,
    }
    del index
    gc.collect()
    return row, truth


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of the exact top-k found."""
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


def bench_ivf(
    data: ClusteredVectors,
    size: int,
    queries: np.ndarray,
    truth: np.ndarray,
    singles: int,
    nprobes: list[int],
) -> list[dict]:
    """Train and fill IVF+SQ8 like the service does, then time it at several nprobe values."""
    before = rss_bytes()
    nlist = ivf_lists(size)
    started = time.perf_counter()
    ivf = new_ivf(DIM, nlist, nprobes[0])
    sample = np.vstack([v for _, v in data.chunks(min(size, nlist * 40))])
    ivf.train(sample)
    del sample
    trained = time.perf_counter() - started
    index = faiss.IndexIDMap2(ivf)
    for first, vectors in data.chunks(size):
        index.add_with_ids(vectors, np.arange(first, first + len(vectors), dtype=np.int64))
    build = time.perf_counter() - started
    memory = rss_bytes() - before
    rows = []
    for nprobe in nprobes:
        params = faiss.SearchParametersIVF(nprobe=nprobe)
        timing = timed_queries(index, queries, singles, params)
        found = timing.pop("ids")
        rows.append(
            {
                "index": f"IVF{nlist},SQ8 nprobe={nprobe}",
                "build_s": build,
                "train_s": trained,
                "index_mb": (index.ntotal * (ivf.code_size + ID_BYTES) + nlist * DIM * 4) / 2**20,
                "rss_delta_mb": memory / 2**20,
                "recall_at_10": recall(found, truth),
                **timing,
            }
        )
    del index, ivf
    gc.collect()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k and 50k vectors instead of 100k and 1M")
    parser.add_argument("--sizes", type=int, nargs="*", help="override the shard sizes")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--singles", type=int, default=20)
    parser.add_argument("--nprobe", type=int, nargs="*", default=[8, 16, 64])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    sizes = args.sizes or ([10_000, 50_000] if args.quick else [100_000, 1_000_000])
    data = ClusteredVectors(DIM, CLUSTERS)
    queries = data.chunk(10_000_019, args.queries)
    report = {
        "dim": DIM,
        "k": K,
        "clusters": CLUSTERS,
        "faiss": faiss.__version__,
        "gpus": faiss.get_num_gpus(),
        "threads": faiss.omp_get_max_threads(),
        "cpu": platform.processor() or platform.machine(),
        "rows": [],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for size in sizes:
        exact, truth = bench_exact(data, size, queries, args.singles)
        rows = [exact, *bench_ivf(data, size, queries, truth, args.singles, args.nprobe)]
        for row in rows:
            report["rows"].append({"vectors": size, **row})
            print_row(report["rows"][-1])
        args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


HEADER = (
    f"{'vectors':>9} {'index':<26} {'build s':>8} {'index MB':>8} {'RSS+ MB':>8} {'1 query ms':>10} "
    f"{'batch/q ms':>10} {'recall@10':>9}"
)


def print_row(row: dict) -> None:
    """One line of the table (header before the first)."""
    if not getattr(print_row, "started", False):
        print(HEADER)
        print_row.started = True
    print(
        f"{row['vectors']:>9} {row['index']:<26} {row['build_s']:>8.1f} {row['index_mb']:>8.0f} "
        f"{row['rss_delta_mb']:>8.0f} {row['single_p50_ms']:>10.2f} {row['batch_per_query_ms']:>10.3f} "
        f"{row['recall_at_10']:>9.3f}"
    )


if __name__ == "__main__":
    main()
