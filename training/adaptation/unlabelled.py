"""A folder of unlabelled crops: every image under it, its camera when the file name says, a fingerprint.

Names that carry a camera: an exported crop's (``model.crop_export``: ``cam<id>_<time>_<n>.png``) and
Market-1501's (``PPPP_cCsS_FFFFFF_NN.jpg``). A Market-1501 name also carries a person id; it is kept as
``label`` only to report how pure the clusters are (TensorBoard), never to train. Other names give
neither. The fingerprint (SHA-256 over each file's relative path and content) identifies the set in
checkpoints and in the export's ``model.json``, and a resumed run refuses a set that changed.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from model.crop_export import parse_export_name
from model.layouts import is_image, parse_market_name

CHUNK = 1 << 20


@dataclass(frozen=True)
class UnlabelledImage:
    """One crop: its path, its camera index (0-based, None when unknown) and a label for purity only."""

    path: str
    camera: int | None
    label: int | None


@dataclass(frozen=True)
class UnlabelledSet:
    """The crops of a folder in path order, and the folder's fingerprint."""

    root: Path
    images: list[UnlabelledImage]
    fingerprint: str

    @property
    def paths(self) -> list[str]:
        """Every image path, in order."""
        return [image.path for image in self.images]

    @property
    def cameras_known(self) -> bool:
        """True when every image's name gives its camera, and there are at least two cameras."""
        cameras = {image.camera for image in self.images}
        return None not in cameras and len(cameras) >= 2

    @property
    def labels_known(self) -> bool:
        """True when every image's name happens to carry a person id (used for purity only)."""
        return all(image.label is not None for image in self.images)

    def provenance(self) -> dict[str, object]:
        """What a checkpoint and an export record about the set."""
        return {
            "root": str(self.root.resolve()),
            "images": len(self.images),
            "fingerprint": self.fingerprint,
            "cameras": len({image.camera for image in self.images if image.camera is not None}),
        }


def _camera_and_label(path: Path) -> tuple[int | None, int | None]:
    exported = parse_export_name(path)
    if exported is not None:
        return exported.camera, None
    market = parse_market_name(path)
    if market is not None:
        return market.camera, market.person if market.person > 0 else None
    return None, None


def _file_digest(path: Path) -> bytes:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.digest()


def fingerprint(root: Path, paths: list[Path]) -> str:
    """SHA-256 over the sorted relative paths and contents of ``paths`` (all under ``root``)."""
    digest = hashlib.sha256()
    for path in sorted(paths, key=lambda p: p.relative_to(root).as_posix()):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(_file_digest(path))
    return digest.hexdigest()


def _walk(root: Path) -> list[Path]:
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(folder) / name for name in sorted(files) if is_image(Path(name)))
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def read_unlabelled(root: str | os.PathLike[str]) -> UnlabelledSet:
    """Every JPEG/PNG under ``root`` (sub-folders included, hidden entries skipped), in path order."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"unlabelled folder {root} does not exist or is not a folder")
    paths = _walk(root)
    if not paths:
        raise ValueError(f"{root}: no .jpg, .jpeg or .png images to adapt on")
    raw = [(path, *_camera_and_label(path)) for path in paths]
    cameras = sorted({camera for _, camera, _ in raw if camera is not None})
    index = {camera: position for position, camera in enumerate(cameras)}
    images = [
        UnlabelledImage(str(path), index[camera] if camera is not None else None, label)
        for path, camera, label in raw
    ]
    return UnlabelledSet(root, images, fingerprint(root, paths))
