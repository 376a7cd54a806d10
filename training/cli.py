"""``reid-train``: train a recipe, evaluate or export a checkpoint, or write a synthetic dataset.

Expected failures print one ``reid-train: error:`` line and exit 1; heavy imports wait for a subcommand.
"""

from __future__ import annotations

import argparse
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
    parser.set_defaults(handler=_run_export)


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
    """The ``reid-train`` argument parser with its four subcommands."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Training toolkit for RGA person re-identification (Zhang et al., CVPR 2020)."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_train, _add_evaluate, _add_export, _add_make_synthetic):
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
        "config": config,
    }
    path = model.export_model(net, args.out, provenance)
    print(f"exported to {path}")
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
