"""What an operator does to a running service: restore a backup, live with a damaged index folder, change
the model, watch readiness while the database refuses writes, and read /metrics without a key.

Every test runs on SQLite and on PostgreSQL. A backup is ``reid-admin backup``/``restore`` on SQLite and a
server-side copy (``CREATE DATABASE ... TEMPLATE``, what pg_dump/pg_restore give back) on PostgreSQL.
"""

from __future__ import annotations

import json
import logging
import resource
import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import faiss
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from model import load_embedder
from service import cli
from service.app import create_app
from service.embedding.model import LoadedModel
from service.settings import Settings, get_settings
from service.storage.models import Sighting

DAY = "2026-11-25"


# ---- helpers -------------------------------------------------------------------------------------------


def scalar(url: str, statement) -> int:
    """One number read straight from the database."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(statement).scalar_one() or 0)
    finally:
        engine.dispose()


def searchable_in_sql(url: str, version: str) -> int:
    """Sightings in SQL the given model can search."""
    return scalar(url, select(func.count()).select_from(Sighting).where(Sighting.model_version == version))


def post(client, helpers, store, person: int, view: int, zone: str, minute: int) -> dict:
    """Post one photo; returns the acknowledged sighting."""
    response = helpers.post_sighting(
        client, store, zone, helpers.story_image(person, view), f"{DAY}T09:{minute:02d}:00Z"
    )
    assert response.status_code == 201, response.text
    return response.json()["sightings"][0]


def found_ids(client, helpers, store, person: int, **fields) -> set[int]:
    """Sighting ids /match returns for a fresh photo of the person."""
    response = helpers.post_match(client, store, helpers.story_image(person, 4), top_k=20, **fields)
    assert response.status_code == 200, response.text
    return {m["sighting_id"] for m in response.json()["matches"]}


def ready(client) -> dict:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    return response.json()


def run_admin(argv: list[str]) -> int:
    """``reid-admin ARGV`` in this process; its exit code."""
    with pytest.raises(SystemExit) as exit_info:
        cli.admin(argv)
    return exit_info.value.code


@pytest.fixture
def admin_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Point ``reid-admin`` at a database (and model, index folder) through its REID_* variables."""

    def point(url: str, **values: str) -> None:
        monkeypatch.setenv("REID_DATABASE_URL", url)
        monkeypatch.setenv("REID_DEVICE", "cpu")
        for name, value in values.items():
            monkeypatch.setenv(f"REID_{name.upper()}", str(value))
        get_settings.cache_clear()

    yield point
    get_settings.cache_clear()


@pytest.fixture
def start_with() -> Iterator[Callable[[Settings, LoadedModel], TestClient]]:
    """Start app instances with a chosen model; all are shut down at teardown."""
    clients: list[TestClient] = []

    def start(settings: Settings, model: LoadedModel) -> TestClient:
        client = TestClient(create_app(settings, model))
        client.__enter__()
        clients.append(client)
        return client

    yield start
    for client in reversed(clients):
        client.__exit__(None, None, None)


def pg_name(url: str) -> str:
    return make_url(url).database or ""


def pg_admin(pg_admin_url: str):
    return create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")


# ---- restoring a backup ------------------------------------------------------------------------------


def backup(url: str, folder: Path, pg_admin_url: str, admin_env) -> str:
    """Take a backup of a stopped service's database; returns what ``restore`` needs."""
    if url.startswith("sqlite"):
        admin_env(url)
        target = folder / "backup.db"
        assert run_admin(["backup", str(target)]) == 0
        return str(target)
    copy = f"{pg_name(url)}_bak"
    engine = pg_admin(pg_admin_url)
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{copy}" TEMPLATE "{pg_name(url)}"'))
    engine.dispose()
    return copy


def restore(url: str, saved: str, pg_admin_url: str, admin_env) -> None:
    """Put the backup back in place of the database."""
    if url.startswith("sqlite"):
        admin_env(url)
        assert run_admin(["restore", saved]) == 2  # asks for --yes first
        assert run_admin(["restore", saved, "--yes"]) == 0
        return
    live = pg_name(url)
    engine = pg_admin(pg_admin_url)
    with engine.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{live}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{live}" TEMPLATE "{saved}"'))
        connection.execute(text(f'DROP DATABASE "{saved}"'))
    engine.dispose()


