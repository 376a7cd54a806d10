"""Crop keeping per store, and ``reid-admin export-crops``: refused without it, no identity, audited."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model.crop_export import EXPORT_NAME, parse_export_name
from service import cli
from service.settings import get_settings
from training.adaptation.unlabelled import read_unlabelled

WINDOW = ["--since", "2026-11-25T09:00:00Z", "--until", "2026-11-25T12:00:00Z"]


@pytest.fixture
def admin_cli(database_url, monkeypatch, capsys):
    """Run ``reid-admin`` on the test database; returns (exit code, stdout, stderr)."""
    monkeypatch.setenv("REID_DATABASE_URL", database_url)
    get_settings.cache_clear()

    def run(*argv: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exit_info:
            cli.admin(list(argv))
        out, err = capsys.readouterr()
        return exit_info.value.code, out, err

    yield run
    get_settings.cache_clear()


def test_only_a_store_that_keeps_crops_can_be_exported_and_every_export_is_audited(
    database_url, settings_for, start_app, helpers, cast, admin_cli, tmp_path: Path
):
    client = start_app(settings_for(database_url))  # REID_STORE_CROPS is off: only the store's flag counts
    kept = helpers.make_store(client, ["entrance", "toys"])
    other = helpers.make_store(client, ["entrance"])
    assert client.get(f"/stores/{kept['id']}", headers=helpers.admin).json()["keep_crops"] is False
    turned = client.patch(f"/stores/{kept['id']}", json={"keep_crops": True}, headers=helpers.admin)
    assert turned.status_code == 200 and turned.json()["keep_crops"] is True
    assert (
        client.patch(f"/stores/{kept['id']}", json={"keep_crops": None}, headers=helpers.admin).status_code
        == 422
    )

    one, two = cast.people[:2]
    posts = [
        (kept, "entrance", helpers.story_image(one, 0), "2026-11-25T10:00:00.250Z"),
        (kept, "toys", helpers.story_image(two, 1), "2026-11-25T10:05:00Z"),
        (kept, "toys", helpers.story_image(two, 2), "2026-11-25T13:00:00Z"),  # outside the window
        (other, "entrance", helpers.story_image(one, 3), "2026-11-25T10:10:00Z"),
    ]
    sightings = []
    for store, zone, image, when in posts:
        response = helpers.post_sighting(client, store, zone, image, when)
        assert response.status_code == 201, response.text
        sightings.append(response.json()["sightings"][0])
    assert (
        client.get(f"/sightings/{sightings[0]['sighting_id']}/crop", headers=kept["headers"]).status_code
        == 200
    )
    assert (
        client.get(f"/sightings/{sightings[3]['sighting_id']}/crop", headers=other["headers"]).status_code
        == 404
    )

    refused_dir = tmp_path / "refused"
    code, _, err = admin_cli("export-crops", str(other["id"]), *WINDOW, str(refused_dir), "--quiet")
    assert code == 1 and "does not keep crops" in err
    assert not refused_dir.exists()

    out = tmp_path / "crops"
    code, printed, _ = admin_cli("export-crops", str(kept["id"]), *WINDOW, str(out), "--quiet")
    assert code == 0, printed
    assert "delete the folder" in printed
    files = sorted(out.iterdir())
    assert [f.name for f in files] == sorted(f.name for f in files if EXPORT_NAME.match(f.stem))
    assert len(files) == 2
    named = {parse_export_name(f).camera: (f, parse_export_name(f).captured_at) for f in files}
    assert set(named) == {kept["cameras"]["entrance"], kept["cameras"]["toys"]}
    entrance_file, entrance_time = named[kept["cameras"]["entrance"]]
    assert entrance_time.isoformat() == "2026-11-25T10:00:00.250000+00:00"
    identities = {str(s[key]) for s in sightings for key in ("sighting_id", "visitor_id")}
    for path in files:
        assert not set(path.stem.split("_")) & identities
        with Image.open(path) as image:
            assert image.format == "PNG" and not image.info.get("exif") and not image.text
    assert np.array_equal(np.asarray(Image.open(entrance_file)), posts[0][2])
    assert read_unlabelled(out).cameras_known

    busy = admin_cli("export-crops", str(kept["id"]), *WINDOW, str(out), "--quiet")
    assert busy[0] == 1 and "not an empty folder" in busy[2]

    audit_other = client.get(f"/stores/{other['id']}/crop-exports", headers=helpers.admin).json()
    assert [(row["outcome"], row["crops"]) for row in audit_other] == [("refused", 0)]
    audit_kept = client.get(f"/stores/{kept['id']}/crop-exports", headers=helpers.admin).json()
    assert [(row["outcome"], row["crops"]) for row in audit_kept] == [("ok", 2)]
    assert audit_kept[0]["since"].startswith("2026-11-25T09:00:00") and audit_kept[0]["requested_by"]
    assert client.get(f"/stores/{kept['id']}/crop-exports", headers=kept["headers"]).status_code == 403
    assert admin_cli("export-crops", "987654", *WINDOW, str(tmp_path / "none"), "--quiet")[0] == 1


def test_the_global_setting_keeps_every_stores_crops(database_url, settings_for, start_app, helpers, cast):
    client = start_app(settings_for(database_url, store_crops=True))
    store = helpers.make_store(client, ["entrance"])
    image = helpers.story_image(cast.people[0], 0)
    posted = helpers.post_sighting(client, store, "entrance", image, "2026-11-25T10:00:00Z")
    sighting = posted.json()["sightings"][0]["sighting_id"]
    crop = client.get(f"/sightings/{sighting}/crop", headers=store["headers"])
    assert crop.status_code == 200
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(crop.content))), image)
