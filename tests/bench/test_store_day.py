"""bench/store_day.py: its three sources read what they should, and a small day replays end to end."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.service import conftest as service_fixtures

model_dir = service_fixtures.model_dir

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def bench():
    """The bench script as a module."""
    spec = importlib.util.spec_from_file_location("store_day_bench", ROOT / "bench" / "store_day.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def write_image(path: Path, shade: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((64, 32, 3), shade, np.uint8)).save(path)


def test_market_1501_replays_as_a_six_camera_store(bench, tmp_path):
    gallery, query = tmp_path / "bounding_box_test", tmp_path / "query"
    names = [
        "0002_c1s1_000100_00.jpg",
        "0002_c1s1_000150_00.jpg",
        "0002_c1s1_001000_00.jpg",
        "0002_c2s1_000120_00.jpg",
        "0007_c1s2_000010_00.jpg",
        "0000_c1s1_000200_00.jpg",
        "-1_c2s1_000300_00.jpg",
    ]
    for index, name in enumerate(names):
        write_image(gallery / name, 10 * index)
    write_image(query / "0002_c3s1_000050_00.jpg", 200)
    write_image(query / "0099_c3s1_000050_00.jpg", 210)
    replay = bench.market_replay(tmp_path, START)
    assert {e.person for e in replay.events} == {"2", "7"}
    assert len(replay.events) == 5, "junk (-1) and distractors (0000) are left out"
    assert replay.cameras == {"c1": "camera 1", "c2": "camera 2"}
    by_name = {e.captured_at: e for e in replay.events}
    assert min(by_name) == START + timedelta(seconds=100 / 25)
    seq2 = next(e for e in replay.events if e.person == "7")
    assert seq2.captured_at == START + timedelta(seconds=(1000 + 1 + 10) / 25), (
        "sequence 2 follows sequence 1"
    )
    tracks = [e.track for e in replay.events if e.person == "2" and e.camera == "c1"]
    assert tracks[0] == tracks[1] != tracks[2], "a long gap in frames starts a new track"
    assert set(replay.queries) == {"2"}
    assert [e.captured_at for e in replay.events] == sorted(e.captured_at for e in replay.events)


def test_a_folder_set_with_zones_and_times(bench, tmp_path):
    root = tmp_path / "set"
    rows = []
    for person, camera, index, minute in (("a", "door", 1, 0), ("a", "till", 1, 5), ("b", "door", 1, 2)):
        path = root / person / f"{camera}_{index}.png"
        write_image(path, minute * 20)
        when = (START + timedelta(minutes=minute)).isoformat()
        rows.append({"path": f"{person}/{camera}_{index}.png", "captured_at": when, "track_id": f"t{minute}"})
    zones, times = tmp_path / "zones.csv", tmp_path / "times.csv"
    zones.write_text("camera,zone\ndoor,entrance\ntill,checkout\n")
    with times.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "captured_at", "track_id"])
        writer.writeheader()
        writer.writerows(rows)
    replay = bench.folder_replay(root, zones, times)
    assert [(e.person, e.zone, e.track) for e in replay.events] == [
        ("a", "entrance", "t0"),
        ("b", "entrance", "t2"),
        ("a", "checkout", "t5"),
    ]
    assert replay.events[0].image() == (root / "a" / "door_1.png").read_bytes()


def test_scores_count_pairs_and_crops(bench):
    assert bench.bcubed([0, 0, 1, 1], ["a", "a", "b", "b"]) == (1.0, 1.0, 1.0)
    precision, recall, f1 = bench.bcubed([0, 0, 0, 0], ["a", "a", "b", "b"])
    assert (precision, recall) == (0.5, 1.0)
    assert bench.mape([2, 0, 5], [1, 0, 5]) == pytest.approx(0.5)
    assert bench.mape([1], [0]) is None


@pytest.mark.slow
def test_a_small_day_replays_through_a_real_server(bench, model_dir, tmp_path):
    out = tmp_path / "store_day.json"
    code = bench.main(
        ["--people", "6", "--model-dir", str(model_dir), "--modes", "today", "tracks", "--out", str(out)]
    )
    assert code == 0
    report = json.loads(out.read_text())
    assert report["crops"] > 20
    modes = {r["mode"]["name"]: r for r in report["results"]}
    assert set(modes) == {"today", "tracks"}
    assert set(modes["tracks"]["stages"]) == {"online", "relinked"} and set(modes["today"]["stages"]) == {
        "online"
    }
    for result in modes.values():
        for scores in result["stages"].values():
            assert scores["people"] == 6 and scores["visitors"] >= 1
            assert 0.0 <= scores["bcubed"]["f1"] <= 1.0 and 0.0 <= scores["pairwise"]["f1"] <= 1.0
            assert set(scores["zones"]) == set(result["truth"]) == {"entrance", "aisles", "checkout"}
        assert result["match"]["rank1"] is not None
    assert out.with_suffix(".png").stat().st_size > 1000
