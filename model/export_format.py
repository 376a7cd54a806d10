"""What an export directory holds: file names, format tag, checksums and the metadata describing a network."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from model.network import ReIDNet
from model.preprocess import IMAGENET_MEAN, IMAGENET_STD

EXPORT_FORMAT = "rga-reid-export/1"
METADATA_FILE = "model.json"
TORCHSCRIPT_FILE = "model.ts"
ONNX_FILE = "model.onnx"
INT8_ONNX_FILE = "model.int8.onnx"
JIT_DEPRECATION = r".*torch\.jit.*deprecated.*"


class ExportError(ValueError):
    """An export directory that is missing, incomplete or whose files fail their checksum."""


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def network_metadata(net: ReIDNet) -> dict[str, Any]:
    """Format tag, architecture, input and output of ``net``: what every ``model.json`` holds."""
    return {
        "format": EXPORT_FORMAT,
        "architecture": net.config.to_dict(),
        "input_size": list(net.input_size),
        "input_layout": "NCHW RGB float32, (pixel / 255 - mean) / std",
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
        "feature_dim": net.feature_dim,
        "output": "BN-neck feature, L2-normalised",
    }
