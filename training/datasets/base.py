"""The dataset record type shared by every reader, and checks common to all of them.

A record is ``(image_path, person_id, camera_id)``. Training ids run ``0..num_train_ids-1``; query and
gallery keep the dataset's own ids (gallery id ``-1`` marks a junk image the evaluation ignores).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from PIL import Image

ImageRecord = tuple[str, int, int]


class DatasetError(ValueError):
    """A dataset's files are missing, unreadable or inconsistent with its protocol."""


@dataclass(frozen=True)
class SplitStats:
    """Counts describing one split of a dataset."""

    ids: int
    images: int
    cameras: int


def split_stats(records: Sequence[ImageRecord]) -> SplitStats:
    """Count identities, images and cameras in a list of records."""
    return SplitStats(
        ids=len({pid for _, pid, _ in records}),
        images=len(records),
        cameras=len({cam for _, _, cam in records}),
    )


@dataclass(frozen=True)
class ReidDataset:
    """Train, query and gallery records of one re-identification dataset."""

    name: str
    train: list[ImageRecord]
    query: list[ImageRecord]
    gallery: list[ImageRecord]
    num_train_ids: int

    def __post_init__(self) -> None:
        train_ids = {pid for _, pid, _ in self.train}
        if train_ids != set(range(self.num_train_ids)):
            raise DatasetError(
                f"{self.name}: training ids must be exactly 0..{self.num_train_ids - 1}, "
                f"got {len(train_ids)} distinct ids"
            )

    def stats(self) -> dict[str, SplitStats]:
        """Identity, image and camera counts of each split."""
        return {
            "train": split_stats(self.train),
            "query": split_stats(self.query),
            "gallery": split_stats(self.gallery),
        }

    def summary(self) -> str:
        """A small table of ids, images and cameras per split, for logging."""
        lines = [f"dataset {self.name}", f"  {'split':<8}{'ids':>8}{'images':>9}{'cameras':>9}"]
        for split, stats in self.stats().items():
            lines.append(f"  {split:<8}{stats.ids:>8}{stats.images:>9}{stats.cameras:>9}")
        return "\n".join(lines)


def relabel(records: Iterable[ImageRecord]) -> tuple[list[ImageRecord], int]:
    """Map training ids to ``0..N-1`` in ascending order of the original id."""
    records = list(records)
    ordered = sorted({pid for _, pid, _ in records})
    mapping = {pid: label for label, pid in enumerate(ordered)}
    return [(path, mapping[pid], cam) for path, pid, cam in records], len(ordered)


def check_disjoint(source: str, train: Sequence[ImageRecord], test: Iterable[Sequence[ImageRecord]]) -> None:
    """Raise if an identity is both in training and in query/gallery (ids <= 0 are not identities)."""
    train_ids = {pid for _, pid, _ in train}
    test_ids = {pid for records in test for _, pid, _ in records if pid > 0}
    shared = sorted(train_ids & test_ids)
    if shared:
        shown = ", ".join(str(pid) for pid in shared[:10])
        raise DatasetError(f"{source}: {len(shared)} identities are in both train and test (e.g. {shown})")


def check_not_empty(source: str, splits: dict[str, Sequence[ImageRecord]]) -> None:
    """Raise if any split holds no image."""
    for split, records in splits.items():
        if not records:
            raise DatasetError(f"{source}: the {split} split has no images")


def verify_images(paths: Iterable[str], decode_check: bool = True) -> None:
    """Check that every file exists and, if ``decode_check``, that PIL accepts it.

    The decode check parses the header (JPEG markers up to the scan) and runs ``Image.verify()`` (PNG
    chunk CRCs): cheap, but pixels are not decoded, so a truncated JPEG body can still slip through.
    """
    for path in paths:
        if not os.path.isfile(path):
            raise DatasetError(f"{path}: image file not found")
        if not decode_check:
            continue
        try:
            with Image.open(path) as img:
                img.verify()
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise DatasetError(f"{path}: unreadable image ({exc})") from exc


def dataset_from_splits(
    name: str, source: str, splits: dict[str, list[ImageRecord]], verify: bool
) -> ReidDataset:
    """Check the splits (not empty, train/test ids disjoint, images readable) and relabel training ids."""
    check_not_empty(source, splits)
    check_disjoint(source, splits["train"], (splits["query"], splits["gallery"]))
    verify_images(dict.fromkeys(path for records in splits.values() for path, _, _ in records), verify)
    train, num_train_ids = relabel(splits["train"])
    return ReidDataset(
        name=name, train=train, query=splits["query"], gallery=splits["gallery"], num_train_ids=num_train_ids
    )
