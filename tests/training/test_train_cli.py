"""`reid-train` CLI: help, make-synthetic, clean errors, train -> evaluate -> export, torchrun on CPU."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from training.cli import build_parser, main
from training.datasets import build_dataset

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "training" / "configs" / "synthetic.yaml"
TINY = ["--set", "sampler.batch_size=16", "--set", "optim.warmup_epochs=1", "--set", "eval.num_rank_lists=2"]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "synthetic"
    args = ["make-synthetic", "--out", str(out), "--ids", "16", "--cameras", "2", "--images-per-camera", "4"]
    assert main([*args, "--height", "64", "--width", "32", "--seed", "3"]) == 0
    return out


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("train", "evaluate", "export", "adapt", "make-synthetic"):
        assert command in out


def test_every_option_is_explained() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(subparsers.choices) == {"train", "evaluate", "export", "adapt", "make-synthetic"}
    for name, sub in subparsers.choices.items():
        assert sub.description, name
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings} has no help"


def test_make_synthetic_writes_a_market_layout(data_root: Path) -> None:
    dataset = build_dataset("market1501", data_root)
    assert dataset.num_train_ids == 8
    assert len(dataset.train) == 8 * 2 * 4 and dataset.query and dataset.gallery


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--set", "train.nope=1"], "unknown key 'nope' in train"),
        (["--set", "nosection.x=1"], "unknown key 'nosection'"),
        (["--set", "optim.lr=-1"], "optim.lr"),
        (["--set", "model.backbone=vgg"], "model.backbone"),
        (["--set", "novalue"], "key=value"),
    ],
)
def test_bad_config_is_a_clean_error(
    extra: list[str], message: str, data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["train", "--config", str(CONFIG), "--data-root", str(data_root), "--output", str(tmp_path), *extra]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_missing_files_are_clean_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing"
    train = ["train", "--config", str(CONFIG), "--output", str(tmp_path / "out")]
    assert main([*train, "--data-root", str(missing)]) == 1
    assert "data root" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([*train, "--data-root", str(empty)]) == 1
    assert "not a Market-1501 folder" in capsys.readouterr().err
    assert (
        main(["train", "--config", str(missing), "--data-root", str(empty), "--output", str(tmp_path)]) == 1
    )
    assert "cannot read config" in capsys.readouterr().err
    assert main(["export", "--checkpoint", str(missing / "final.pt"), "--out", str(tmp_path / "export")]) == 1
    assert "does not exist" in capsys.readouterr().err
    evaluate = ["evaluate", "--checkpoint", str(missing / "final.pt"), "--data-root", str(empty)]
    assert main([*evaluate, "--dataset", "market1501"]) == 1


def test_entry_point_exits_non_zero_without_traceback(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "training.cli", "train", "--config", str(CONFIG)]
    command += ["--data-root", str(tmp_path / "nowhere"), "--output", str(tmp_path / "out")]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "reid-train: error: data root" in result.stderr and "Traceback" not in result.stderr


def test_train_evaluate_export(data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    args = [
        "train",
        "--config",
        str(CONFIG),
        "--data-root",
        str(data_root),
        "--output",
        str(run),
        "--device",
        "cpu",
    ]
    assert main([*args, *TINY, "--set", "train.epochs=1", "--no-progress"]) == 0
    for name in ("final.pt", "config.yaml", "train.log", "eval/metrics.json", "eval/cmc.png"):
        assert (run / name).is_file(), name
    assert list((run / "tensorboard").iterdir())
    checkpoint = torch.load(run / "final.pt", weights_only=True)
    assert checkpoint["metrics"]["results"]["bn"]["mAP"] > 0
    assert checkpoint["config"]["train"]["epochs"] == 1 and checkpoint["dataset"]["name"] == "market1501"

    report = tmp_path / "report"
    evaluate = ["evaluate", "--checkpoint", str(run / "final.pt"), "--data-root", str(data_root)]
    assert main([*evaluate, "--flip", "--output", str(report), "--batch-size", "32", "--device", "cpu"]) == 0
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["flip"] is True and "bn" in metrics["results"]

    exported = tmp_path / "export"
    assert main(["export", "--checkpoint", str(run / "final.pt"), "--out", str(exported)]) == 0
    metadata = json.loads((exported / "model.json").read_text())
    assert metadata["provenance"]["dataset"]["name"] == "market1501"
    assert metadata["provenance"]["metrics"]["results"]["bn"]["mAP"] > 0
    assert metadata["provenance"]["epoch"] == 1
    capsys.readouterr()


def test_torchrun_two_cpu_processes(data_root: Path, tmp_path: Path) -> None:
    run = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    command += ["-m", "training.cli", "train", "--config", str(CONFIG), "--data-root", str(data_root)]
    command += ["--output", str(run), "--device", "cpu", "--no-progress", *TINY]
    command += ["--set", "train.epochs=2", "--set", "train.evaluate_at_end=false"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    log = (run / "train.log").read_text()
    assert "2 process(es)" in log and log.count("epoch 2:") == 1
    checkpoint = torch.load(run / "final.pt", weights_only=True)
    assert checkpoint["epoch"] == 2 and checkpoint["sampler"]["world_size"] == 2


def test_overrides_are_yaml_values_and_the_resolved_config_round_trips(tmp_path: Path) -> None:
    from training.config import load_config, save_config

    overrides = ["train.epochs=7", "optim.milestones=[3, 5]", "model.pretrained=null", "optim={lr: 1e-3}"]
    config = load_config(CONFIG, [*overrides, "data.kwargs.verify=false", "model.input_size=[128, 64]"])
    assert config.train.epochs == 7 and config.optim.milestones == [3, 5] and config.model.pretrained is None
    assert config.optim.lr == 1e-3 and config.optim.warmup_epochs == 2, "a mapping merges into its section"
    assert config.data.kwargs == {"verify": False} and config.model.input_size == (128, 64)
    assert load_config(save_config(config, tmp_path / "config.yaml")) == config
