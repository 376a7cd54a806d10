"""``reid-admin``: migrate, the idempotent demo, keys; and the untrained-model fallback."""

from __future__ import annotations

import io
import stat

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service import cli
from service.app import create_app
from service.embedding.model import load_model
from service.settings import Settings, get_settings


@pytest.fixture
def demo_env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REID_ADMIN_KEY", raising=False)
    monkeypatch.setenv("REID_DATABASE_URL", f"sqlite:///{tmp_path / 'data' / 'reid.db'}")
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def _photo() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((64, 32, 3), 128, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def run_admin(argv, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        cli.admin(argv)
    return exit_info.value.code, capsys.readouterr().out


def test_demo_is_idempotent_and_keys_work(demo_env, capsys):
    code, out = run_admin(["demo"], capsys)
    assert code == 0
    key_file = demo_env / "data" / "admin_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    admin_key = key_file.read_text().strip()
    assert admin_key in out
    store_key = out.strip().split()[-1]
    assert store_key.startswith("reid_")

    code, again = run_admin(["demo"], capsys)
    assert code == 0
    assert "create-key 1" in again and "reid_" not in again

    code, created = run_admin(["create-key", "1"], capsys)
    assert code == 0
    new_key = created.strip().split()[-1]
    assert run_admin(["create-key", "42"], capsys)[0] == 1
    assert run_admin(["person-search", "1", "off"], capsys) == (0, "person search for store 1 is off\n")
    assert run_admin(["person-search", "42", "on"], capsys)[0] == 1

    settings = cli._with_admin_key(get_settings())
    settings = settings.model_copy(update={"untrained_backbone": "resnet18", "index_dir": demo_env / "idx"})
    with TestClient(create_app(settings)) as client:
        assert client.get("/stores", headers={"X-API-Key": admin_key}).json()[0]["name"] == cli.DEMO_STORE
        for key in (store_key, new_key):
            zones = client.get(
                "/density",
                params={"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z", "bucket": "P1D"},
                headers={"X-API-Key": key},
            )
            assert zones.status_code == 200
            assert [z["name"] for z in zones.json()["zones"]] == list(cli.DEMO_LAYOUT)
        stores = client.get("/stores", headers={"X-API-Key": admin_key}).json()
        assert stores[0]["match_enabled"] is False
        photo = {"image": ("p.png", _photo(), "image/png")}
        search = client.post("/match", data={"case_id": "c"}, files=photo, headers={"X-API-Key": store_key})
        assert search.status_code == 403
    assert run_admin(["demo"], capsys)[0] == 0
    with TestClient(create_app(settings)) as client:
        search = client.post("/match", data={"case_id": "c"}, files=photo, headers={"X-API-Key": store_key})
        assert search.status_code == 200, search.text
        ready = client.get("/readyz").json()
        assert ready["model"]["trained"] is False
        assert "UNTRAINED" in ready["warning"]


def test_untrained_fallback_is_deterministic(tmp_path):
    settings = Settings(_env_file=None, model_dir=tmp_path / "missing", untrained_backbone="resnet18")
    first, second = load_model(settings), load_model(settings)
    assert not first.trained and first.warning
    assert first.embedder.version == "untrained-resnet18"
    assert first.embedder.input_size == (256, 128)
    image = np.full((128, 64, 3), 90, dtype=np.uint8)
    assert np.allclose(first.embedder.embed([image]), second.embedder.embed([image]), atol=1e-5)
