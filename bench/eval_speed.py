"""Time re-id evaluation at CUHK03 and Market-1501 sizes against a plain per-query loop.

Each measurement runs in its own subprocess so that its peak resident memory (ru_maxrss) is its own.
Run: .venv/bin/python bench/eval_speed.py [--quick] [--out bench/results/eval_speed.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from training.evaluation import compute_distance, evaluate_ranking, re_rank  # noqa: E402

SIZES = {
    "cuhk03": {"num_query": 1400, "num_gallery": 5332, "num_ids": 700, "num_cams": 2, "dim": 2048},
    "market1501": {"num_query": 3368, "num_gallery": 15913, "num_ids": 751, "num_cams": 6, "dim": 2048},
}
QUICK_SIZES = {
    "cuhk03_quarter": {"num_query": 350, "num_gallery": 1333, "num_ids": 175, "num_cams": 2, "dim": 2048},
}


def make_problem(spec: dict, seed: int = 0) -> dict[str, np.ndarray]:
    """Clustered random features (identity centre + noise) with plausible person and camera ids."""
    rng = np.random.default_rng(seed)
    num_ids, dim = spec["num_ids"], spec["dim"]
    q_pids = rng.permutation(np.resize(np.arange(1, num_ids + 1), spec["num_query"]))
    g_pids = rng.permutation(np.resize(np.arange(num_ids + 1), spec["num_gallery"]))
    centres = rng.standard_normal((num_ids + 1, dim), dtype=np.float32)

    def features(pids: np.ndarray) -> np.ndarray:
        return centres[pids] + 3.5 * rng.standard_normal((len(pids), dim), dtype=np.float32)

    return {
        "q_feat": features(q_pids),
        "g_feat": features(g_pids),
        "q_pids": q_pids,
        "g_pids": g_pids,
        "q_camids": rng.integers(0, spec["num_cams"], len(q_pids)),
        "g_camids": rng.integers(0, spec["num_cams"], len(g_pids)),
    }


def naive_metrics(distmat, q_pids, g_pids, q_camids, g_camids, max_rank: int = 50) -> dict:
    """Reference loop: per query a stable sort, the junk mask, cumulative sums and the AP."""
    cmc, aps, inps, valid = np.zeros(max_rank), [], [], 0
    for i in range(len(q_pids)):
        order = np.argsort(distmat[i], kind="stable")
        keep = ~(((g_pids[order] == q_pids[i]) & (g_camids[order] == q_camids[i])) | (g_pids[order] == -1))
        hits = (g_pids[order] == q_pids[i])[keep]
        if not hits.any():
            continue
        valid += 1
        ranks = np.flatnonzero(hits) + 1
        if ranks[0] <= max_rank:
            cmc[ranks[0] - 1 :] += 1
        aps.append(float(np.mean(np.arange(1, len(ranks) + 1) / ranks)))
        inps.append(len(ranks) / ranks[-1])
    return {
        "cmc": cmc / valid,
        "mAP": float(np.mean(aps)),
        "mINP": float(np.mean(inps)),
        "num_valid_queries": valid,
    }


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _current_rss_mib() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def worker_metrics(spec: dict) -> dict:
    """Distances + vectorised metrics, then the per-query loop, and whether they agree."""
    p = make_problem(spec)
    ids = (p["q_pids"], p["g_pids"], p["q_camids"], p["g_camids"])
    distmat, t_dist = _timed(compute_distance, p["q_feat"], p["g_feat"], "cosine")
    fast, t_fast = _timed(evaluate_ranking, distmat, *ids)
    slow, t_slow = _timed(naive_metrics, distmat, *ids)
    agree = bool(
        np.allclose(fast["cmc"], slow["cmc"], atol=1e-12)
        and abs(fast["mAP"] - slow["mAP"]) < 1e-9
        and abs(fast["mINP"] - slow["mINP"]) < 1e-9
        and fast["num_valid_queries"] == slow["num_valid_queries"]
    )
    return {
        "distance_s": t_dist,
        "metrics_s": t_fast,
        "naive_loop_s": t_slow,
        "agree": agree,
        "rank1": float(fast["cmc"][0]),
        "mAP": fast["mAP"],
        "mAP_paper_interpolated": fast["mAP_paper_interpolated"],
        "mINP": fast["mINP"],
        "peak_rss_mib": _peak_rss_mib(),
    }


def worker_rerank(spec: dict) -> dict:
    """The three distance blocks, then re-ranking; memory is the peak over the inputs already held."""
    p = make_problem(spec)
    q_feat, g_feat = torch.from_numpy(p.pop("q_feat")), torch.from_numpy(p.pop("g_feat"))
    start = time.perf_counter()
    q_g = compute_distance(q_feat, g_feat, "cosine")
    q_q = compute_distance(q_feat, q_feat, "cosine")
    g_g = compute_distance(g_feat, g_feat, "cosine")
    t_dist = time.perf_counter() - start
    del q_feat, g_feat
    inputs_rss = _current_rss_mib()
    reranked, t_rerank = _timed(re_rank, q_g, q_q, g_g)
    peak = _peak_rss_mib()
    ids = (p["q_pids"], p["g_pids"], p["q_camids"], p["g_camids"])
    before, after = evaluate_ranking(q_g, *ids), evaluate_ranking(reranked, *ids)
    return {
        "distance_blocks_s": t_dist,
        "rerank_s": t_rerank,
        "peak_rss_mib": peak,
        "rss_with_inputs_mib": inputs_rss,
        "rerank_extra_peak_mib": peak - inputs_rss,
        "mAP_before": before["mAP"],
        "mAP_after": after["mAP"],
        "rank1_before": float(before["cmc"][0]),
        "rank1_after": float(after["cmc"][0]),
    }


def run_worker(kind: str, name: str, spec: dict) -> dict:
    """Run one measurement in a fresh interpreter and return its JSON result."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--spec", json.dumps(spec)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} worker for {name} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_table(results: dict) -> None:
    """Print one line per problem size."""
    header = (
        f"{'size':<16}{'q x g':>14}{'dist s':>8}{'metrics s':>10}{'loop s':>8}{'same':>6}"
        f"{'R1':>7}{'mAP':>7}{'mAP-int':>8}{'rerank s':>9}{'rr peak MiB':>12}"
        f"{'rr extra MiB':>13}{'mAP rr':>8}"
    )
    print(header)
    print("-" * len(header))
    for name, r in results.items():
        m, rr, s = r["metrics"], r["rerank"], r["spec"]
        print(
            f"{name:<16}{s['num_query']:>6} x {s['num_gallery']:<6}"
            f"{m['distance_s']:>8.2f}{m['metrics_s']:>10.2f}"
            f"{m['naive_loop_s']:>8.2f}{'yes' if m['agree'] else 'NO':>6}{m['rank1']:>7.3f}{m['mAP']:>7.3f}"
            f"{m['mAP_paper_interpolated']:>8.3f}{rr['rerank_s']:>9.1f}{rr['peak_rss_mib']:>12.0f}"
            f"{rr['rerank_extra_peak_mib']:>13.0f}{rr['mAP_after']:>8.3f}"
        )


def main() -> None:
    """Benchmark entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one small problem only")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "eval_speed.json")
    parser.add_argument("--worker", choices=["metrics", "rerank"], help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        work = worker_metrics if args.worker == "metrics" else worker_rerank
        print(json.dumps(work(json.loads(args.spec))))
        return
    results = {}
    for name, spec in (QUICK_SIZES if args.quick else SIZES).items():
        results[name] = {
            "spec": spec,
            "metrics": run_worker("metrics", name, spec),
            "rerank": run_worker("rerank", name, spec),
        }
    print_table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"torch_threads": torch.get_num_threads(), "numpy": np.__version__, "torch": torch.__version__}
    args.out.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