def test_an_older_backup_under_a_saved_index_is_noticed_and_nothing_posted_after_is_lost(
    database_url, settings_for, start_app, helpers, cast, loaded_model, pg_admin_url, admin_env, tmp_path
):
    settings = settings_for(database_url)
    version = loaded_model.embedder.version
    first = start_app(settings)
    store = helpers.make_store(first, ["entrance", "toys"])
    p0, p1, p2, p3 = cast.people[:4]
    post(first, helpers, store, p0, 0, "entrance", 0)
    post(first, helpers, store, p0, 1, "toys", 4)
    first.__exit__(None, None, None)
    saved = backup(database_url, tmp_path, pg_admin_url, admin_env)

    second = start_app(settings)
    lost = [
        post(second, helpers, store, p1, 0, "entrance", 10),
        post(second, helpers, store, p1, 1, "toys", 14),
    ]
    lost.append(post(second, helpers, store, p2, 0, "entrance", 20))
    second.__exit__(None, None, None)  # saves an index that is ahead of the backup

    restore(database_url, saved, pg_admin_url, admin_env)
    third = start_app(settings)
    indexes = ready(third)["indexes"]
    assert (indexes["loaded_from_disk"], indexes["rebuilt_from_sql"]) == (0, 1)
    assert indexes["vectors"] == searchable_in_sql(database_url, version) == 2

    after = [
        post(third, helpers, store, p3, 0, "entrance", 30),
        post(third, helpers, store, p3, 1, "toys", 34),
    ]
    after.append(post(third, helpers, store, p2, 2, "toys", 24))
    assert {s["sighting_id"] for s in after} & {s["sighting_id"] for s in lost}, "ids were not reused"
    same = {"min_similarity": cast.threshold}  # the person's own sightings, no one else's
    assert found_ids(third, helpers, store, p3, **same) == {after[0]["sighting_id"], after[1]["sighting_id"]}
    assert found_ids(third, helpers, store, p2, **same) == {after[2]["sighting_id"]}
    assert found_ids(third, helpers, store, p1, **same) == set()
    assert ready(third)["indexes"]["vectors"] == searchable_in_sql(database_url, version) == 5
    third.__exit__(None, None, None)

    fourth = start_app(settings)  # what the third saved belongs to the restored database
    assert ready(fourth)["indexes"]["loaded_from_disk"] == 1
    assert found_ids(fourth, helpers, store, p3, **same) == {s["sighting_id"] for s in after[:2]}


def rewind(url: str, sightings: int, visitors: int) -> None:
    """What a restore under a running PostgreSQL service does: rows and sequences go back."""
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM sightings WHERE id > :n"), {"n": sightings})
        connection.execute(text("DELETE FROM visitors WHERE id > :n"), {"n": visitors})
        for table, value in (("sightings", sightings), ("visitors", visitors)):
            connection.execute(
                text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), :v)"), {"v": value}
            )
    engine.dispose()


def test_a_restore_under_a_running_service_is_noticed_at_its_next_catch_up(
    database_url, settings_for, start_app, helpers, cast, loaded_model, admin_env, tmp_path
):
    version = loaded_model.embedder.version
    client = start_app(settings_for(database_url))
    store = helpers.make_store(client, ["entrance", "toys"])
    p0, p1, p2 = cast.people[:3]
    kept = post(client, helpers, store, p0, 0, "entrance", 0)
    if database_url.startswith("sqlite"):
        admin_env(database_url)
        assert run_admin(["backup", str(tmp_path / "live.db")]) == 0  # while serving
    lost = [post(client, helpers, store, p1, v, "toys", 10 + v) for v in range(3)]
    assert ready(client)["indexes"]["vectors"] == 4
    if database_url.startswith("sqlite"):
        assert run_admin(["restore", str(tmp_path / "live.db"), "--yes"]) == 0  # under the running service
    else:
        rewind(database_url, kept["sighting_id"], kept["visitor_id"])

    after = [post(client, helpers, store, p2, v, "entrance", 20 + v) for v in range(2)]
    assert {s["sighting_id"] for s in after} <= {s["sighting_id"] for s in lost}  # the same ids again
    same = {"min_similarity": cast.threshold}  # the person's own sightings, no one else's
    assert found_ids(client, helpers, store, p2, **same) == {s["sighting_id"] for s in after}
    assert found_ids(client, helpers, store, p1, **same) == set()
    status = ready(client)["indexes"]
    assert status["rebuilt_while_running"] == 1
    assert status["vectors"] == searchable_in_sql(database_url, version) == 3


