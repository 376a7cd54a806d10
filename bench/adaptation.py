"""Does adapting to a store's own unlabelled crops pay? Direct transfer against adaptation, side by side.

The synthetic pair: the synthetic recipe's model (``make-synthetic`` seed 0, 40 people, 4 cameras,
``training/configs/synthetic.yaml``; the one ``bench/store_day.py`` trains and caches in ``runs/store_day``)
is the source; a store it never saw is ``make-synthetic`` seed 1
(other people, other cameras: scenes, colour casts, blur), by default 200 people of whom the first
100 are the unlabelled training crops. The source is evaluated on the new store's query/gallery as it is
(direct transfer), then adapted on the store's training images without their labels
(``reid-train adapt``, ``training/configs/adapt_synthetic.yaml``) and evaluated again. The names of the
target's training images carry person ids (Market-1501 layout); the adaptation reads them only to log
cluster purity.

``--store-day`` adds the store-day bench (``bench/store_day.py``, loose crops and tracks): the same
source adapted on crops of two other days of that store (other shoppers, written as ``reid-admin
export-crops`` writes them: camera and capture time only), exported, and the day replayed with the
source's export and with the adapted one.

Everything is cached under ``--work`` (default ``runs/adaptation``); writes ``bench/results/adaptation.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from store_day import MODEL_CACHE, ensure_model  # noqa: E402

import model  # noqa: E402
from model.crop_export import export_name  # noqa: E402
from training.adaptation import adapt, load_adapt_config  # noqa: E402
from training.checkpoint import read_checkpoint_file  # noqa: E402
from training.cli import main as reid_train  # noqa: E402
from training.datasets import build_dataset  # noqa: E402
from training.datasets.synthetic import make_synthetic  # noqa: E402
from training.evaluation.report import evaluate_model  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "adaptation.json"
ADAPT_RECIPE = ROOT / "training" / "configs" / "adapt_synthetic.yaml"
IMAGE_SIZE = (64, 32)
FEATURE = "bn"  # the service's feature


def synthetic(out: Path, ids: int, cameras: int, seed: int) -> Path:
    """A synthetic set in Market-1501 layout, written once."""
    meta = out / "synthetic.json"
    wanted = {"ids": ids, "cameras": cameras, "seed": seed, "image_size": list(IMAGE_SIZE)}
    if meta.is_file() and {k: json.loads(meta.read_text())[k] for k in wanted} == wanted:
        return out
    return make_synthetic(out, ids=ids, cameras=cameras, seed=seed, image_size=IMAGE_SIZE, overwrite=True)


def source_model() -> tuple[Path, Path, Path]:
    """The synthetic recipe's model on make-synthetic seed 0 (40 people, 4 cameras, 64x32): checkpoint,
    its data and its export; the very model ``bench/store_day.py`` trains and caches in runs/store_day."""
    export = ensure_model(None)
    return MODEL_CACHE / "run" / "final.pt", MODEL_CACHE / "data", export


def evaluate(checkpoint: Path, data: Path, out: Path) -> dict:
    """rank-1/5/10, mAP and mINP of the service's feature on a set's query/gallery."""
    net = model.load_checkpoint(checkpoint)
    report = evaluate_model(net, build_dataset("market1501", data), out, num_rank_lists=0)
    result = report["results"][FEATURE]
    cmc = result["cmc"]
    return {
        "rank1": cmc[0],
        "rank5": cmc[4],
        "rank10": cmc[9],
        "mAP": result["mAP"],
        "mINP": result["mINP"],
        "queries": report["num_query"],
        "gallery": report["num_gallery"],
    }


def adapted_checkpoint(
    source: Path, unlabelled: Path, out: Path, overrides: list[str], resume_ok: bool = True
) -> tuple[Path, list[dict], float]:
    """Adapt ``source`` on ``unlabelled`` (reused when the run already finished); its history and time."""
    final = out / "final.pt"
    if resume_ok and final.is_file():
        state = read_checkpoint_file(final)
        history = state["adaptation"]["history"]
        return final, history, sum(entry["seconds"] for entry in history)
    config = load_adapt_config(ADAPT_RECIPE, overrides)
    started = time.perf_counter()
    result = adapt(config, source, unlabelled, out, progress=sys.stderr.isatty())
    history = [entry.__dict__ for entry in result.history]
    return result.final_checkpoint, history, time.perf_counter() - started


def write_store_days(out: Path, days: list[int]) -> Path:
    """Crops of other days of the store-day bench's store, named as ``reid-admin export-crops`` names them."""
    from PIL import Image

    from training.datasets.store_day import StoreDayConfig, make_store_day

    marker = out / ".complete"
    if marker.is_file() and marker.read_text() == json.dumps(days):
        return out
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):
        old.unlink()
    taken: dict[tuple, int] = {}
    for day in days:
        # other shoppers (ids from 10000 * day), the same cameras (dataset seed 0, cameras 1..3)
        store_day = make_store_day(StoreDayConfig(seed=day, first_person_id=10_000 * day))
        for crop in store_day.crops:
            n = taken.get((crop.camera, crop.captured_at), 0)
            taken[(crop.camera, crop.captured_at)] = n + 1
            Image.fromarray(store_day.image(crop)).save(out / export_name(crop.camera, crop.captured_at, n))
        print(
            f"wrote day {day}: {len(store_day.crops)} crops of {len(store_day.people)} shoppers", flush=True
        )
    marker.write_text(json.dumps(days))
    return out


