"""A plain image-folder dataset, for a store's own data: ``ROOT/<person>/<camera>_<n>.jpg`` (or .png).

Numbering: person ids are the folder names when all of them are positive integers, otherwise ``1..P`` in
sorted name order; camera ids likewise are the ``<camera>`` tokens when all are integers, otherwise
``1..C`` in sorted name order. Files without an image suffix and hidden files are skipped.

Split, either explicit or automatic:

* explicit: ``ROOT/train/``, ``ROOT/query/`` and ``ROOT/gallery/``, each in the per-person layout (a
  person seen in query and gallery keeps one id); when one of them exists all three must;
* automatic: identities in ascending id order; the last ``round(test_fraction * P)`` of them (at least
  one, default half) are test identities, the others train. Each test identity gives, per camera in
  ascending order, the first image of that camera (by ``<n>``) to the query, provided the gallery keeps
  an image of the identity from another camera; its other images go to the gallery. An identity seen by
  one camera only therefore lands entirely in the gallery, where it acts as a distractor.

Training ids are relabelled ``0..N-1`` in ascending order of id; query and gallery keep the ids above.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from pathlib import Path

from model.layouts import FolderImage, LayoutError, scan_person_folders
from training.datasets.base import (
    DatasetError,
    ImageRecord,
    ReidDataset,
    dataset_from_splits,
)

EXPLICIT_SPLITS = ("train", "query", "gallery")


def _is_int(token: str) -> bool:
    return token.isascii() and token.isdigit()


def _natural_key(token: str) -> tuple[int, int, str]:
    return (0, int(token), "") if _is_int(token) else (1, 0, token)


def _numbering(names: set[str], kind: str, minimum: int, root: Path) -> dict[str, int]:
    """Map names to integer ids: the names themselves if all are integers >= minimum, else 1..N."""
    if names and all(_is_int(name) and int(name) >= minimum for name in names):
        numbers = {name: int(name) for name in names}
        if len(set(numbers.values())) != len(numbers):
            raise DatasetError(
                f"{root}: two {kind} names denote the same number in {sorted(names, key=_natural_key)}"
            )
        return numbers
    return {name: number for number, name in enumerate(sorted(names), start=1)}


def _scan(folder: Path) -> list[FolderImage]:
    try:
        return scan_person_folders(folder)
    except LayoutError as exc:
        raise DatasetError(str(exc)) from exc


def _records(
    images: list[FolderImage], persons: dict[str, int], cameras: dict[str, int]
) -> list[ImageRecord]:
    ordered = sorted(images, key=lambda im: (persons[im.person], cameras[im.camera], _natural_key(im.index)))
    return [(str(im.path), persons[im.person], cameras[im.camera]) for im in ordered]


def _query_gallery(records: list[ImageRecord]) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """Split one test identity's records (sorted by camera, then image) into query and gallery."""
    query: list[ImageRecord] = []
    gallery = list(records)
    for camera in sorted({cam for _, _, cam in records}):
        first = next(r for r in gallery if r[2] == camera)
        if any(r[2] != camera for r in gallery):
            query.append(first)
            gallery.remove(first)
    return query, gallery


def _automatic_split(
    records: list[ImageRecord], test_fraction: float, root: Path
) -> dict[str, list[ImageRecord]]:
    if not 0.0 < test_fraction < 1.0:
        raise DatasetError(f"{root}: test_fraction must be between 0 and 1, got {test_fraction}")
    by_person: dict[int, list[ImageRecord]] = defaultdict(list)
    for record in records:
        by_person[record[1]].append(record)
    persons = sorted(by_person)
    num_test = max(1, math.floor(test_fraction * len(persons) + 0.5))
    if num_test >= len(persons):
        raise DatasetError(f"{root}: {len(persons)} identities are too few to split into train and test")
    splits: dict[str, list[ImageRecord]] = {"train": [], "query": [], "gallery": []}
    for pid in persons[: len(persons) - num_test]:
        splits["train"].extend(by_person[pid])
    for pid in persons[len(persons) - num_test :]:
        query, gallery = _query_gallery(by_person[pid])
        splits["query"].extend(query)
        splits["gallery"].extend(gallery)
    return splits


def _explicit_split(root: Path) -> dict[str, list[ImageRecord]]:
    missing = [split for split in EXPLICIT_SPLITS if not (root / split).is_dir()]
    if missing:
        raise DatasetError(f"{root}: has a split folder but lacks {', '.join(missing)}/")
    scanned = {split: _scan(root / split) for split in EXPLICIT_SPLITS}
    everything = [im for images in scanned.values() for im in images]
    persons = _numbering({im.person for im in everything}, "person", minimum=1, root=root)
    cameras = _numbering({im.camera for im in everything}, "camera", minimum=0, root=root)
    return {split: _records(images, persons, cameras) for split, images in scanned.items()}


def build_folder(
    root: str | os.PathLike[str], test_fraction: float = 0.5, verify: bool = True
) -> ReidDataset:
    """Build a dataset from a per-person image folder (see the module docstring for the split)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found")
    if any((root / split).is_dir() for split in EXPLICIT_SPLITS):
        splits = _explicit_split(root)
    else:
        images = _scan(root)
        if not images:
            raise DatasetError(f"{root}: no images in <person>/<camera>_<n>.jpg layout")
        persons = _numbering({im.person for im in images}, "person", minimum=1, root=root)
        cameras = _numbering({im.camera for im in images}, "camera", minimum=0, root=root)
        splits = _automatic_split(_records(images, persons, cameras), test_fraction, root)
    return dataset_from_splits("folder", str(root), splits, verify)
