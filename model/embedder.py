"""Load an export (checksums verified) or an in-memory network, and embed person crops with it."""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model.device import resolve_device
from model.export_format import (
    EXPORT_FORMAT,
    INT8_ONNX_FILE,
    JIT_DEPRECATION,
    METADATA_FILE,
    ONNX_FILE,
    TORCHSCRIPT_FILE,
    ExportError,
    network_metadata,
    sha256_of,
)
from model.network import EmbeddingNet, ReIDNet
from model.preprocess import ImageSource, preprocess

RUNTIMES = ("torchscript", "onnx", "onnx-int8")
ONNX_RUNTIMES = ("onnx", "onnx-int8")
CPU_PREFERRED_RUNTIME = "onnx"
INT8_VERSION_SUFFIX = "-int8"

log = logging.getLogger(__name__)


def read_metadata(model_dir: str | Path) -> dict[str, Any]:
    """Read and sanity-check ``model.json`` of an export directory."""
    path = Path(model_dir) / METADATA_FILE
    if not path.is_file():
        raise ExportError(f"{path}: no exported model here (run `reid-train export`)")
    try:
        metadata = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ExportError(f"{path}: not valid JSON ({exc})") from exc
    if metadata.get("format") != EXPORT_FORMAT:
        raise ExportError(f"{path}: unknown export format {metadata.get('format')!r}")
    return metadata


def verify_file(model_dir: Path, name: str, metadata: dict[str, Any]) -> Path:
    """Return the path of an exported file after checking it against its recorded SHA-256."""
    path = model_dir / name
    if not path.is_file():
        raise ExportError(f"{path}: file missing from the export")
    expected = metadata["files"].get(name)
    actual = sha256_of(path)
    if expected != actual:
        raise ExportError(f"{path}: checksum mismatch (expected {expected}, got {actual}); refusing to load")
    return path


def open_onnx_session(path: Path, device: torch.device):
    """An ONNX Runtime session on CUDA when asked and available, CPU otherwise."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    providers = ["CUDAExecutionProvider"] if device.type == "cuda" else []
    return onnxruntime.InferenceSession(str(path), options, providers=[*providers, "CPUExecutionProvider"])


def open_torchscript(path: Path, device: torch.device) -> torch.jit.ScriptModule:
    """A frozen float32 TorchScript module on ``device``.

    Float32 on the GPU too: the RGA modules' relation maps lose their precision in float16 and bfloat16
    (see ``model.rga.RGAModule.forward``), and float32 embeds thousands of crops a second on a GPU.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", JIT_DEPRECATION, FutureWarning)
        module = torch.jit.load(str(path), map_location=device).eval()
        return torch.jit.freeze(module)


class Embedder:
    """Turns person crops into L2-normalised float32 embeddings (ONNX Runtime or a torch module)."""

    def __init__(self, metadata: dict[str, Any], device: torch.device, runtime: str, backend: Any) -> None:
        self.metadata = metadata
        self.device = device
        self.runtime = runtime
        self.input_size: tuple[int, int] = tuple(metadata["input_size"])
        self.dim: int = int(metadata["feature_dim"])
        self.version: str = metadata.get("version") or metadata["files"][TORCHSCRIPT_FILE][:12]
        if runtime == "onnx-int8":  # its embeddings are close to the float model's, not the same
            self.version += INT8_VERSION_SUFFIX
        self.dtype = torch.float32
        self._backend = backend

    @classmethod
    def from_network(cls, net: ReIDNet, device: str = "auto", version: str = "untrained") -> Embedder:
        """Embed with an in-memory network, no export needed (eager PyTorch)."""
        torch_device = resolve_device(device)
        module = EmbeddingNet(net).to(torch_device).eval()
        metadata = {**network_metadata(net), "files": {}, "version": version, "provenance": {}}
        return cls(metadata, torch_device, "eager", module)

    def embed_tensor(self, batch: torch.Tensor) -> np.ndarray:
        """Embed an already normalised (N, 3, H, W) batch."""
        if self.runtime in ONNX_RUNTIMES:
            output = self._backend.run(None, {"images": batch.float().cpu().numpy()})[0]
            return np.ascontiguousarray(output, dtype=np.float32)
        with torch.inference_mode():
            inputs = batch.to(self.device, dtype=self.dtype)
            output = torch.nn.functional.normalize(self._backend(inputs).float(), dim=1)
        return output.cpu().numpy()

    def embed(self, images: Sequence[ImageSource]) -> np.ndarray:
        """Decode, preprocess and embed images (bytes, paths or uint8 RGB arrays): (N, D) float32."""
        return self.embed_tensor(preprocess(images, self.input_size))


def load_embedder(model_dir: str | Path, device: str = "auto", runtime: str = "auto") -> Embedder:
    """Load an exported model; ``runtime`` auto picks the fastest float one (bench/model_throughput.py).

    ``onnx-int8`` runs the export's statically quantised model (``reid-train export --int8``) with ONNX
    Runtime on the CPU, whatever the device; its version is the float model's with ``-int8`` appended.
    """
    model_dir = Path(model_dir)
    metadata = read_metadata(model_dir)
    torch_device = resolve_device(device)
    if runtime == "auto":
        runtime = "torchscript" if torch_device.type == "cuda" else CPU_PREFERRED_RUNTIME
    if runtime not in RUNTIMES:
        raise ExportError(f"unknown runtime {runtime!r}; choose auto, {', '.join(RUNTIMES)}")
    if runtime == "onnx-int8":
        if INT8_ONNX_FILE not in metadata["files"]:
            raise ExportError(
                f"{model_dir}: the export has no int8 model (reid-train export --int8 --calibration FOLDER)"
            )
        torch_device = torch.device("cpu")
        backend = open_onnx_session(verify_file(model_dir, INT8_ONNX_FILE, metadata), torch_device)
    elif runtime == "onnx":
        backend = open_onnx_session(verify_file(model_dir, ONNX_FILE, metadata), torch_device)
    else:
        backend = open_torchscript(verify_file(model_dir, TORCHSCRIPT_FILE, metadata), torch_device)
    embedder = Embedder(metadata, torch_device, runtime, backend)
    log.info("loaded %s model %s on %s", runtime, embedder.version, torch_device)
    return embedder
