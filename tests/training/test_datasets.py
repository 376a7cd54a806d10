"""Dataset readers: CUHK03 from tiny .mat files in the real layouts, Market-1501 and plain folders."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
from PIL import Image

from training.datasets import DATASET_NAMES, DatasetError, ReidDataset, build_dataset
from training.datasets import cuhk03 as cuhk03_module

PERSONS_PER_PAIR = (3, 2, 3, 2, 3)
VARIANTS_INDEX = {"labeled": 0, "detected": 1}
MISSING = {"labeled": {(0, 0, 9), (2, 1, 4)}, "detected": {(1, 0, 0), (4, 2, 7), (4, 2, 8)}}


def _cuhk_image(variant: str, pair: int, pid: int, imgid: int) -> np.ndarray:
    seed = [VARIANTS_INDEX[variant], pair, pid, imgid]
    shape = (10 + pid + imgid % 2, 5 + imgid % 3, 3)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _global_id(pair: int, pid: int) -> int:
    return sum(PERSONS_PER_PAIR[:pair]) + pid + 1


def _present(variant: str) -> list[tuple[int, int, int]]:
    return [
        (pair, pid, imgid)
        for pair, persons in enumerate(PERSONS_PER_PAIR)
        for pid in range(persons)
        for imgid in range(10)
        if (pair, pid, imgid) not in MISSING[variant]
    ]


def write_release_mat(path: Path) -> None:
    """cuhk-03.mat as MATLAB v7.3 writes it: transposed cells of object references, empty = [0 0]."""
    path.parent.mkdir(parents=True, exist_ok=True)
    counter = itertools.count()
    with h5py.File(path, "w") as mat:
        refs = mat.create_group("#refs#")

        def store(data: np.ndarray) -> h5py.Reference:
            return refs.create_dataset(f"r{next(counter)}", data=data).ref

        for variant in ("detected", "labeled"):
            pairs = np.empty((1, len(PERSONS_PER_PAIR)), dtype=h5py.ref_dtype)
            for pair, persons in enumerate(PERSONS_PER_PAIR):
                cell = np.empty((10, persons), dtype=h5py.ref_dtype)
                for pid, imgid in itertools.product(range(persons), range(10)):
                    if (pair, pid, imgid) in MISSING[variant]:
                        cell[imgid, pid] = store(np.zeros(2, dtype=np.uint64))
                    else:
                        cell[imgid, pid] = store(_cuhk_image(variant, pair, pid, imgid).T)
                pairs[0, pair] = store(cell)
            mat.create_dataset(variant, data=pairs)


def protocol_content(variant: str) -> dict[str, np.ndarray]:
    """A new-protocol config: odd global ids train; even ids test, first image of each view as query."""
    present = _present(variant)
    names = [cuhk03_module.image_name(pair, pid, imgid) for pair, pid, imgid in present]
    labels = [_global_id(pair, pid) for pair, pid, _ in present]
    train, query, gallery = [], [], []
    seen_views: set[tuple[int, int]] = set()
    for index, (name, label) in enumerate(zip(names, labels, strict=True)):
        view = int(name.split("_")[2])
        if label % 2 == 1:
            train.append(index + 1)
        elif (label, view) not in seen_views:
            seen_views.add((label, view))
            query.append(index + 1)
        else:
            gallery.append(index + 1)
    filelist = np.empty((len(names), 1), dtype=object)
    filelist[:, 0] = names
    cam_id = np.array([[int(name.split("_")[0])] for name in names], dtype=float)

    def column(values: list[int]) -> np.ndarray:
        return np.asarray(values, dtype=float).reshape(-1, 1)

    return {
        "filelist": filelist,
        "labels": column(labels),
        "camId": cam_id,
        "train_idx": column(train),
        "query_idx": column(query),
        "gallery_idx": column(gallery),
    }


@pytest.fixture
def cuhk_root(tmp_path: Path) -> Path:
    root = tmp_path / "cuhk03"
    write_release_mat(root / "cuhk03_release" / "cuhk-03.mat")
    for variant in ("labeled", "detected"):
        scipy.io.savemat(root / f"cuhk03_new_protocol_config_{variant}.mat", protocol_content(variant))
    return root


def _rewrite_protocol(root: Path, variant: str, **changes: np.ndarray) -> Path:
    path = root / f"cuhk03_new_protocol_config_{variant}.mat"
    content = protocol_content(variant)
    content.update(changes)
    scipy.io.savemat(path, content)
    return path


def _name(record: tuple[str, int, int]) -> str:
    return Path(record[0]).name


def _pair_pid(name: str) -> tuple[int, int]:
    pair, pid = name.split("_")[:2]
    return int(pair) - 1, int(pid) - 1


@pytest.mark.parametrize("variant", ["labeled", "detected"])
def test_cuhk03_identities_cameras_and_splits(cuhk_root: Path, variant: str) -> None:
    dataset = build_dataset(f"cuhk03-{variant}", cuhk_root)
    present = _present(variant)
    all_ids = sorted({_global_id(pair, pid) for pair, pid, _ in present})
    train_ids = [pid for pid in all_ids if pid % 2 == 1]
    test_ids = [pid for pid in all_ids if pid % 2 == 0]

    assert dataset.name == f"cuhk03-{variant}"
    assert dataset.num_train_ids == len(train_ids)
    for record in dataset.train:
        assert record[1] == train_ids.index(_global_id(*_pair_pid(_name(record))))
    for record in dataset.query + dataset.gallery:
        assert record[1] == _global_id(*_pair_pid(_name(record)))
    assert {pid for _, pid, _ in dataset.query} == set(test_ids)
    assert len(dataset.query) == 2 * len(test_ids)
    images = len(dataset.train) + len(dataset.query) + len(dataset.gallery)
    assert images == len(present)
    for record in dataset.train + dataset.query + dataset.gallery:
        imgid = int(_name(record)[-6:-4])
        assert record[2] == (1 if imgid <= 5 else 2)
        assert Path(record[0]).is_file()
        assert Path(record[0]).parent == cuhk_root / f"images_{variant}"


@pytest.mark.parametrize("variant", ["labeled", "detected"])
def test_cuhk03_extracted_pixels_equal_originals(cuhk_root: Path, variant: str) -> None:
    dataset = build_dataset(f"cuhk03-{variant}", cuhk_root)
    for record in dataset.train[:5] + dataset.gallery[-5:]:
        name = _name(record)
        pair, pid = _pair_pid(name)
        imgid = int(name[-6:-4]) - 1
        stored = np.asarray(Image.open(record[0]))
        np.testing.assert_array_equal(stored, _cuhk_image(variant, pair, pid, imgid))
    extracted = {p.name for p in (cuhk_root / f"images_{variant}").glob("*.png")}
    missing = {cuhk03_module.image_name(*key) for key in MISSING[variant]}
    assert extracted.isdisjoint(missing)
    assert len(extracted) == len(_present(variant))


def test_cuhk03_extraction_is_cached(cuhk_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = build_dataset("cuhk03-labeled", cuhk_root)
    probe = Path(first.train[0][0])
    mtime = probe.stat().st_mtime_ns

    def fail(*args: object) -> None:
        raise AssertionError("extracted again")

    monkeypatch.setattr(cuhk03_module, "extract_images", fail)
    second = build_dataset("cuhk03-labeled", cuhk_root)
    assert second == first
    assert probe.stat().st_mtime_ns == mtime
    assert not (cuhk_root / "images_detected").exists()


def test_cuhk03_interrupted_extraction_is_redone(cuhk_root: Path) -> None:
    dataset = build_dataset("cuhk03-detected", cuhk_root)
    images_dir = cuhk_root / "images_detected"
    (images_dir / cuhk03_module.MARKER_NAME).unlink()
    lost = Path(dataset.gallery[0][0])
    lost.unlink()
    assert build_dataset("cuhk03-detected", cuhk_root) == dataset
    assert lost.is_file()


def test_cuhk03_accepts_parent_of_cuhk03_folder(cuhk_root: Path) -> None:
    dataset = build_dataset("cuhk03-labeled", cuhk_root.parent)
    assert Path(dataset.query[0][0]).parent == cuhk_root / "images_labeled"


def test_cuhk03_missing_release_file(cuhk_root: Path) -> None:
    (cuhk_root / "cuhk03_release" / "cuhk-03.mat").unlink()
    with pytest.raises(DatasetError, match="cuhk-03.mat"):
        build_dataset("cuhk03-labeled", cuhk_root)


def test_cuhk03_missing_protocol_file(cuhk_root: Path) -> None:
    (cuhk_root / "cuhk03_new_protocol_config_detected.mat").unlink()
    with pytest.raises(DatasetError, match="cuhk03_new_protocol_config_detected.mat.*not found"):
        build_dataset("cuhk03-detected", cuhk_root)


def test_cuhk03_index_out_of_range(cuhk_root: Path) -> None:
    size = len(_present("labeled"))
    path = _rewrite_protocol(cuhk_root, "labeled", query_idx=np.array([[1.0], [size + 1.0]]))
    with pytest.raises(DatasetError, match=re.escape(str(path)) + ".*query_idx.*outside"):
        build_dataset("cuhk03-labeled", cuhk_root)


def test_cuhk03_zero_index_is_rejected(cuhk_root: Path) -> None:
    _rewrite_protocol(cuhk_root, "labeled", train_idx=np.array([[0.0], [1.0]]))
    with pytest.raises(DatasetError, match="train_idx"):
        build_dataset("cuhk03-labeled", cuhk_root)


def test_cuhk03_filelist_name_not_in_release(cuhk_root: Path) -> None:
    content = protocol_content("labeled")
    missing_name = cuhk03_module.image_name(0, 0, 9)
    filelist = content["filelist"].copy()
    filelist[int(content["train_idx"][0, 0]) - 1, 0] = missing_name
    _rewrite_protocol(cuhk_root, "labeled", filelist=filelist)
    with pytest.raises(DatasetError, match=re.escape(missing_name)):
        build_dataset("cuhk03-labeled", cuhk_root)


def test_cuhk03_labels_length_mismatch(cuhk_root: Path) -> None:
    labels = protocol_content("detected")["labels"][:-1]
    _rewrite_protocol(cuhk_root, "detected", labels=labels)
    with pytest.raises(DatasetError, match="labels"):
        build_dataset("cuhk03-detected", cuhk_root)


def test_cuhk03_missing_protocol_field(cuhk_root: Path) -> None:
    content = protocol_content("labeled")
    del content["gallery_idx"]
    scipy.io.savemat(cuhk_root / "cuhk03_new_protocol_config_labeled.mat", content)
    with pytest.raises(DatasetError, match="gallery_idx"):
        build_dataset("cuhk03-labeled", cuhk_root)


def test_cuhk03_train_and_test_ids_overlap(cuhk_root: Path) -> None:
    content = protocol_content("labeled")
    train = np.vstack([content["train_idx"], content["query_idx"][:1]])
    _rewrite_protocol(cuhk_root, "labeled", train_idx=train)
    with pytest.raises(DatasetError, match="both train and test"):
        build_dataset("cuhk03-labeled", cuhk_root)


def test_cuhk03_unreadable_image(cuhk_root: Path) -> None:
    dataset = build_dataset("cuhk03-labeled", cuhk_root)
    broken = Path(dataset.query[1][0])
    broken.write_bytes(b"not a png at all")
    with pytest.raises(DatasetError, match=re.escape(broken.name) + ".*unreadable"):
        build_dataset("cuhk03-labeled", cuhk_root)


def test_cuhk03_deleted_image_is_reported(cuhk_root: Path) -> None:
    dataset = build_dataset("cuhk03-labeled", cuhk_root)
    gone = Path(dataset.train[3][0])
    gone.unlink()
    with pytest.raises(DatasetError, match=re.escape(gone.name) + ".*not found"):
        build_dataset("cuhk03-labeled", cuhk_root, verify=False)


def test_cuhk03_release_not_hdf5(cuhk_root: Path) -> None:
    (cuhk_root / "cuhk03_release" / "cuhk-03.mat").write_bytes(b"MATLAB 5.0 MAT-file, not HDF5")
    with pytest.raises(DatasetError, match="cuhk-03.mat"):
        build_dataset("cuhk03-labeled", cuhk_root)


def _write_image(path: Path, value: int = 128) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 4, 3), value, dtype=np.uint8)).save(path)


MARKET_FILES = {
    "bounding_box_train": ["0002_c1s1_000451_03.jpg", "0002_c2s1_000551_01.jpg", "0007_c3s1_000100_01.jpg"],
    "query": ["0010_c1s1_001051_00.jpg", "0011_c2s2_001200_00.jpg"],
    "bounding_box_test": [
        "0010_c2s1_001100_01.jpg",
        "0010_c1s1_001060_02.jpg",
        "0011_c3s1_001300_01.jpg",
        "-1_c1s1_000401_03.jpg",
        "0000_c6s1_000800_04.jpg",
    ],
}


def write_market(root: Path) -> Path:
    for folder, names in MARKET_FILES.items():
        for name in names:
            _write_image(root / folder / name)
    (root / "bounding_box_train" / "Thumbs.db").write_bytes(b"\0\1")
    return root


def test_market1501_splits_junk_and_distractors(tmp_path: Path) -> None:
    dataset = build_dataset("market1501", write_market(tmp_path / "market"))
    assert dataset.num_train_ids == 2
    assert sorted((pid, cam) for _, pid, cam in dataset.train) == [(0, 1), (0, 2), (1, 3)]
    assert sorted((pid, cam) for _, pid, cam in dataset.query) == [(10, 1), (11, 2)]
    assert sorted((pid, cam) for _, pid, cam in dataset.gallery) == [
        (-1, 1),
        (0, 6),
        (10, 1),
        (10, 2),
        (11, 3),
    ]
    assert all(Path(path).is_file() for path, _, _ in dataset.gallery)


def test_market1501_accepts_release_parent(tmp_path: Path) -> None:
    write_market(tmp_path / "Market-1501-v15.09.15")
    assert len(build_dataset("market1501", tmp_path).gallery) == 5


def test_market1501_missing_folder(tmp_path: Path) -> None:
    root = write_market(tmp_path / "market")
    for path in (root / "query").iterdir():
        path.unlink()
    (root / "query").rmdir()
    with pytest.raises(DatasetError, match="query"):
        build_dataset("market1501", root)


def test_market1501_bad_name_and_corrupt_image(tmp_path: Path) -> None:
    root = write_market(tmp_path / "market")
    _write_image(root / "query" / "person12.jpg")
    with pytest.raises(DatasetError, match="person12.jpg"):
        build_dataset("market1501", root)
    (root / "query" / "person12.jpg").unlink()
    corrupt = root / "bounding_box_test" / "0011_c3s1_001300_01.jpg"
    corrupt.write_bytes(b"\xff\xd8garbage")
    with pytest.raises(DatasetError, match="0011_c3s1_001300_01.jpg"):
        build_dataset("market1501", root)


def test_market1501_train_test_overlap(tmp_path: Path) -> None:
    root = write_market(tmp_path / "market")
    _write_image(root / "bounding_box_train" / "0010_c4s1_000001_01.jpg")
    with pytest.raises(DatasetError, match="both train and test"):
        build_dataset("market1501", root)


def write_folder(root: Path, people: dict[str, list[str]]) -> Path:
    for person, names in people.items():
        for name in names:
            _write_image(root / person / name)
    return root


def test_folder_automatic_split(tmp_path: Path) -> None:
    root = write_folder(
        tmp_path / "store",
        {
            "1": ["cam1_1.jpg", "cam2_1.jpg"],
            "2": ["cam1_1.jpg", "cam1_2.png"],
            "3": ["cam2_2.jpg", "cam1_10.jpg", "cam1_9.jpg", "cam2_1.jpg"],
            "4": ["cam1_1.jpg", "cam1_2.jpg"],
        },
    )
    (root / "notes.txt").write_text("ignored")
    dataset = build_dataset("folder", root)
    assert dataset.num_train_ids == 2
    assert sorted((pid, cam) for _, pid, cam in dataset.train) == [(0, 1), (0, 2), (1, 1), (1, 1)]
    assert [(Path(p).parent.name, Path(p).name) for p, _, _ in dataset.query] == [
        ("3", "cam1_9.jpg"),
        ("3", "cam2_1.jpg"),
    ]
    gallery = sorted((Path(p).parent.name, Path(p).name, pid, cam) for p, pid, cam in dataset.gallery)
    assert gallery == [
        ("3", "cam1_10.jpg", 3, 1),
        ("3", "cam2_2.jpg", 3, 2),
        ("4", "cam1_1.jpg", 4, 1),
        ("4", "cam1_2.jpg", 4, 1),
    ]


def test_folder_keeps_a_cross_camera_match_for_each_query(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "store", {"5": ["0_1.jpg"], "9": ["0_1.jpg", "1_1.jpg"]})
    dataset = build_dataset("folder", root)
    assert [(pid, cam) for _, pid, cam in dataset.query] == [(9, 0)]
    assert [(pid, cam) for _, pid, cam in dataset.gallery] == [(9, 1)]


def test_folder_named_people_and_fraction(tmp_path: Path) -> None:
    people = {name: ["door_1.jpg", "till_1.jpg"] for name in ("dana", "alex", "bea", "cory")}
    dataset = build_dataset("folder", write_folder(tmp_path / "store", people), test_fraction=0.25)
    assert dataset.num_train_ids == 3
    assert {pid for _, pid, _ in dataset.query} == {4}
    assert all(Path(p).parent.name == "dana" for p, _, _ in dataset.query + dataset.gallery)
    assert [cam for _, _, cam in dataset.query] == [1]
    assert [cam for _, _, cam in dataset.gallery] == [2]


def test_folder_explicit_split(tmp_path: Path) -> None:
    root = tmp_path / "store"
    write_folder(root / "train", {"alex": ["a_1.jpg", "b_1.jpg"], "bea": ["a_1.jpg"]})
    write_folder(root / "query", {"cory": ["a_1.jpg"]})
    write_folder(root / "gallery", {"cory": ["b_1.jpg", "b_2.jpg"], "dana": ["a_1.jpg"]})
    dataset = build_dataset("folder", root)
    assert dataset.num_train_ids == 2
    assert [(pid, cam) for _, pid, cam in dataset.query] == [(3, 1)]
    assert [(pid, cam) for _, pid, cam in dataset.gallery] == [(3, 2), (3, 2), (4, 1)]


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        build_dataset("folder", tmp_path / "absent")
    lonely = write_folder(tmp_path / "lonely", {"1": ["c_1.jpg", "d_1.jpg"]})
    with pytest.raises(DatasetError, match="too few"):
        build_dataset("folder", lonely)
    bad = write_folder(tmp_path / "bad", {"1": ["c_1.jpg"], "2": ["frontdoor.jpg"]})
    with pytest.raises(DatasetError, match="frontdoor.jpg"):
        build_dataset("folder", bad)
    partial = write_folder(tmp_path / "partial" / "train", {"1": ["c_1.jpg"]}).parent
    write_folder(partial / "query", {"2": ["c_1.jpg"]})
    with pytest.raises(DatasetError, match="gallery"):
        build_dataset("folder", partial)
    clash = write_folder(tmp_path / "clash", {"7": ["c_1.jpg"], "007": ["c_1.jpg"], "8": ["c_1.jpg"]})
    with pytest.raises(DatasetError, match="same number"):
        build_dataset("folder", clash)
    fine = write_folder(tmp_path / "fine", {"1": ["c_1.jpg"], "2": ["c_1.jpg", "d_1.jpg"]})
    with pytest.raises(DatasetError, match="test_fraction"):
        build_dataset("folder", fine, test_fraction=1.0)


def test_unknown_dataset_name_lists_valid_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="valid names: cuhk03-labeled, cuhk03-detected, market1501, folder"):
        build_dataset("cuhk03", tmp_path)
    assert DATASET_NAMES == ("cuhk03-labeled", "cuhk03-detected", "market1501", "folder")


def test_summary_counts_ids_and_images() -> None:
    dataset = ReidDataset(
        name="toy",
        train=[("a", 0, 1), ("b", 1, 2), ("c", 1, 1)],
        query=[("d", 5, 1)],
        gallery=[("e", 5, 2), ("f", -1, 1)],
        num_train_ids=2,
    )
    lines = dataset.summary().splitlines()
    assert lines[0] == "dataset toy"
    assert lines[2].split() == ["train", "2", "3", "2"]
    assert lines[3].split() == ["query", "1", "1", "1"]
    assert lines[4].split() == ["gallery", "2", "2", "2"]


def test_dataset_rejects_non_contiguous_train_ids() -> None:
    with pytest.raises(DatasetError, match="0..1"):
        ReidDataset(name="toy", train=[("a", 0, 1), ("b", 2, 1)], query=[], gallery=[], num_train_ids=2)
