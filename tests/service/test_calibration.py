"""``reid-admin calibrate``: the linking threshold from a store's labelled sample, and its curve."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from service import cli
from service.ingest.calibration import pairwise_scores
from service.settings import get_settings


def write_sample(root, helpers, people: list[int]) -> None:
    """The cast's story photos in the folder layout ROOT/<person>/<camera>_<n>.png."""
    for person in people:
        folder = root / str(person)
        folder.mkdir(parents=True)
        for view in range(4):
            Image.fromarray(helpers.story_image(person, view)).save(folder / f"c{view}_{view}.png")


@pytest.fixture
def admin_env(monkeypatch, database_url, model_dir, tmp_path):
    monkeypatch.setenv("REID_DATABASE_URL", database_url)
    monkeypatch.setenv("REID_MODEL_DIR", str(model_dir))
    monkeypatch.setenv("REID_INDEX_DIR", str(tmp_path / "indexes"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def run_admin(argv, capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        cli.admin([str(a) for a in argv])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_pairwise_scores_count_pairs():
    assert pairwise_scores([0, 0, 1, 1], ["a", "a", "b", "b"]) == (1.0, 1.0, 1.0)
    precision, recall, f1 = pairwise_scores([0, 0, 0, 0], ["a", "a", "b", "b"])
    assert (precision, recall) == (2 / 6, 1.0) and f1 == pytest.approx(0.5)
    assert pairwise_scores([0, 1, 2, 3], ["a", "a", "b", "b"])[1] == 0.0


def test_calibrate_picks_a_threshold_that_separates_the_sample(
    admin_env, settings_for, database_url, start_app, helpers, cast, tmp_path, capsys
):
    client = start_app(settings_for(database_url))
    store = helpers.make_store(client, ["entrance"])
    sample = tmp_path / "sample"
    write_sample(sample, helpers, cast.people)
    curve_json, plot = tmp_path / "curve.json", tmp_path / "curve.png"
    code, out, _ = run_admin(
        ["calibrate", sample, "--plot", plot, "--json", curve_json, "--apply-to", store["id"]], capsys
    )
    assert code == 0, out
    report = json.loads(curve_json.read_text())
    best = report["best"]
    assert best["f1"] == pytest.approx(1.0) and best["clusters"] == len(cast.people)
    assert cast.max_cross < best["threshold"] <= 1.0
    assert plot.stat().st_size > 1000 and "<- best" in out
    stored = client.get(f"/stores/{store['id']}", headers=helpers.admin).json()
    assert stored["match_threshold"] == pytest.approx(best["threshold"])

    (tmp_path / "empty").mkdir()
    code, _, err = run_admin(["calibrate", tmp_path / "empty"], capsys)
    assert code == 1 and "at least two people" in err
    code, _, err = run_admin(["calibrate", sample, "--plot", plot, "--apply-to", 10**6], capsys)
    assert code == 1 and "not found" in err


def test_reid_admin_relink_runs_a_pass(
    admin_env, settings_for, database_url, start_app, helpers, cast, capsys
):
    client = start_app(settings_for(database_url))
    store = helpers.make_store(client, ["entrance"])
    code, out, _ = run_admin(["relink", store["id"]], capsys)
    assert code == 0 and f"store {store['id']}: 0 sightings" in out
    code, _, err = run_admin(["relink", store["id"], "--start", "yesterday"], capsys)
    assert code == 1 and "ISO 8601" in err
