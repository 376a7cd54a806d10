"""Export to TorchScript and ONNX: same embeddings as eager, metadata, checksums."""

import io
import json

import numpy as np
import pytest
import torch
from helpers import randomize_batchnorm
from PIL import Image

from model import Embedder, ExportError, build_model, export_model, load_embedder, preprocess

SMALL = (64, 32)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    net = randomize_batchnorm(build_model(backbone="resnet18", attention="rgasc", input_size=SMALL)).eval()
    out = export_model(net, tmp_path_factory.mktemp("export"), {"dataset": "synthetic", "rank1": 0.9})
    return net, out


@pytest.fixture
def crops():
    rng = np.random.default_rng(1)
    return [rng.integers(0, 256, size=(80 + 10 * i, 30 + 5 * i, 3), dtype=np.uint8) for i in range(5)]


def test_metadata_describes_the_model(exported):
    _, out = exported
    metadata = json.loads((out / "model.json").read_text())
    assert metadata["architecture"]["backbone"] == "resnet18"
    assert metadata["architecture"]["attention"] == "rgasc"
    assert metadata["input_size"] == [64, 32] and metadata["feature_dim"] == 512
    assert metadata["mean"] == [0.485, 0.456, 0.406] and metadata["std"] == [0.229, 0.224, 0.225]
    assert metadata["provenance"] == {"dataset": "synthetic", "rank1": 0.9}
    assert set(metadata["files"]) == {"model.ts", "model.onnx"}
    assert all(len(digest) == 64 for digest in metadata["files"].values())


@pytest.mark.parametrize("runtime", ["torchscript", "onnx"])
def test_exported_runtimes_give_the_eager_embeddings(exported, crops, runtime):
    net, out = exported
    embedder = load_embedder(out, device="cpu", runtime=runtime)
    embeddings = embedder.embed(crops)
    with torch.no_grad():
        expected = net.embed(preprocess(crops, SMALL)).numpy()
    assert embeddings.dtype == np.float32 and embeddings.shape == (5, 512)
    assert np.abs(embeddings - expected).max() < 1e-4
    cosine = (embeddings * expected).sum(axis=1)
    assert cosine.min() > 0.9999
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)


def test_auto_runtime_on_cpu_embeds_encoded_images(exported, crops):
    _, out = exported
    embedder = load_embedder(out)
    encoded = []
    for crop in crops[:2]:
        buffer = io.BytesIO()
        Image.fromarray(crop).save(buffer, format="PNG")
        encoded.append(buffer.getvalue())
    assert np.allclose(embedder.embed(encoded), embedder.embed(crops[:2]), atol=1e-6)
    assert embedder.dim == 512 and embedder.input_size == (64, 32)


def test_batch_size_does_not_change_an_embedding(exported, crops):
    _, out = exported
    embedder = load_embedder(out, runtime="onnx")
    together = embedder.embed(crops)
    alone = np.concatenate([embedder.embed([crop]) for crop in crops])
    assert np.abs(together - alone).max() < 1e-5


@pytest.mark.parametrize("name", ["model.ts", "model.onnx"])
def test_a_tampered_file_is_refused(exported, tmp_path, name):
    _, out = exported
    copy = tmp_path / "copy"
    copy.mkdir()
    for file in out.iterdir():
        (copy / file.name).write_bytes(file.read_bytes())
    data = bytearray((copy / name).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / name).write_bytes(bytes(data))
    runtime = "torchscript" if name == "model.ts" else "onnx"
    with pytest.raises(ExportError, match=f"{name}: checksum mismatch"):
        load_embedder(copy, runtime=runtime)


def test_a_directory_without_export_is_refused(tmp_path):
    with pytest.raises(ExportError, match="no exported model here"):
        load_embedder(tmp_path)


def test_unknown_runtime_is_refused(exported):
    _, out = exported
    with pytest.raises(ExportError, match="unknown runtime 'tensorrt'"):
        load_embedder(out, runtime="tensorrt")


def test_an_in_memory_network_embeds_like_the_export(exported, crops):
    net, out = exported

    eager = Embedder.from_network(net, device="cpu", version="untrained")
    assert eager.version == "untrained" and eager.dim == 512
    assert np.abs(eager.embed(crops) - load_embedder(out, runtime="onnx").embed(crops)).max() < 1e-4
