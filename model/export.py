"""Export a trained network: TorchScript, ONNX (and int8 ONNX), and ``model.json`` with their checksums."""

from __future__ import annotations

import json
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from model.export_format import (
    INT8_ONNX_FILE,
    JIT_DEPRECATION,
    METADATA_FILE,
    ONNX_FILE,
    TORCHSCRIPT_FILE,
    network_metadata,
    sha256_of,
)
from model.files import atomic_write_text
from model.network import EmbeddingNet, ReIDNet
from model.quantize import CALIBRATION_IMAGES, quantize_onnx


def _export_onnx(wrapper: EmbeddingNet, example: torch.Tensor, path: Path) -> None:
    batch = torch.export.Dim("batch", min=1, max=4096)
    torch.onnx.export(
        wrapper,
        (example,),
        str(path),
        input_names=["images"],
        output_names=["embeddings"],
        dynamic_shapes={"x": {0: batch}},
        external_data=False,
        dynamo=True,
        verbose=False,
    )


def export_model(
    net: ReIDNet,
    out_dir: str | Path,
    provenance: dict[str, Any] | None = None,
    int8_calibration: str | Path | None = None,
    calibration_images: int = CALIBRATION_IMAGES,
) -> Path:
    """Write ``model.ts``, ``model.onnx`` and ``model.json`` (architecture, preprocessing, checksums).

    With ``int8_calibration`` (a folder of person crops) also ``model.int8.onnx``, statically quantised
    on ``calibration_images`` of them (``model.quantize``).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    wrapper = EmbeddingNet(net).cpu().float().eval()
    height, width = net.input_size
    example = torch.randn(2, 3, height, width)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", JIT_DEPRECATION, FutureWarning)
        traced = torch.jit.trace(wrapper, example)
    traced.save(str(out_dir / TORCHSCRIPT_FILE))
    _export_onnx(wrapper, example, out_dir / ONNX_FILE)
    metadata = {
        **network_metadata(net),
        "files": {name: sha256_of(out_dir / name) for name in (TORCHSCRIPT_FILE, ONNX_FILE)},
        "created_at": datetime.now(UTC).isoformat(),
        "torch_version": torch.__version__,
        "provenance": provenance or {},
    }
    if int8_calibration is not None:
        metadata = quantize_onnx(metadata, out_dir, int8_calibration, calibration_images)
    else:
        (out_dir / INT8_ONNX_FILE).unlink(missing_ok=True)  # an earlier export's, no longer this network's
    atomic_write_text(out_dir / METADATA_FILE, json.dumps(metadata, indent=2))
    return out_dir
