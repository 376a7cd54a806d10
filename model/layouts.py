"""File layouts of labelled person crops that training, calibration and benchmarks all read.

``ROOT/<person>/<camera>_<n>.<ext>`` is the folder layout of a store's own labelled sample; a
Market-1501 file name ``PPPP_cCsS_FFFFFF_NN.jpg`` carries the person, camera, sequence and frame.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
MARKET_NAME = re.compile(r"^(-1|\d+)_c(\d+)s(\d+)_(\d+)_(\d+)$")


class LayoutError(ValueError):
    """A file or folder that does not follow the expected layout."""


@dataclass(frozen=True)
class FolderImage:
    """One crop of the folder layout: its path, person folder, camera token and index token."""

    path: Path
    person: str
    camera: str
    index: str


@dataclass(frozen=True)
class MarketName:
    """What a Market-1501 file name says: person (-1 junk, 0 distractor), camera, sequence, frame."""

    person: int
    camera: int
    sequence: int
    frame: int


def is_image(path: Path) -> bool:
    """A visible file with a JPEG or PNG suffix."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def scan_person_folders(folder: Path) -> list[FolderImage]:
    """Every crop under ``folder/<person>/<camera>_<n>.<ext>``, in sorted order; hidden entries skipped."""
    images = []
    for person_dir in sorted(Path(folder).iterdir()):
        if not person_dir.is_dir() or person_dir.name.startswith("."):
            continue
        for path in sorted(person_dir.iterdir()):
            if not is_image(path):
                continue
            camera, sep, index = path.stem.rpartition("_")
            if not sep or not camera or not index:
                raise LayoutError(f"{path}: image name must look like <camera>_<n>{path.suffix}")
            images.append(FolderImage(path=path, person=person_dir.name, camera=camera, index=index))
    return images


def parse_market_name(path: Path) -> MarketName | None:
    """The fields of a Market-1501 file name, or None when the name is not one."""
    match = MARKET_NAME.match(Path(path).stem)
    if match is None:
        return None
    person, camera, sequence, frame, _ = (int(group) for group in match.groups())
    return MarketName(person, camera, sequence, frame)