def write_labelled_day(out: Path, seed: int, first_person_id: int, people: int) -> Path:
    """A labelled sample of the store (another day, other shoppers) in the folder layout calibration reads."""
    from PIL import Image

    from training.datasets.store_day import StoreDayConfig, make_store_day

    marker = out / ".complete"
    if marker.is_file():
        return out
    day = make_store_day(StoreDayConfig(people=people, seed=seed, first_person_id=first_person_id))
    counts: dict[tuple[int, int], int] = {}
    for crop in day.crops:
        n = counts.get((crop.person, crop.camera), 0)
        counts[(crop.person, crop.camera)] = n + 1
        folder = out / str(crop.person)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(day.image(crop)).save(folder / f"{crop.camera}_{n}.png")
    marker.write_text("done")
    return out


def calibrated_threshold(model_dir: Path, sample: Path, out: Path) -> dict:
    """``reid-admin calibrate`` of an export on the labelled sample: the best threshold and its F1."""
    command = [sys.executable, "-c", "from service.cli import admin; admin()", "calibrate", str(sample)]
    command += ["--json", str(out.with_suffix(".json")), "--plot", str(out.with_suffix(".png"))]
    env = {**os.environ, "REID_MODEL_DIR": str(model_dir), "REID_DATABASE_URL": f"sqlite:///{out}.db"}
    subprocess.run(command, check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    best = json.loads(out.with_suffix(".json").read_text())["best"]
    return {"threshold": best["threshold"], "f1": best["f1"]}


def export(checkpoint: Path, out: Path) -> Path:
    """``reid-train export`` (provenance included) unless already exported from this checkpoint."""
    meta = out / "model.json"
    if meta.is_file() and json.loads(meta.read_text())["provenance"].get("checkpoint") == str(
        checkpoint.resolve()
    ):
        return out
    if reid_train(["export", "--checkpoint", str(checkpoint), "--out", str(out)]) != 0:
        raise SystemExit("reid-train export failed")
    return out


def store_day(
    model_dir: Path, out: Path, modes: list[str], postgres: str | None, threshold: float | None
) -> dict:
    """Run bench/store_day.py on an export (at ``threshold``, or the service default); its JSON."""
    command = [sys.executable, str(ROOT / "bench" / "store_day.py"), "--model-dir", str(model_dir)]
    command += ["--modes", *modes, "--out", str(out)]
    if threshold is not None:
        command += ["--threshold", str(threshold)]
    if postgres:
        command += ["--postgres", postgres]
    subprocess.run(command, check=True, cwd=ROOT)
    return json.loads(out.read_text())


def store_day_rows(result: dict) -> list[dict]:
    """One row per mode and stage: visitors, pairwise and B-cubed F1, /match rank-1."""
    rows = []
    for mode in result["results"]:
        for stage, scores in mode["stages"].items():
            rows.append(
                {
                    "mode": mode["mode"]["name"] + (" + re-linking" if stage == "relinked" else ""),
                    "visitors": scores["visitors"],
                    "people": scores["people"],
                    "pairwise_f1": scores["pairwise"]["f1"],
                    "bcubed_f1": scores["bcubed"]["f1"],
                    "match_rank1": mode["match"].get("rank1"),
                    "match_mAP": mode["match"].get("mAP"),
                }
            )
    return rows


def print_pair(results: dict) -> None:
    direct, adapted = results["direct"], results["adapted"]
    print(f"\nsynthetic pair: {results['target']}")
    print(f"{'model':<44} {'rank-1':>7} {'rank-5':>7} {'mAP':>7} {'mINP':>7} {'x rank-1':>8} {'x mAP':>7}")
    rows = [
        ("source on its own cameras (seed 0)", results["source_own"]),
        ("direct transfer (seed 1)", direct),
        ("adapted, no labels (seed 1)", adapted),
    ]
    for label, m in rows:
        print(
            f"{label:<44} {m['rank1']:>7.3f} {m['rank5']:>7.3f} {m['mAP']:>7.3f} {m['mINP']:>7.3f} "
            f"{m['rank1'] / direct['rank1']:>8.2f} {m['mAP'] / direct['mAP']:>7.2f}"
        )
    history = results["history"]
    purity = [f"{h['purity']:.2f}" if h["purity"] is not None else "-" for h in history]
    print(
        f"clusters per epoch {[h['clusters'] for h in history]}, purity {purity}, "
        f"adaptation {results['adapt_seconds'] / 60:.1f} min"
    )


def print_store_day(results: dict) -> None:
    print("\nstore-day bench (bench/store_day.py): the source's export against the adapted one")
    for label in ("source", "adapted"):
        calibration = results.get(f"{label}_calibration")
        if calibration:
            print(
                f"{label}: threshold {calibration['threshold']:.3f} calibrated on another labelled day "
                f"(pairwise F1 there {calibration['f1']:.3f})"
            )
    print(
        f"{'model':<10} {'linking':<24} {'visitors':>8} {'pair F1':>7} {'B3 F1':>6} {'match r1':>8} "
        f"{'mAP':>6}"
    )
    for label in ("source", "adapted"):
        for row in results[label]:
            rank1 = f"{row['match_rank1']:.2f}" if row["match_rank1"] is not None else "-"
            mean_ap = f"{row['match_mAP']:.2f}" if row["match_mAP"] is not None else "-"
            print(
                f"{label:<10} {row['mode']:<24} {row['visitors']:>8} {row['pairwise_f1']:>7.2f} "
                f"{row['bcubed_f1']:>6.2f} {rank1:>8} {mean_ap:>6}"
            )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "adaptation", help="cache folder")
    parser.add_argument("--target-ids", type=int, default=200, help="people of the new store (seed 1)")
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="adaptation recipe"
    )
    parser.add_argument("--fresh", action="store_true", help="adapt again even when a finished run is cached")
    parser.add_argument(
        "--store-day", action="store_true", help="also run the store-day bench on both models"
    )
    parser.add_argument("--store-day-modes", nargs="+", default=["loose", "tracks"])
    parser.add_argument("--postgres", default=None, help="store-day bench on this PostgreSQL server")
    parser.add_argument(
        "--no-calibrate",
        dest="calibrate",
        action="store_false",
        help="store-day bench at the service's default threshold rather than each model's calibrated one",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = args.work
    started = time.perf_counter()
    source, source_data, source_export = source_model()
    target_data = synthetic(work / "target", args.target_ids, args.cameras, seed=1)
    results: dict = {"target": f"make-synthetic seed 1, {args.target_ids} people, {args.cameras} cameras"}
    results["source_own"] = evaluate(source, source_data, work / "eval_source_own")
    results["direct"] = evaluate(source, target_data, work / "eval_direct")
    adapted, history, seconds = adapted_checkpoint(
        source, target_data / "bounding_box_train", work / "adapt_run", args.overrides, not args.fresh
    )
    results["adapted"] = evaluate(adapted, target_data, work / "eval_adapted")
    results["history"], results["adapt_seconds"] = history, seconds
    results["ratio"] = {
        "rank1": results["adapted"]["rank1"] / results["direct"]["rank1"],
        "mAP": results["adapted"]["mAP"] / results["direct"]["mAP"],
    }
    print_pair(results)
    if args.store_day:
        crops = write_store_days(work / "store_crops", days=[1, 2])
        store_adapted, store_history, store_seconds = adapted_checkpoint(
            source, crops, work / "adapt_store_run", args.overrides, not args.fresh
        )
        adapted_export = export(store_adapted, work / "adapted_export")
        day: dict = {"history": store_history, "adapt_seconds": store_seconds}
        sample = write_labelled_day(work / "calibration_day", seed=3, first_person_id=30_000, people=48)
        for label, model_dir in (("source", source_export), ("adapted", adapted_export)):
            calibration = None
            if args.calibrate:
                calibration = calibrated_threshold(model_dir, sample, work / f"calibration_{label}")
            day[f"{label}_calibration"] = calibration
            threshold = calibration["threshold"] if calibration else None
            out = work / f"store_day_{label}.json"
            day[label] = store_day_rows(
                store_day(model_dir, out, args.store_day_modes, args.postgres, threshold)
            )
        results["store_day"] = day
        print_pair(results)
        print_store_day(results["store_day"])
    results["seconds"] = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {args.out} ({results['seconds'] / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
