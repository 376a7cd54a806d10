"""Market-1501 from its folder layout (also the layout the synthetic generator writes).

``root`` is the folder holding ``bounding_box_train/``, ``query/`` and ``bounding_box_test/``, or its parent
containing ``Market-1501-v15.09.15/``. Names look like ``0002_c1s1_000451_03.jpg``: person id, camera
``c1``..``c6``, sequence, frame, box. Camera ids are kept 1-based as in the file name (``c1`` -> 1), like
CUHK03's view ids 1/2; only equality of camera ids matters downstream.

* train: ``bounding_box_train`` without junk (``-1``) and distractor (``0000``) images, ids relabelled
  ``0..N-1`` in ascending order of the original id;
* query: ``query`` with original ids (any ``-1``/``0000`` image is left out: it can match nothing);
* gallery: ``bounding_box_test`` with everything: junk keeps id ``-1`` so evaluation can ignore it, and
  distractors keep id ``0`` as an ordinary identity that matches no query.

Files without an image suffix (e.g. ``Thumbs.db``) are skipped; an image with another name is an error.
"""

from __future__ import annotations

import os
from pathlib import Path

from model.layouts import is_image, parse_market_name
from training.datasets.base import (
    DatasetError,
    ImageRecord,
    ReidDataset,
    dataset_from_splits,
)

RELEASE_FOLDER = "Market-1501-v15.09.15"
SPLIT_FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
JUNK_ID = -1
DISTRACTOR_ID = 0


def resolve_root(root: str | os.PathLike[str]) -> Path:
    """Return the folder holding the three split folders: ``root`` or ``root/Market-1501-v15.09.15``."""
    root = Path(root)
    for candidate in (root, root / RELEASE_FOLDER):
        if all((candidate / folder).is_dir() for folder in SPLIT_FOLDERS.values()):
            return candidate
    missing = [folder for folder in SPLIT_FOLDERS.values() if not (root / folder).is_dir()]
    raise DatasetError(
        f"{root}: not a Market-1501 folder (missing {', '.join(missing)}; "
        f"nor does it contain {RELEASE_FOLDER}/)"
    )


def parse_name(path: Path) -> tuple[int, int]:
    """Return ``(person_id, camera_id)`` of a Market-1501 image file name."""
    name = parse_market_name(path)
    if name is None:
        raise DatasetError(f"{path}: not a Market-1501 image name like 0002_c1s1_000451_03.jpg")
    if name.camera < 1:
        raise DatasetError(f"{path}: camera numbers start at c1")
    return name.person, name.camera


def read_folder(folder: Path) -> list[ImageRecord]:
    """All image records of one split folder, in file name order."""
    records = []
    for path in sorted(folder.iterdir()):
        if not is_image(path):
            continue
        pid, camera = parse_name(path)
        records.append((str(path), pid, camera))
    return records


def build_market1501(root: str | os.PathLike[str], verify: bool = True) -> ReidDataset:
    """Build Market-1501 (or a dataset in its layout) from ``root``."""
    base = resolve_root(root)
    raw = {split: read_folder(base / folder) for split, folder in SPLIT_FOLDERS.items()}
    splits = {
        "train": [r for r in raw["train"] if r[1] not in (JUNK_ID, DISTRACTOR_ID)],
        "query": [r for r in raw["query"] if r[1] not in (JUNK_ID, DISTRACTOR_ID)],
        "gallery": raw["gallery"],
    }
    return dataset_from_splits("market1501", str(base), splits, verify)
