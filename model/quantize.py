"""Static int8 quantisation of an export's ONNX model, for ONNX Runtime on CPUs without a GPU.

The ResNet trunk's convolutions (and their residual adds) run in int8: weights per output channel,
activations per tensor with ranges calibrated on a few hundred person crops (the 99.99th percentile of
each tensor's magnitude, so a rare outlier does not stretch a whole range). The RGA modules and the
head (pooling, BN-neck, L2 normalisation) stay in float32: their relation maps sum thousands of
products of activations, and quantising them, or even their input projections, cost most of the
fidelity (see README, "int8 on the CPU"). Writes ``model.int8.onnx`` and records it in ``model.json``
with its checksum, how it was calibrated, and how close its embeddings came to the float model's.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np

from model.export_format import INT8_ONNX_FILE, METADATA_FILE, ONNX_FILE, ExportError, sha256_of
from model.files import atomic_write_text
from model.preprocess import preprocess

CALIBRATION_IMAGES = 300
MIN_CALIBRATION_IMAGES = 16
CHECK_IMAGES = 64
CALIBRATION_BATCH = 10
CALIBRATION_PERCENTILE = 99.99
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp"})
HIERARCHY = "pkg.torch.onnx.class_hierarchy"
SCOPES = "pkg.torch.onnx.name_scopes"
RGA_CLASS = "model.rga.RGAModule"
BACKBONE_CLASS = "model.network.RGABackbone"
STAGES = ("layer1", "layer2", "layer3", "layer4")
PARTS = ("rga", "head", "stem", *STAGES)
KEEP_FLOAT = ("rga", "head")


def image_files(folder: str | Path) -> list[Path]:
    """Every image under ``folder`` (any depth), in a stable order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ExportError(f"calibration folder {folder} does not exist or is not a folder")
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def split_crops(files: Sequence[Path], count: int) -> tuple[list[Path], list[Path]]:
    """``count`` crops spread evenly over ``files`` for calibration, and up to ``CHECK_IMAGES`` others."""
    if len(files) < MIN_CALIBRATION_IMAGES:
        raise ExportError(
            f"calibration needs at least {MIN_CALIBRATION_IMAGES} person crops, found {len(files)} images"
        )
    chosen = sorted(set(np.linspace(0, len(files) - 1, min(count, len(files))).round().astype(int)))
    rest = [f for i, f in enumerate(files) if i not in set(chosen)]
    picked = np.linspace(0, len(rest) - 1, min(CHECK_IMAGES, len(rest))).round().astype(int) if rest else []
    return [files[i] for i in chosen], [rest[i] for i in sorted(set(picked))]


def _property(node, key: str) -> str:
    return next((p.value for p in node.metadata_props if p.key == key), "")


def _part(node) -> str:
    hierarchy = _property(node, HIERARCHY)
    if RGA_CLASS in hierarchy:
        return "rga"
    if BACKBONE_CLASS not in hierarchy:
        return "head"
    scopes = _property(node, SCOPES)
    return next((stage for stage in STAGES if f"'backbone.{stage}" in scopes), "stem")


def node_parts(onnx_path: Path, attention: bool) -> dict[str, list[str]]:
    """The graph's node names by the part of the network they compute (``PARTS``).

    ``rga``: the RGA modules; ``head``: after the trunk (pooling, BN-neck, normalisation); ``stem`` and
    ``layer1``..``layer4``: the ResNet trunk. Found by the module each node came from, which the
    exporter records on every node.
    """
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    if not any(_property(node, HIERARCHY) for node in graph.node):
        raise ExportError(f"{onnx_path}: its nodes do not say which module they came from; export it again")
    parts: dict[str, list[str]] = {part: [] for part in PARTS}
    for node in graph.node:
        parts[_part(node)].append(node.name)
    if attention and not parts["rga"]:
        raise ExportError(f"{onnx_path}: no RGA module found in the graph; export it again")
    return parts


class CropReader:
    """Calibration batches of preprocessed crops, read one batch at a time (ONNX Runtime's reader API)."""

    def __init__(self, files: Sequence[Path], input_size: tuple[int, int], batch: int = CALIBRATION_BATCH):
        self.batches = [list(files[i : i + batch]) for i in range(0, len(files), batch)]
        self.input_size = input_size
        self.set_range(0, len(self.batches))

    def __len__(self) -> int:
        return len(self.batches)

    def set_range(self, start_index: int, end_index: int) -> None:
        self._next, self._end = start_index, end_index

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._next >= self._end:
            return None
        files = self.batches[self._next]
        self._next += 1
        return {"images": preprocess(files, self.input_size).numpy()}


