"""Person re-identification datasets behind one entry point, ``build_dataset``.

Every reader returns a ``ReidDataset`` of ``(image_path, person_id, camera_id)`` records and raises
``DatasetError`` (a ``ValueError``) naming the offending file before any training starts.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from training.datasets.base import DatasetError, ImageRecord, ReidDataset, SplitStats
from training.datasets.cuhk03 import build_cuhk03
from training.datasets.folder import build_folder
from training.datasets.market1501 import build_market1501

_BUILDERS: dict[str, Callable[..., ReidDataset]] = {
    "cuhk03-labeled": lambda root, **kw: build_cuhk03(root, variant="labeled", **kw),
    "cuhk03-detected": lambda root, **kw: build_cuhk03(root, variant="detected", **kw),
    "market1501": build_market1501,
    "folder": build_folder,
}

DATASET_NAMES = tuple(_BUILDERS)


def build_dataset(name: str, root: str | os.PathLike[str], **kwargs: object) -> ReidDataset:
    """Build dataset ``name`` from ``root``; ``kwargs`` go to the reader (e.g. ``verify=False``)."""
    try:
        builder = _BUILDERS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(DATASET_NAMES)}") from None
    return builder(root, **kwargs)


__all__ = ["DATASET_NAMES", "DatasetError", "ImageRecord", "ReidDataset", "SplitStats", "build_dataset"]