def test_reid_admin_backup_explains_itself_on_postgresql(pg_databases, admin_env, tmp_path, capsys):
    admin_env(pg_databases())
    assert run_admin(["backup", str(tmp_path / "x.db")]) == 1
    assert "pg_dump" in capsys.readouterr().err


# ---- a damaged index folder ------------------------------------------------------------------------


def _json(value) -> Callable[[Path], None]:
    return lambda path: path.write_text(json.dumps(value))


def _edit(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))

    return damage


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: max(1, path.stat().st_size // 2)])


def _garbage(path: Path) -> None:
    path.write_bytes(b"\x00not what was saved\xff" * 8)


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


def _arrays(**change) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        with np.load(path) as saved:
            arrays = {key: saved[key] for key in saved.files}
        for key, value in change.items():
            if value is None:
                arrays.pop(key)
            else:
                arrays[key] = value(arrays[key])
        with path.open("wb") as handle:
            np.savez(handle, **arrays)

    return damage


def _faiss(make: Callable[[faiss.Index], faiss.Index]) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        faiss.write_index(make(faiss.read_index(str(path))), str(path))

    return damage


def _other_ids(index: faiss.Index) -> faiss.Index:
    inner = faiss.downcast_index(index.index)
    vectors = faiss.rev_swig_ptr(inner.get_xb(), inner.ntotal * inner.d).reshape(inner.ntotal, inner.d)
    moved = faiss.IndexIDMap2(faiss.IndexFlatIP(inner.d))
    moved.add_with_ids(np.array(vectors), np.arange(9000, 9000 + inner.ntotal))
    return moved


def _stray(name: str, content: bytes) -> Callable[[Path], None]:
    return lambda path: (path.parent / name).write_bytes(content)


WATERMARK, SHARDS, INDEX, ARRAYS = "watermark.json", "shards.json", "day_*.faiss", "day_*.npz"
REBUILT, LOADED = True, False
DAMAGES: dict[str, tuple[str, Callable[[Path], None], bool]] = {
    "watermark: []": (WATERMARK, _json([]), REBUILT),
    "watermark: null": (WATERMARK, _json(None), REBUILT),
    "watermark: {}": (WATERMARK, _json({}), REBUILT),
    "watermark: a string": (WATERMARK, _json("12"), REBUILT),
    "watermark: empty file": (WATERMARK, _empty, REBUILT),
    "watermark: garbage": (WATERMARK, _garbage, REBUILT),
    "watermark: truncated": (WATERMARK, _truncate, REBUILT),
    "watermark: a folder": (WATERMARK, _folder, REBUILT),
    "watermark: no watermark": (WATERMARK, _edit(lambda m: m.pop("watermark")), REBUILT),
    "watermark: watermark as text": (
        WATERMARK,
        _edit(lambda m: m.update(watermark=str(m["watermark"]))),
        REBUILT,
    ),
    "watermark: watermark true": (WATERMARK, _edit(lambda m: m.update(watermark=True)), REBUILT),
    "watermark: negative": (WATERMARK, _edit(lambda m: m.update(watermark=-1)), REBUILT),
    "watermark: far ahead of SQL": (WATERMARK, _edit(lambda m: m.update(watermark=10**9)), REBUILT),
    "watermark: old format": (WATERMARK, _edit(lambda m: m.pop("format")), REBUILT),
    "watermark: no anchors": (WATERMARK, _edit(lambda m: m.pop("anchors")), REBUILT),
    "watermark: anchors null": (WATERMARK, _edit(lambda m: m.update(anchors=None)), REBUILT),
    "watermark: anchor of one field": (WATERMARK, _edit(lambda m: m.update(anchors=[[1]])), REBUILT),
    "watermark: anchor of another row": (
        WATERMARK,
        _edit(lambda m: m.update(anchors=[[a[0], "0" * 16] for a in m["anchors"]])),
        REBUILT,
    ),
    "watermark: another model": (WATERMARK, _edit(lambda m: m.update(model_version="other")), REBUILT),
    "shards: []": (SHARDS, _json([]), REBUILT),
    "shards: null": (SHARDS, _json(None), REBUILT),
    "shards: garbage": (SHARDS, _garbage, REBUILT),
    "shards: empty file": (SHARDS, _empty, REBUILT),
    "shards: no days": (SHARDS, _edit(lambda m: m.pop("days")), REBUILT),
    "shards: days as text": (SHARDS, _edit(lambda m: m.update(days=[str(d) for d in m["days"]])), REBUILT),
    "shards: a null day": (SHARDS, _edit(lambda m: m.update(days=[None])), REBUILT),
    "shards: a day never saved": (SHARDS, _edit(lambda m: m.update(days=[*m["days"], 1])), REBUILT),
    "shards: no day at all": (SHARDS, _edit(lambda m: m.update(days=[])), REBUILT),
    "shards: wrong dim": (SHARDS, _edit(lambda m: m.update(dim=m["dim"] + 1)), REBUILT),
    "shards: dim as text": (SHARDS, _edit(lambda m: m.update(dim=str(m["dim"]))), REBUILT),
    "index: truncated": (INDEX, _truncate, REBUILT),
    "index: garbage": (INDEX, _garbage, REBUILT),
    "index: empty file": (INDEX, _empty, REBUILT),
    "index: without ids": (INDEX, _faiss(lambda i: faiss.IndexFlatIP(i.d)), REBUILT),
    "index: other ids": (INDEX, _faiss(_other_ids), REBUILT),
    "index: another dim": (INDEX, _faiss(lambda i: faiss.IndexIDMap2(faiss.IndexFlatIP(i.d + 1))), REBUILT),
    "arrays: truncated": (ARRAYS, _truncate, REBUILT),
    "arrays: garbage": (ARRAYS, _garbage, REBUILT),
    "arrays: no ids": (ARRAYS, _arrays(ids=None), REBUILT),
    "arrays: ids as floats": (ARRAYS, _arrays(ids=lambda a: a.astype(np.float32)), REBUILT),
    "arrays: ids in a matrix": (ARRAYS, _arrays(ids=lambda a: a[None]), REBUILT),
    "arrays: ids reversed": (ARRAYS, _arrays(ids=lambda a: a[::-1]), REBUILT),
    "arrays: a time missing": (ARRAYS, _arrays(ms=lambda a: a[:-1]), REBUILT),
    "arrays: times of another day": (ARRAYS, _arrays(ms=lambda a: a + 86_400_000), REBUILT),
    "stray: a shard named by no number": (SHARDS, _stray("day_x.faiss", b"junk"), LOADED),
    "stray: a shard the manifest does not list": (SHARDS, _stray("day_7.npz", b"junk"), LOADED),
}


def test_every_damaged_index_file_means_a_rebuild_never_a_failed_start(
    database_url, settings_for, start_app, helpers, cast, tmp_path
):
    settings = settings_for(database_url)
    client = start_app(settings)
    store = helpers.make_store(client, ["entrance", "toys"])
    for index, person in enumerate(cast.people[:3]):
        post(client, helpers, store, person, 0, "entrance", index * 10)
        post(client, helpers, store, person, 1, "toys", index * 10 + 4)
    before = found_ids(client, helpers, store, cast.people[0])
    client.__exit__(None, None, None)
    pristine = tmp_path / "pristine"
    shutil.copytree(settings.index_dir, pristine)

    outcomes = {}
    for name, (pattern, damage, rebuilt) in DAMAGES.items():
        shutil.rmtree(settings.index_dir)
        shutil.copytree(pristine, settings.index_dir)
        targets = sorted(settings.index_dir.rglob(pattern))
        assert targets, f"{name}: nothing saved matches {pattern}"
        for path in targets:
            damage(path)
        restarted = start_app(settings)
        indexes = ready(restarted)["indexes"]
        outcomes[name] = (
            indexes["rebuilt_from_sql"] == int(rebuilt),
            indexes["vectors"] == 6,
            found_ids(restarted, helpers, store, cast.people[0]) == before,
        )
        restarted.__exit__(None, None, None)  # saving over whatever is there works too
    assert {name: o for name, o in outcomes.items() if o != (True, True, True)} == {}


# ---- changing the model ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def next_model_dir(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new export of the same network under another version, as a retrained export would be."""
    folder = tmp_path_factory.mktemp("next-model")
    for item in model_dir.iterdir():
        if item.name != "model.json":
            (folder / item.name).symlink_to(item.resolve())
    metadata = json.loads((model_dir / "model.json").read_text())
    metadata["version"] = "next-model-v2"
    (folder / "model.json").write_text(json.dumps(metadata))
    return folder


def test_a_new_model_says_what_it_cannot_search_and_reembed_brings_it_back(
    database_url, settings_for, start_app, start_with, helpers, cast, next_model_dir, admin_env, caplog
):
    settings = settings_for(database_url, store_crops=True)
    old = start_app(settings)
    store = helpers.make_store(old, ["entrance", "toys"])
    p0, p1, p2, p3 = cast.people[:4]
    first = {
        p: [post(old, helpers, store, p, v, z, i * 10 + v) for v, z in ((0, "entrance"), (1, "toys"))]
        for i, p in enumerate((p0, p1, p2))
    }
    old_version = old.get("/readyz").json()["model"]["version"]
    old.__exit__(None, None, None)

    new_model = LoadedModel(load_embedder(next_model_dir, device="cpu"), trained=True)
    version = new_model.embedder.version
    assert version == "next-model-v2" != old_version
    with caplog.at_level(logging.INFO, logger="service.vectors.sync"):
        client = start_with(settings, new_model)
    assert any("6 sightings were embedded by other model" in r.message for r in caplog.records)
    sightings = ready(client)["sightings"]
    assert sightings["by_model"] == {version: 0, old_version: 6}
    assert (sightings["searchable"], sightings["unsearchable"]) == (0, 6)

    answer = helpers.post_match(client, store, helpers.story_image(p0, 4)).json()
    assert (answer["matches"], answer["other_model_sightings"]) == ([], 6)
    in_toys = {"zone_id": store["zones"]["toys"]}
    assert (
        helpers.post_match(client, store, helpers.story_image(p0, 4), **in_toys).json()[
            "other_model_sightings"
        ]
        == 3
    )
    later = {"since": f"{DAY}T10:00:00Z"}
    assert (
        helpers.post_match(client, store, helpers.story_image(p0, 4), **later).json()["other_model_sightings"]
        == 0
    )
    rejoined = post(client, helpers, store, p0, 2, "entrance", 30)
    assert rejoined["new_visitor"]  # the old model's sightings cannot be linked to

    admin_env(database_url, model_dir=next_model_dir)
    assert run_admin(["reembed", "--batch-size", "2", "--limit", "3", "--quiet"]) == 0
    found_ids(client, helpers, store, p0)  # a search catches the store up
    sightings = ready(client)["sightings"]
    assert (sightings["searchable"], sightings["unsearchable"]) == (4, 3)

    during: list[int] = []
    worker = threading.Thread(target=lambda: during.append(run_admin(["reembed", "--batch-size", "1"])))
    worker.start()
    posted = [post(client, helpers, store, p3, v, "toys", 40 + v) for v in range(3)]
    worker.join(timeout=120)
    assert during == [0]

    assert {s["sighting_id"] for s in posted} <= found_ids(client, helpers, store, p3)
    sightings = ready(client)["sightings"]
    assert (sightings["searchable"], sightings["unsearchable"]) == (10, 0)
    assert ready(client)["indexes"]["vectors"] == searchable_in_sql(database_url, version) == 10
    for person, rows in first.items():
        answer = helpers.post_match(client, store, helpers.story_image(person, 4)).json()
        assert answer["other_model_sightings"] == 0
        same = [m for m in answer["matches"] if m["visitor_id"] == rows[0]["visitor_id"]]
        assert len(same) == 2, person  # both re-embedded, still with their visitor
    assert scalar(database_url, text("SELECT count(*) FROM sighting_crops")) == 10  # every crop kept
    gone = first[p0][0]["sighting_id"]
    assert client.get(f"/sightings/{gone}/crop", headers=store["headers"]).status_code == 404


# ---- readiness when writes fail --------------------------------------------------------------------


@contextmanager
def writes_fail(url: str, pg_admin_url: str, database_file: Path) -> Iterator[None]:
    """PostgreSQL: the database turns read-only (and its sessions are cut); SQLite: the disk is full."""
    if url.startswith("sqlite"):
        sizes = [p.stat().st_size for p in database_file.parent.glob(database_file.name + "*")]
        handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max(4096, min(sizes)), hard))
        try:
            yield
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            signal.signal(signal.SIGXFSZ, handler)
        return
    name = pg_name(url)
    engine = pg_admin(pg_admin_url)
    cut = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"
    with engine.connect() as connection:
        connection.execute(text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
        connection.execute(text(cut), {"n": name})
    try:
        yield
    finally:
        with engine.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" RESET default_transaction_read_only'))
        engine.dispose()


def test_readiness_fails_while_the_database_refuses_writes_and_recovers(
    database_url, settings_for, start_app, helpers, cast, pg_admin_url, tmp_path
):
    client = start_app(settings_for(database_url))
    store = helpers.make_store(client, ["entrance"])
    post(client, helpers, store, cast.people[0], 0, "entrance", 0)
    assert ready(client)["writes"] == "ok"

    with writes_fail(database_url, pg_admin_url, tmp_path / "reid.db"):
        if database_url.startswith("postgresql"):  # read-only shows before any write fails
            early = client.get("/readyz")
            assert early.status_code == 503 and "read-only" in early.json()["reason"]
        refused = helpers.post_sighting(
            client, store, "entrance", helpers.story_image(cast.people[1], 0), f"{DAY}T09:10:00Z"
        )
        assert refused.status_code == 503, refused.text
        assert refused.json()["detail"].startswith("database unavailable")
        answer = client.get("/readyz")
        assert answer.status_code == 503
        body = answer.json()
        assert (body["status"], body["database"]) == ("not ready", "ok")
        assert body["reason"].startswith("database refuses writes") and body["writes"].startswith("failing")
        assert client.get("/healthz").status_code == 200

    assert ready(client)["writes"] == "ok"
    post(client, helpers, store, cast.people[1], 0, "entrance", 12)


# ---- what /metrics shows -------------------------------------------------------------------------------


def test_metrics_show_per_store_series_only_when_the_setting_asks(
    database_url, settings_for, start_app, helpers, cast, tmp_path
):
    client = start_app(settings_for(database_url))
    store = helpers.make_store(client, ["entrance"])
    post(client, helpers, store, cast.people[0], 0, "entrance", 0)
    public = client.get("/metrics").text
    assert 'store="' not in public
    total = [line for line in public.splitlines() if line.startswith("reid_index_vectors ")]
    assert total and float(total[0].split()[1]) >= 1

    shown = start_app(settings_for(database_url, index_dir=tmp_path / "other", metrics_per_store=True))
    text_ = shown.get("/metrics").text
    assert f'reid_index_store_vectors{{store="{store["id"]}"}} 1.0' in text_
    assert "reid_index_vectors " in text_
