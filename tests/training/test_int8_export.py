"""`reid-train export --int8`: a statically quantised ONNX model beside the float one, checked like the
others, and faithful to the float model on a small trained network (cosine, rank-1, mAP)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from model import ExportError, build_model, checkpoint_payload, load_embedder
from model.quantize import quantize_export
from service.app import create_app
from service.embedding.model import load_model
from service.settings import Settings
from service.storage.db import migrate
from tests.service import conftest as service_fixtures
from training.cli import main
from training.datasets import build_dataset
from training.datasets.synthetic import make_synthetic
from training.evaluation.fidelity import compare_runtimes

model_dir = service_fixtures.model_dir  # the service tests' quickly trained ResNet-18 RGA-SC, cached

SMALL = (64, 32)


@pytest.fixture(scope="module")
def crops(tmp_path_factory) -> Path:
    root = make_synthetic(tmp_path_factory.mktemp("int8") / "synthetic", ids=8, cameras=2, image_size=SMALL)
    return root / "bounding_box_train"


@pytest.fixture(scope="module")
def exported(tmp_path_factory, crops) -> Path:
    """A small network exported with ``--int8``, calibrated on 24 crops."""
    torch.manual_seed(0)
    net = build_model("resnet18", "rgasc", SMALL).eval()
    folder = tmp_path_factory.mktemp("int8-export")
    torch.save(checkpoint_payload(net), folder / "net.pt")
    out = folder / "export"
    args = ["export", "--checkpoint", str(folder / "net.pt"), "--out", str(out)]
    assert main([*args, "--int8", "--calibration", str(crops), "--calibration-images", "24"]) == 0
    return out


def test_the_int8_model_is_recorded_with_its_checksum_and_calibration(exported, crops):
    metadata = json.loads((exported / "model.json").read_text())
    assert set(metadata["files"]) == {"model.ts", "model.onnx", "model.int8.onnx"}
    int8 = metadata["int8"]
    assert int8["calibration"]["images"] == 24 and int8["calibration"]["folder"] == str(crops.resolve())
    assert int8["float32"] == ["rga", "head"] and int8["float_nodes"]["rga"] > 0
    assert int8["check"]["crops"] == "held out from calibration" and int8["check"]["mean_cosine"] > 0.9


def test_the_int8_runtime_embeds_as_its_own_model_version(exported, crops):
    float_model = load_embedder(exported, device="cpu", runtime="onnx")
    int8_model = load_embedder(exported, device="cpu", runtime="onnx-int8")
    assert int8_model.runtime == "onnx-int8" and int8_model.version == f"{float_model.version}-int8"
    images = sorted(crops.glob("*.jpg"))[:8]
    embeddings = int8_model.embed(images)
    assert embeddings.shape == (8, 512) and embeddings.dtype == np.float32
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    assert (embeddings * float_model.embed(images)).sum(axis=1).min() > 0.9


def test_a_tampered_int8_model_is_refused(exported, tmp_path):
    copy = shutil.copytree(exported, tmp_path / "copy")
    with (copy / "model.int8.onnx").open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ExportError, match="checksum mismatch"):
        load_embedder(copy, device="cpu", runtime="onnx-int8")
    load_embedder(copy, device="cpu", runtime="onnx")  # the float model is still fine


def test_an_export_without_an_int8_model_says_so(exported, tmp_path):
    copy = without_int8(exported, tmp_path / "copy")
    with pytest.raises(ExportError, match="no int8 model"):
        load_embedder(copy, device="cpu", runtime="onnx-int8")


def without_int8(exported: Path, folder: Path) -> Path:
    """A copy of the export whose model.json no longer lists an int8 model."""
    copy = shutil.copytree(exported, folder)
    metadata = json.loads((copy / "model.json").read_text())
    del metadata["files"]["model.int8.onnx"], metadata["int8"]
    (copy / "model.json").write_text(json.dumps(metadata))
    return copy


def test_the_service_embeds_with_the_int8_model_when_reid_runtime_says_so(exported, crops, tmp_path):
    url = f"sqlite:///{tmp_path / 'reid.db'}"
    migrate(url)
    settings = Settings(
        _env_file=None,
        database_url=url,
        model_dir=exported,
        index_dir=tmp_path / "indexes",
        admin_key=service_fixtures.ADMIN_KEY,
        device="cpu",
        runtime="onnx-int8",
        relink_interval_s=0,
    )
    loaded = load_model(settings)
    assert loaded.trained and loaded.embedder.runtime == "onnx-int8"
    image = sorted(crops.glob("*.jpg"))[0].read_bytes()
    with TestClient(create_app(settings, loaded)) as client:
        assert client.get("/readyz").json()["model"]["runtime"] == "onnx-int8"
        answer = client.post(
            "/embed", files=[("images", ("a.jpg", image, "image/jpeg"))], headers=service_fixtures.ADMIN
        )
    assert answer.status_code == 200 and answer.json()["model"].endswith("-int8")
    expected = load_embedder(exported, device="cpu", runtime="onnx-int8").embed([image])
    assert np.allclose(answer.json()["embeddings"], expected, atol=1e-5)


def test_the_service_refuses_to_start_on_an_export_without_the_int8_model_it_was_told_to_use(
    exported, tmp_path
):
    copy = without_int8(exported, tmp_path / "copy")
    settings = Settings(_env_file=None, model_dir=copy, runtime="onnx-int8")
    with pytest.raises(ExportError, match="no int8 model"):
        load_model(settings)  # not the untrained network it falls back to when there is no export at all


def test_int8_flags_are_checked(exported, crops, tmp_path, capsys):
    export = ["export", "--checkpoint", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "out")]
    assert main([*export, "--int8"]) == 1
    assert "--int8 needs --calibration" in capsys.readouterr().err
    assert main([*export, "--calibration", str(crops)]) == 1
    assert "--calibration is for --int8" in capsys.readouterr().err
    with pytest.raises(ExportError, match="at least 16 person crops"):
        quantize_export(shutil.copytree(exported, tmp_path / "copy"), tmp_path)


@pytest.mark.slow
def test_int8_is_faithful_to_the_float_model_of_a_trained_network(model_dir, tmp_path):
    """The goals of the int8 model, on a small trained network and 400 synthetic queries."""
    data = make_synthetic(tmp_path / "synthetic", ids=200, cameras=4, seed=3, image_size=SMALL)
    copy = shutil.copytree(model_dir, tmp_path / "export")
    quantize_export(copy, data / "bounding_box_train", count=100)
    result = compare_runtimes(copy, build_dataset("market1501", data))
    print(json.dumps(result, indent=2))
    assert result["mean_cosine"] >= 0.99
    assert abs(result["delta_rank1"]) <= 1.0 and abs(result["delta_mAP"]) <= 1.0
