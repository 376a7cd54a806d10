"""CUHK03 with the 767/700 "new protocol", read from the original release.

Expected under ``root`` (or under ``root/cuhk03``)::

    cuhk03_release/cuhk-03.mat                    MATLAB v7.3 (HDF5): ``labeled`` and ``detected``
    cuhk03_new_protocol_config_labeled.mat        MATLAB v5: filelist, labels, train/query/gallery_idx
    cuhk03_new_protocol_config_detected.mat

On first use the chosen variant's images are extracted once from ``cuhk-03.mat`` to PNG files under
``root/images_<variant>/``, named ``{campair}_{pid:03d}_{view}_{image:02d}.png`` as in the protocol's
``filelist``. A marker file listing the extracted names is written last, so an interrupted extraction (no
marker) or a replaced ``cuhk-03.mat`` (different size) is extracted again; otherwise the PNGs are reused.

Camera ids follow the paper's code: the *view index within the camera pair* parsed from the file name
(1 for images 1-5, 2 for images 6-10), not a global camera id; the protocol's ``camId`` is not used.
Training ids are relabelled ``0..N-1`` in ascending order of the protocol's ``labels``; query and gallery
keep ``labels``. Every image is checked to exist and to pass PIL's cheap ``verify()`` (see ``base``).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import scipy.io
from PIL import Image
from tqdm import tqdm

from model.files import atomic_write, atomic_write_text
from training.datasets.base import (
    DatasetError,
    ImageRecord,
    ReidDataset,
    dataset_from_splits,
)

VARIANTS = ("labeled", "detected")
RELEASE_MAT = Path("cuhk03_release") / "cuhk-03.mat"
MARKER_NAME = ".extracted.json"
IMAGES_PER_PERSON = 10
SPLIT_KEYS = {"train": "train_idx", "query": "query_idx", "gallery": "gallery_idx"}
NAME_PATTERN = re.compile(r"^(\d+)_(\d+)_([12])_(\d+)\.png$")


@dataclass(frozen=True)
class Protocol:
    """A new-protocol config file: image names, their labels and 0-based split indices."""

    path: Path
    names: list[str]
    labels: np.ndarray
    splits: dict[str, np.ndarray]


def protocol_path(root: Path, variant: str) -> Path:
    """Location of the new-protocol config file of ``variant``."""
    return root / f"cuhk03_new_protocol_config_{variant}.mat"


def resolve_root(root: str | os.PathLike[str]) -> Path:
    """Return the folder holding ``cuhk03_release/``: ``root`` itself or ``root/cuhk03``."""
    root = Path(root)
    for candidate in (root, root / "cuhk03"):
        if (candidate / RELEASE_MAT).is_file():
            return candidate
    raise DatasetError(f"{root / RELEASE_MAT}: CUHK03 release file not found")


def image_name(campair: int, pid: int, imgid: int) -> str:
    """File name of image ``imgid`` of person ``pid`` in camera pair ``campair`` (all 0-based)."""
    view = 1 if imgid < IMAGES_PER_PERSON // 2 else 2
    return f"{campair + 1}_{pid + 1:03d}_{view}_{imgid + 1:02d}.png"


def _save_png(image: np.ndarray, path: Path) -> None:
    atomic_write(path, lambda tmp: Image.fromarray(image).save(tmp, format="PNG"))


def _camera_pair_cells(mat: h5py.File, mat_path: Path, variant: str) -> list[np.ndarray]:
    if variant not in mat:
        raise DatasetError(f"{mat_path}: no '{variant}' cell array")
    cells = []
    for ref in np.asarray(mat[variant]).ravel():
        cell = np.asarray(mat[ref]).T
        if cell.ndim != 2 or cell.shape[1] != IMAGES_PER_PERSON:
            raise DatasetError(
                f"{mat_path}: '{variant}' camera pair {len(cells) + 1} has shape {cell.shape}, "
                f"expected (persons, {IMAGES_PER_PERSON})"
            )
        cells.append(cell)
    return cells


def _read_image(mat: h5py.File, ref: h5py.Reference, mat_path: Path, name: str) -> np.ndarray | None:
    if not ref:
        return None
    stored = np.asarray(mat[ref])
    if stored.size == 0 or stored.ndim < 3:
        return None
    image = np.ascontiguousarray(stored.T)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise DatasetError(f"{mat_path}: image {name} has shape {image.shape} and dtype {image.dtype}")
    return image


def extract_images(mat_path: Path, variant: str, out_dir: Path) -> set[str]:
    """Write every image of ``variant`` in ``cuhk-03.mat`` to PNG under ``out_dir``; return the names."""
    out_dir.mkdir(parents=True, exist_ok=True)
    marker = out_dir / MARKER_NAME
    marker.unlink(missing_ok=True)
    names: list[str] = []
    try:
        mat = h5py.File(mat_path, "r")
    except OSError as exc:
        raise DatasetError(f"{mat_path}: cannot read as MATLAB v7.3 (HDF5) file ({exc})") from exc
    with mat:
        cells = _camera_pair_cells(mat, mat_path, variant)
        total = sum(cell.size for cell in cells)
        with tqdm(total=total, desc=f"extracting CUHK03 {variant}", unit="img") as bar:
            for campair, cell in enumerate(cells):
                for (pid, imgid), ref in np.ndenumerate(cell):
                    name = image_name(campair, pid, imgid)
                    image = _read_image(mat, ref, mat_path, name)
                    if image is not None:
                        _save_png(image, out_dir / name)
                        names.append(name)
                    bar.update(1)
    content = {"variant": variant, "source_size": mat_path.stat().st_size, "images": sorted(names)}
    atomic_write_text(marker, json.dumps(content))
    return set(names)


def _cached_names(out_dir: Path, mat_path: Path, variant: str) -> set[str] | None:
    marker = out_dir / MARKER_NAME
    if not marker.is_file():
        return None
    try:
        content = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    if content.get("variant") != variant or content.get("source_size") != mat_path.stat().st_size:
        return None
    return set(content.get("images", []))


def ensure_extracted(root: Path, variant: str) -> tuple[Path, set[str]]:
    """Extract ``variant`` images unless a valid cache exists; return the folder and image names."""
    mat_path = root / RELEASE_MAT
    out_dir = root / f"images_{variant}"
    names = _cached_names(out_dir, mat_path, variant)
    if names is None:
        names = extract_images(mat_path, variant, out_dir)
    return out_dir, names


def _cell_name(cell: object, path: Path) -> str:
    value = cell
    while isinstance(value, np.ndarray):
        if value.size != 1:
            raise DatasetError(f"{path}: filelist entry {value!r} is not a single file name")
        value = value.ravel()[0]
    return str(value)


def _int_vector(value: object, key: str, path: Path) -> np.ndarray:
    array = np.asarray(value).ravel()
    if array.size == 0:
        return array.astype(np.int64)
    if array.dtype.kind not in "iuf" or not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
        raise DatasetError(f"{path}: '{key}' must hold integers")
    return array.astype(np.int64)


def _read_mat_v5(path: Path) -> dict[str, object]:
    if not path.is_file():
        raise DatasetError(f"{path}: CUHK03 protocol file not found")
    try:
        return scipy.io.loadmat(str(path))
    except (NotImplementedError, ValueError, OSError, TypeError, scipy.io.matlab.MatReadError) as exc:
        raise DatasetError(f"{path}: cannot read as MATLAB v5 file ({exc})") from exc


def load_protocol(path: Path) -> Protocol:
    """Read and sanity-check a new-protocol config file (1-based indices become 0-based)."""
    mat = _read_mat_v5(path)
    missing = [key for key in ("filelist", "labels", *SPLIT_KEYS.values()) if key not in mat]
    if missing:
        raise DatasetError(f"{path}: missing field(s) {', '.join(missing)}")
    names = [_cell_name(cell, path) for cell in np.asarray(mat["filelist"], dtype=object).ravel()]
    labels = _int_vector(mat["labels"], "labels", path)
    if len(labels) != len(names):
        raise DatasetError(f"{path}: 'labels' has {len(labels)} entries but 'filelist' has {len(names)}")
    splits = {}
    for split, key in SPLIT_KEYS.items():
        indices = _int_vector(mat[key], key, path)
        bad = indices[(indices < 1) | (indices > len(names))]
        if bad.size:
            raise DatasetError(
                f"{path}: '{key}' index {bad[0]} is outside 1..{len(names)} (the filelist length)"
            )
        splits[split] = indices - 1
    return Protocol(path=path, names=names, labels=labels, splits=splits)


def _records(
    protocol: Protocol, split: str, images_dir: Path, extracted: set[str], mat_path: Path
) -> list[ImageRecord]:
    records = []
    for index in protocol.splits[split]:
        name = protocol.names[index]
        match = NAME_PATTERN.match(name)
        if match is None:
            raise DatasetError(f"{protocol.path}: filelist entry {name!r} is not a CUHK03 image name")
        if name not in extracted:
            raise DatasetError(
                f"{protocol.path}: filelist entry {name!r} (index {index + 1}) is not an image of {mat_path}"
            )
        records.append((str(images_dir / name), int(protocol.labels[index]), int(match.group(3))))
    return records


def build_cuhk03(root: str | os.PathLike[str], variant: str = "labeled", verify: bool = True) -> ReidDataset:
    """Build CUHK03 ``labeled`` or ``detected`` (new protocol), extracting images on first use."""
    if variant not in VARIANTS:
        raise DatasetError(f"unknown CUHK03 variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    base = resolve_root(root)
    protocol = load_protocol(protocol_path(base, variant))
    images_dir, extracted = ensure_extracted(base, variant)
    mat_path = base / RELEASE_MAT
    splits = {split: _records(protocol, split, images_dir, extracted, mat_path) for split in SPLIT_KEYS}
    return dataset_from_splits(f"cuhk03-{variant}", str(protocol.path), splits, verify)
