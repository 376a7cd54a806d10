"""``reid-train``: train a recipe, evaluate or export a checkpoint, or write a synthetic dataset.

Expected failures print one ``reid-train: error:`` line and exit 1; heavy imports wait for a subcommand.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from training import defaults

PROG = "reid-train"
DEVICES = ("auto", "cpu", "cuda")


def _add_train(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a recipe (single process or under torchrun)",
        description=(
            "Train RGA re-id on a dataset following a YAML recipe. Launch with torchrun for several GPUs "
            "or nodes (e.g. torchrun --nproc_per_node=4 -m training.cli train ...); only rank 0 writes."
        ),
    )
    parser.add_argument(
        "--config", required=True, type=Path, help="YAML recipe, e.g. training/configs/*.yaml"
    )
    parser.add_argument("--data-root", required=True, type=Path, help="folder holding the dataset's files")
    parser.add_argument(
        "--output", required=True, type=Path, help="run folder: checkpoints, config.yaml, train.log, eval"
    )
    parser.add_argument("--resume", type=Path, help="training checkpoint to continue from (epoch_NNNN.pt)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe field, dotted for nested keys, value parsed as YAML "
        "(e.g. --set train.epochs=10 --set model.pretrained=null); repeatable",
    )
    parser.add_argument("--device", choices=DEVICES, default="auto", help="auto picks CUDA when available")
    parser.add_argument("--no-progress", action="store_true", help="hide the per-epoch progress bar")
    parser.set_defaults(handler=_run_train)


def _add_evaluate(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate a checkpoint on a dataset's query/gallery split",
        description="Rank the gallery for every query; report CMC and mAP of pooled and BN-neck features.",
    )
    parser.add_argument("--checkpoint", required=True, type=Path, help="training or paper checkpoint to load")
    parser.add_argument(
        "--dataset",
        help="dataset name (cuhk03-labeled, cuhk03-detected, market1501, folder); "
        "default: the one recorded in the checkpoint",
    )
    parser.add_argument("--data-root", required=True, type=Path, help="folder holding the dataset's files")
    parser.add_argument("--output", type=Path, help="report folder (default: CHECKPOINT_DIR/eval_DATASET)")
    parser.add_argument("--rerank", action="store_true", help="apply k-reciprocal re-ranking")
    parser.add_argument("--flip", action="store_true", help="average features of each image and its mirror")
    parser.add_argument(
        "--metric", choices=("cosine", "euclidean"), default=defaults.METRIC, help="distance metric"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=defaults.FEATURE_BATCH_SIZE,
        help="images per feature-extraction batch",
    )
    parser.add_argument("--device", choices=DEVICES, default="auto", help="auto picks CUDA when available")
    parser.set_defaults(handler=_run_evaluate)


def _add_export(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a checkpoint to TorchScript + ONNX for the service",
        description="Export the network of a checkpoint, with its dataset, epoch and metrics as provenance.",
    )
    parser.add_argument("--checkpoint", required=True, type=Path, help="training checkpoint to export")
    parser.add_argument("--out", required=True, type=Path, help="export folder")
    parser.add_argument(
        "--int8",
        action="store_true",
        help="also write model.int8.onnx, quantised for ONNX Runtime on the CPU (REID_RUNTIME=onnx-int8)",
    )
    parser.add_argument(
        "--calibration", type=Path, help="with --int8: folder of person crops (any depth) to calibrate on"
    )
    parser.add_argument(
        "--calibration-images",
        type=int,
        help="with --int8: crops to calibrate on, spread over the folder (default 300)",
    )
    parser.set_defaults(handler=_run_export)


def _add_adapt(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "adapt",
        help="adapt a checkpoint to unlabelled crops (clustering + contrastive memory)",
        description=(
            "Fine-tune a trained checkpoint on a folder of unlabelled crops (e.g. from reid-admin "
            "export-crops): per epoch, features, k-reciprocal Jaccard distances, DBSCAN pseudo-identities, "
            "then a cluster contrastive memory (camera-aware proxies when file names give cameras). "
            "Single process."
        ),
    )
    parser.add_argument("--checkpoint", required=True, type=Path, help="the source checkpoint to adapt")
    parser.add_argument(
        "--unlabelled", required=True, type=Path, help="folder of crops (sub-folders too); no labels are read"
    )
    parser.add_argument("--output", required=True, type=Path, help="run folder: checkpoints, train.log, eval")
    parser.add_argument(
        "--config", type=Path, default=None, help="adaptation recipe (training/configs/adapt_*.yaml)"
    )
    parser.add_argument("--resume", type=Path, help="adaptation checkpoint to continue from (epoch_NNNN.pt)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe field, dotted (e.g. --set train.epochs=5 --set cluster.eps=0.5); repeatable",
    )
    parser.add_argument(
        "--eval-dataset", help="after adapting, evaluate on this dataset's query/gallery (e.g. market1501)"
    )
    parser.add_argument("--eval-root", type=Path, help="folder of the --eval-dataset")
    parser.add_argument("--device", choices=DEVICES, default="auto", help="auto picks CUDA when available")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.set_defaults(handler=_run_adapt)


def _add_make_synthetic(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "make-synthetic",
        help="write a small synthetic dataset in Market-1501 layout",
        description="Generate synthetic people (half the ids for training, half for query/gallery).",
    )
    parser.add_argument("--out", required=True, type=Path, help="folder to write (must be empty or new)")
    parser.add_argument("--ids", required=True, type=int, help="number of identities (>= 2)")
    parser.add_argument("--cameras", required=True, type=int, help="number of cameras (>= 2)")
    parser.add_argument(
        "--images-per-camera",
        type=int,
        default=defaults.SYNTHETIC_IMAGES_PER_CAMERA,
        help="images per identity and camera",
    )
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (same seed, same images)")
    height, width = defaults.SYNTHETIC_IMAGE_SIZE
    parser.add_argument("--height", type=int, default=height, help="image height in pixels")
    parser.add_argument("--width", type=int, default=width, help="image width in pixels")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset in --out")
    parser.set_defaults(handler=_run_make_synthetic)


def build_parser() -> argparse.ArgumentParser:
    """The ``reid-train`` argument parser with its subcommands."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Training toolkit for RGA person re-identification (Zhang et al., CVPR 2020)."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_train, _add_evaluate, _add_export, _add_adapt, _add_make_synthetic):
        add(subparsers)
    return parser


