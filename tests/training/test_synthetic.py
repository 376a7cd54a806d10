"""The procedural synthetic people dataset and its on-demand renderer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.datasets import build_dataset
from training.datasets.synthetic import make_synthetic
from training.datasets.synthetic_people import appearance, render_person


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_generation_is_deterministic(tmp_path: Path) -> None:
    first = make_synthetic(tmp_path / "a", ids=4, cameras=2, images_per_camera=2, seed=3)
    second = make_synthetic(tmp_path / "b", ids=4, cameras=2, images_per_camera=2, seed=3)
    other = make_synthetic(tmp_path / "c", ids=4, cameras=2, images_per_camera=2, seed=4)
    assert first == tmp_path / "a"
    assert _files(first) == _files(second)
    assert _files(first).keys() == _files(other).keys()
    assert _files(first) != _files(other)


def test_readable_as_market1501(tmp_path: Path) -> None:
    root = make_synthetic(tmp_path / "syn", ids=7, cameras=3, images_per_camera=3, junk_images=2)
    dataset = build_dataset("market1501", root)
    assert dataset.num_train_ids == 4
    assert len(dataset.train) == 4 * 3 * 3
    assert sorted((pid, cam) for _, pid, cam in dataset.query) == [
        (p, c) for p in (5, 6, 7) for c in (1, 2, 3)
    ]
    gallery_ids = [pid for _, pid, _ in dataset.gallery]
    assert sum(pid > 0 for pid in gallery_ids) == 3 * 3 * 2
    assert gallery_ids.count(-1) == 2
    assert gallery_ids.count(0) >= 1
    assert {cam for _, _, cam in dataset.gallery} <= {1, 2, 3}


def test_refuses_to_mix_with_existing_files(tmp_path: Path) -> None:
    root = make_synthetic(tmp_path / "syn", ids=2, cameras=2, images_per_camera=2)
    with pytest.raises(FileExistsError):
        make_synthetic(root, ids=3, cameras=2, images_per_camera=2)
    make_synthetic(root, ids=3, cameras=2, images_per_camera=2, overwrite=True)
    assert build_dataset("market1501", root).num_train_ids == 2
    with pytest.raises(ValueError, match="images_per_camera"):
        make_synthetic(tmp_path / "bad", ids=3, cameras=2, images_per_camera=1)


def test_render_person_is_deterministic_rgb() -> None:
    image = render_person(12, camera=2, seed=5, image_size=(96, 48))
    assert image.shape == (96, 48, 3)
    assert image.dtype == np.uint8
    np.testing.assert_array_equal(image, render_person(12, camera=2, seed=5, image_size=(96, 48)))
    assert not np.array_equal(image, render_person(12, camera=2, seed=6, image_size=(96, 48)))
    assert not np.array_equal(image, render_person(12, camera=3, seed=5, image_size=(96, 48)))
    assert appearance(12) == appearance(12, dataset_seed=0)
    assert appearance(12) != appearance(13)
    with pytest.raises(ValueError):
        render_person(-1, camera=1, seed=0)


def _colour_descriptor(image: np.ndarray) -> np.ndarray:
    """Mean colour of the central upper body and of the central legs."""
    height, width = image.shape[:2]
    centre = image[:, width // 4 : 3 * width // 4].astype(float)
    upper = centre[height // 5 : height // 2].mean(axis=(0, 1))
    lower = centre[height // 2 : 9 * height // 10].mean(axis=(0, 1))
    return np.concatenate([upper, lower])


def test_identities_are_recognisable_across_cameras() -> None:
    persons, cameras = range(1, 21), range(1, 5)
    desc = np.array([[_colour_descriptor(render_person(p, c, seed=0)) for c in cameras] for p in persons])
    same_person = [
        np.linalg.norm(desc[p, a] - desc[p, b])
        for p in range(len(persons))
        for a in range(len(cameras))
        for b in range(a + 1, len(cameras))
    ]
    other_person_same_camera = [
        np.linalg.norm(desc[p, c] - desc[q, c])
        for p in range(len(persons))
        for q in range(p + 1, len(persons))
        for c in range(len(cameras))
    ]
    assert np.mean(same_person) < 0.75 * np.mean(other_person_same_camera)
    gallery = desc[:, 1:].reshape(-1, 6)
    gallery_ids = np.repeat(np.arange(len(persons)), len(cameras) - 1)
    nearest = [
        gallery_ids[np.argmin(np.linalg.norm(gallery - desc[p, 0], axis=1))] for p in range(len(persons))
    ]
    assert np.mean(np.asarray(nearest) == np.arange(len(persons))) > 5 / len(persons)


def test_the_dataset_writer_still_offers_the_renderer() -> None:
    from training.datasets import synthetic

    assert synthetic.render_person is render_person
