"""Write a synthetic re-identification dataset of procedural people (drawn by ``synthetic_people``).

``make_synthetic`` writes a dataset in Market-1501 layout (read it with ``build_dataset("market1501", ...)``):
ids ``1..ceil(ids/2)`` are train, the others test; each test id gives its first image of every camera to
``query`` and the rest to ``bounding_box_test``, which also gets junk (``-1``: bad crops) and distractor
(``0000``: people seen nowhere else) images. Camera numbers in file names start at 1.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from training.datasets.market1501 import SPLIT_FOLDERS
from training.datasets.synthetic_people import keyed_rng, render_junk, render_person
from training.defaults import SYNTHETIC_IMAGE_SIZE, SYNTHETIC_IMAGES_PER_CAMERA

JPEG_QUALITY = 95
METADATA_NAME = "synthetic.json"

__all__ = ["SyntheticConfig", "make_synthetic", "render_person"]


def _write_jpeg(path: Path, image: np.ndarray) -> None:
    ok, data = cv2.imencode(".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise OSError(f"{path}: JPEG encoding failed")
    path.write_bytes(data.tobytes())


def _prepare(out_dir: Path, overwrite: bool) -> dict[str, Path]:
    folders = {split: out_dir / name for split, name in SPLIT_FOLDERS.items()}
    for folder in folders.values():
        if folder.is_dir() and any(folder.iterdir()):
            if not overwrite:
                raise FileExistsError(f"{folder}: not empty; pass overwrite=True to regenerate")
            shutil.rmtree(folder)
    (out_dir / METADATA_NAME).unlink(missing_ok=True)
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    return folders


@dataclass(frozen=True)
class SyntheticConfig:
    """The parameters of one generated dataset, saved next to it."""

    ids: int
    cameras: int
    images_per_camera: int
    seed: int
    image_size: tuple[int, int]
    junk_images: int
    distractor_images: int


def make_synthetic(
    out_dir: str | os.PathLike[str],
    ids: int = 100,
    cameras: int = 4,
    images_per_camera: int = SYNTHETIC_IMAGES_PER_CAMERA,
    seed: int = 0,
    image_size: tuple[int, int] = SYNTHETIC_IMAGE_SIZE,
    junk_images: int | None = None,
    distractor_images: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a synthetic dataset in Market-1501 layout under ``out_dir`` and return ``out_dir``.

    ``junk_images`` and ``distractor_images`` default to 5% of the test images each (at least one).
    """
    if ids < 2 or cameras < 2 or images_per_camera < 2:
        raise ValueError("need ids >= 2, cameras >= 2 and images_per_camera >= 2")
    num_train = math.ceil(ids / 2)
    extra = max(1, round(0.05 * (ids - num_train) * cameras * images_per_camera))
    config = SyntheticConfig(
        ids=ids,
        cameras=cameras,
        images_per_camera=images_per_camera,
        seed=seed,
        image_size=(int(image_size[0]), int(image_size[1])),
        junk_images=extra if junk_images is None else junk_images,
        distractor_images=extra if distractor_images is None else distractor_images,
    )
    out = Path(out_dir)
    folders = _prepare(out, overwrite)
    frame = 0
    for pid in range(1, ids + 1):
        for cam in range(1, cameras + 1):
            for k in range(images_per_camera):
                image = render_person(pid, cam, k, config.image_size, seed)
                split = "train" if pid <= num_train else ("query" if k == 0 else "gallery")
                frame += 1
                _write_jpeg(folders[split] / f"{pid:04d}_c{cam}s1_{frame:06d}_{k:02d}.jpg", image)
    rng = keyed_rng(seed, 5)
    for k in range(config.distractor_images):
        cam = int(rng.integers(1, cameras + 1))
        image = render_person(ids + 1 + k, cam, 0, config.image_size, seed)
        frame += 1
        _write_jpeg(folders["gallery"] / f"0000_c{cam}s1_{frame:06d}_00.jpg", image)
    for k in range(config.junk_images):
        cam, pid = int(rng.integers(1, cameras + 1)), int(rng.integers(1, ids + 1))
        image = render_junk(pid, cam, images_per_camera + k, config.image_size, seed)
        frame += 1
        _write_jpeg(folders["gallery"] / f"-1_c{cam}s1_{frame:06d}_00.jpg", image)
    (out / METADATA_NAME).write_text(json.dumps(asdict(config), indent=2))
    return out