def _require_dir(path: Path, what: str) -> None:
    if not path.is_dir():
        raise FileNotFoundError(f"{what} {path} does not exist or is not a folder")


def _run_train(args: argparse.Namespace) -> int:
    from training.config import load_config
    from training.trainer import train

    config = load_config(args.config, args.overrides)
    _require_dir(args.data_root, "data root")
    result = train(
        config,
        args.data_root,
        args.output,
        resume=args.resume,
        device=args.device,
        progress=not args.no_progress,
    )
    if result.final_checkpoint is not None:
        print(f"final checkpoint: {result.final_checkpoint}")
    return 0


def _run_evaluate(args: argparse.Namespace) -> int:
    import model
    from model.device import resolve_device
    from training.checkpoint import read_checkpoint_metadata
    from training.datasets import build_dataset
    from training.evaluation.report import evaluate_model

    _require_dir(args.data_root, "data root")
    name = args.dataset
    if name is None:
        name = (read_checkpoint_metadata(args.checkpoint).get("dataset") or {}).get("name")
        if not name:
            raise ValueError(f"{args.checkpoint} records no dataset; pass --dataset")
    device = resolve_device(args.device)
    net = model.load_checkpoint(args.checkpoint).to(device)
    dataset = build_dataset(name, args.data_root)
    output = args.output or args.checkpoint.parent / f"eval_{name}"
    evaluate_model(
        net,
        dataset,
        output,
        device=str(device),
        batch_size=args.batch_size,
        rerank=args.rerank,
        flip=args.flip,
        metric=args.metric,
    )
    print(f"report written to {output}")
    return 0


def _run_export(args: argparse.Namespace) -> int:
    if args.int8 and args.calibration is None:
        raise ValueError("--int8 needs --calibration FOLDER (a few hundred person crops)")
    if args.calibration is not None and not args.int8:
        raise ValueError("--calibration is for --int8")
    import model
    from training.checkpoint import read_checkpoint_metadata

    metadata = read_checkpoint_metadata(args.checkpoint)
    net = model.load_checkpoint(args.checkpoint)
    config = metadata.get("config") or {}
    provenance = {
        "checkpoint": str(args.checkpoint.resolve()),
        "epoch": metadata.get("epoch"),
        "recipe": config.get("name"),
        "dataset": metadata.get("dataset"),
        "metrics": metadata.get("metrics"),
        **_adaptation_provenance(metadata),
        "config": config,
    }
    int8 = {"int8_calibration": args.calibration} if args.int8 else {}
    if args.int8 and args.calibration_images is not None:
        int8["calibration_images"] = args.calibration_images
    path = model.export_model(net, args.out, provenance, **int8)
    print(f"exported to {path}")
    if args.int8:
        check = json.loads((path / "model.json").read_text())["int8"]["check"]
        print(
            f"int8 model: mean cosine {check['mean_cosine']:.4f} (lowest {check['min_cosine']:.4f}) "
            f"to the float model on {check['images']} crops {check['crops']}"
        )
    return 0


def _adaptation_provenance(metadata: dict) -> dict:
    """An adapted checkpoint's source checkpoint and unlabelled set's fingerprint, for model.json."""
    adaptation = metadata.get("adaptation")
    if not adaptation:
        return {}
    unlabelled = adaptation.get("unlabelled") or {}
    return {
        "source_checkpoint": (adaptation.get("source") or {}).get("checkpoint"),
        "unlabelled_fingerprint": unlabelled.get("fingerprint"),
        "adaptation": adaptation,
    }


def _run_adapt(args: argparse.Namespace) -> int:
    from training.adaptation import adapt, load_adapt_config

    if not args.checkpoint.is_file():
        raise FileNotFoundError(f"checkpoint {args.checkpoint} does not exist")
    _require_dir(args.unlabelled, "unlabelled folder")
    evaluate_on = None
    if args.eval_dataset or args.eval_root:
        if not (args.eval_dataset and args.eval_root):
            raise ValueError("--eval-dataset and --eval-root go together")
        _require_dir(args.eval_root, "evaluation data root")
        evaluate_on = (args.eval_dataset, args.eval_root)
    config = load_adapt_config(args.config, args.overrides)
    result = adapt(
        config,
        args.checkpoint,
        args.unlabelled,
        args.output,
        resume=args.resume,
        device=args.device,
        progress=not args.no_progress,
        evaluate_on=evaluate_on,
    )
    print(f"final checkpoint: {result.final_checkpoint}")
    return 0


def _run_make_synthetic(args: argparse.Namespace) -> int:
    from training.datasets.synthetic import make_synthetic

    out = make_synthetic(
        args.out,
        ids=args.ids,
        cameras=args.cameras,
        images_per_camera=args.images_per_camera,
        seed=args.seed,
        image_size=(args.height, args.width),
        overwrite=args.overwrite,
    )
    print(f"synthetic dataset written to {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen subcommand; expected failures exit 1 with one message."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