@contextmanager
def _quiet_quantizer():
    """ONNX Runtime's quantiser logs advice on the root logger and prints histogram progress."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with open(os.devnull, "w") as sink, redirect_stdout(sink):
            yield
    finally:
        root.setLevel(level)


def _session(path: Path):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 2
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def agreement(float_path: Path, int8_path: Path, files: Sequence[Path], input_size: tuple[int, int]) -> dict:
    """Cosine similarity between the int8 and the float model's embeddings of the same crops."""
    reader = CropReader(files, input_size, batch=32)
    exact, quantised = _session(float_path), _session(int8_path)
    cosines = []
    while (inputs := reader.get_next()) is not None:
        a, b = exact.run(None, inputs)[0], quantised.run(None, inputs)[0]
        cosines.append((a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1))
    values = np.concatenate(cosines)
    mean, low = float(values.mean()), float(values.min())
    return {"images": int(values.size), "mean_cosine": mean, "min_cosine": low}


def quantize_onnx(
    metadata: dict[str, Any],
    model_dir: Path,
    calibration: str | Path,
    count: int = CALIBRATION_IMAGES,
    percentile: float = CALIBRATION_PERCENTILE,
    keep_float: Sequence[str] = KEEP_FLOAT,
) -> dict[str, Any]:
    """Write ``model.int8.onnx`` beside ``model.onnx``; returns ``metadata`` with the file and its record.

    ``keep_float``: the parts of the network (``PARTS``) left in float32; ``percentile`` 100 calibrates
    on each tensor's full range (min-max). ``model.json`` is the caller's to write (``export_model``, or
    ``quantize_export`` for an export already made).
    """
    import onnxruntime
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    if count < MIN_CALIBRATION_IMAGES:
        raise ExportError(f"calibrate on at least {MIN_CALIBRATION_IMAGES} crops, not {count}")
    source, target = model_dir / ONNX_FILE, model_dir / INT8_ONNX_FILE
    input_size = tuple(metadata["input_size"])
    calibrate, check = split_crops(image_files(calibration), count)
    unknown = set(keep_float) - set(PARTS)
    if unknown:
        raise ExportError(f"unknown parts {sorted(unknown)} to keep in float; choose from {', '.join(PARTS)}")
    parts = node_parts(source, metadata["architecture"].get("attention", "none") != "none")
    kept = {part: parts[part] for part in keep_float}
    method = CalibrationMethod.MinMax if percentile >= 100 else CalibrationMethod.Percentile
    staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")

    def quantize(method: CalibrationMethod) -> None:
        with _quiet_quantizer():
            quantize_static(
                str(source),
                str(staging),
                CropReader(calibrate, input_size),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=method,
                nodes_to_exclude=[name for names in kept.values() for name in names],
                extra_options={"CalibPercentile": percentile, "CalibStridedMinMax": 1},
            )

    try:
        try:
            quantize(method)
        except ValueError as exc:  # a tensor whose values are all (nearly) one number has no histogram
            if method != CalibrationMethod.Percentile or "bins" not in str(exc):
                raise
            method = CalibrationMethod.MinMax
            quantize(method)
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)
    fidelity = agreement(source, target, check or calibrate, input_size)
    record = {
        "file": INT8_ONNX_FILE,
        "format": "ONNX Runtime static quantisation, QDQ",
        "weights": "int8, per output channel",
        "activations": "uint8, per tensor",
        "float32": list(keep_float),
        "float_nodes": {part: len(names) for part, names in kept.items()},
        "calibration": {
            "folder": str(Path(calibration).resolve()),
            "images": len(calibrate),
            "method": "minmax" if method == CalibrationMethod.MinMax else "percentile",
            "percentile": min(percentile, 100.0),
        },
        "check": {**fidelity, "crops": "held out from calibration" if check else "the calibration crops"},
        "onnxruntime_version": onnxruntime.__version__,
    }
    return {**metadata, "files": {**metadata["files"], INT8_ONNX_FILE: sha256_of(target)}, "int8": record}


def quantize_export(
    model_dir: str | Path,
    calibration: str | Path,
    count: int = CALIBRATION_IMAGES,
    percentile: float = CALIBRATION_PERCENTILE,
    keep_float: Sequence[str] = KEEP_FLOAT,
) -> dict[str, Any]:
    """Add an int8 model to an existing export (its ``model.onnx`` checked first); returns the record."""
    from model.embedder import read_metadata, verify_file

    model_dir = Path(model_dir)
    metadata = read_metadata(model_dir)
    verify_file(model_dir, ONNX_FILE, metadata)
    metadata = quantize_onnx(metadata, model_dir, calibration, count, percentile, keep_float)
    atomic_write_text(model_dir / METADATA_FILE, json.dumps(metadata, indent=2))
    return metadata["int8"]
