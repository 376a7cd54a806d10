"""Store keys can be revoked and record their last use; every key (and the admin key) is rate limited."""

from __future__ import annotations

import logging

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from service.access.keys import hash_key
from service.access.rate_limit import DatabaseRateLimiter, MemoryRateLimiter
from service.storage.db import alembic_config, make_engine, make_session_factory, migrate
from service.stores import crud

WINDOW = {"start": "2026-11-25T09:00:00Z", "end": "2026-11-25T10:00:00Z"}


def density(client, headers):
    return client.get("/density", params=WINDOW, headers=headers)


def keys_of(client, helpers, store_id: int) -> list[dict]:
    response = client.get(f"/stores/{store_id}/keys", headers=helpers.admin)
    assert response.status_code == 200, response.text
    return response.json()


def new_key(client, helpers, store_id: int, name: str) -> dict:
    response = client.post(f"/stores/{store_id}/keys", json={"name": name}, headers=helpers.admin)
    assert response.status_code == 201, response.text
    return response.json()


def test_a_revoked_key_gets_401_while_other_keys_keep_working(client, helpers):
    store = helpers.make_store(client, ["entrance"])
    spare = new_key(client, helpers, store["id"], "spare")
    first = keys_of(client, helpers, store["id"])[0]
    assert density(client, store["headers"]).status_code == 200

    revoked = client.delete(f"/stores/{store['id']}/keys/{first['id']}", headers=helpers.admin)
    assert revoked.status_code == 204
    refused = density(client, store["headers"])
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/json")
    assert refused.json() == {"detail": "API key revoked"}
    assert density(client, {"X-API-Key": spare["key"]}).status_code == 200
    again = client.delete(f"/stores/{store['id']}/keys/{first['id']}", headers=helpers.admin)
    assert again.status_code == 204
    listed = {k["id"]: k for k in keys_of(client, helpers, store["id"])}
    assert listed[first["id"]]["revoked_at"] is not None
    assert listed[spare["id"]]["revoked_at"] is None


def test_revoking_is_admin_only_and_404_across_stores(client, helpers):
    store = helpers.make_store(client, ["entrance"])
    other = helpers.make_store(client, ["elsewhere"])
    key_id = keys_of(client, helpers, store["id"])[0]["id"]
    by_store = client.delete(f"/stores/{store['id']}/keys/{key_id}", headers=store["headers"])
    assert by_store.status_code == 403
    for path in (
        f"/stores/{other['id']}/keys/{key_id}",
        f"/stores/{store['id']}/keys/999999",
        f"/stores/999999/keys/{key_id}",
    ):
        response = client.delete(path, headers=helpers.admin)
        assert response.status_code == 404, path
        assert response.json()["detail"]
    assert density(client, store["headers"]).status_code == 200


def test_listing_shows_last_use_and_never_secrets(client, helpers):
    store = helpers.make_store(client, ["entrance"])
    secret = store["headers"]["X-API-Key"]
    [fresh] = keys_of(client, helpers, store["id"])
    assert fresh["created_at"] and fresh["last_used_at"] is None and fresh["revoked_at"] is None

    assert density(client, store["headers"]).status_code == 200
    [used] = keys_of(client, helpers, store["id"])
    assert used["last_used_at"] is not None
    assert used["last_used_at"] >= used["created_at"]
    assert density(client, store["headers"]).status_code == 200
    [again] = keys_of(client, helpers, store["id"])
    assert again["last_used_at"] == used["last_used_at"], "last_used_at is written at most once a minute"

    listing = client.get(f"/stores/{store['id']}/keys", headers=helpers.admin)
    assert secret not in listing.text
    assert not {"key", "key_hash", "secret"} & set(used)


def test_only_the_hash_of_a_key_is_stored(database_url, client, helpers):
    store = helpers.make_store(client, ["entrance"])
    secret = store["headers"]["X-API-Key"]
    engine = create_engine(database_url)
    with engine.connect() as connection:
        rows = [tuple(r) for r in connection.execute(text("SELECT * FROM api_keys"))]
    engine.dispose()
    assert [row for row in rows if hash_key(secret) in row]
    assert not [row for row in rows if any(secret in str(value) for value in row)]


def test_replicas_share_one_bucket_with_the_database_backend(database_url, settings_for, start_app, helpers):
    setup = start_app(settings_for(database_url))
    store = helpers.make_store(setup, ["entrance"])
    other = new_key(setup, helpers, store["id"], "other")
    replicas = [
        start_app(settings_for(database_url, rate_limit_per_minute=3, rate_limit_backend="database"))
        for _ in range(2)
    ]
    answers = [density(replicas[i % 2], store["headers"]).status_code for i in range(3)]
    assert answers == [200, 200, 200]
    for replica in replicas:
        assert_rate_limited(density(replica, store["headers"]))
    assert density(replicas[1], {"X-API-Key": other["key"]}).status_code == 200


@pytest.fixture
def limited(tmp_path, settings_for, start_app):
    """An app allowing 3 requests a minute per key, and two keys of one store made without the API."""
    url = f"sqlite:///{tmp_path / 'limited.db'}"
    migrate(url)
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        store = crud.create_store(session=session, name="Limited", timezone="UTC")
        secrets = [
            crud.create_key(session=session, store_id=store.id, name=name).secret for name in ("a", "b")
        ]
    engine.dispose()
    client = start_app(settings_for(url, rate_limit_per_minute=3))
    return client, [{"X-API-Key": secret} for secret in secrets]


def assert_rate_limited(response):
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["detail"].startswith("rate limit exceeded")
    assert int(response.headers["Retry-After"]) >= 1


def test_a_key_over_its_limit_gets_429_and_other_keys_do_not(limited, helpers):
    client, (first, second) = limited
    for _ in range(3):
        assert density(client, first).status_code == 200
    assert_rate_limited(density(client, first))
    assert density(client, second).status_code == 200
    for _ in range(3):
        assert client.get("/stores", headers=helpers.admin).status_code == 200
    assert_rate_limited(client.get("/stores", headers=helpers.admin))
    assert density(client, second).status_code == 200
    for _ in range(5):
        assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize("backend", ["memory", "database"])
def test_the_bucket_refills_at_the_configured_rate(backend, tmp_path):
    now = [1_800_000_000.0]
    if backend == "memory":
        limiter, off = MemoryRateLimiter(6, clock=lambda: now[0]), MemoryRateLimiter(0)
    else:
        url = f"sqlite:///{tmp_path / 'buckets.db'}"
        migrate(url)
        sessions = make_session_factory(make_engine(url))
        limiter, off = (
            DatabaseRateLimiter(sessions, 6, clock=lambda: now[0]),
            DatabaseRateLimiter(sessions, 0),
        )
    assert [limiter.take("k") for _ in range(6)] == [0] * 6
    assert limiter.take("k") == 10
    assert limiter.take("other") == 0
    now[0] += 10.0
    assert limiter.take("k") == 0
    assert limiter.take("k") == 10
    now[0] += 600.0
    assert [limiter.take("k") for _ in range(7)] == [0] * 6 + [10]
    assert off.take("k") == 0


OLD_ROWS = (
    "INSERT INTO stores (id, name, timezone, created_at) VALUES (1, 's', 'UTC', CURRENT_TIMESTAMP)",
    "INSERT INTO api_keys (store_id, name, prefix, key_hash, created_at) "
    "VALUES (1, 'old', 'abcdef012345', 'x', CURRENT_TIMESTAMP)",
)


def test_keys_made_before_the_usage_columns_survive_the_upgrade(database_url):
    command.downgrade(alembic_config(database_url), "0001")
    engine = create_engine(database_url)
    with engine.begin() as connection:
        for statement in OLD_ROWS:
            connection.execute(text(statement))
    migrate(database_url)
    with engine.connect() as connection:
        row = connection.execute(text("SELECT name, last_used_at, revoked_at FROM api_keys")).one()
    engine.dispose()
    assert tuple(row) == ("old", None, None)


def test_keys_never_reach_the_logs(client, helpers, caplog):
    caplog.set_level(logging.DEBUG)
    store = helpers.make_store(client, ["entrance"])
    secret = store["headers"]["X-API-Key"]
    assert density(client, store["headers"]).status_code == 200
    assert density(client, {"X-API-Key": secret + "x"}).status_code == 401
    assert client.get("/stores", headers={"X-API-Key": helpers.admin["X-API-Key"] + "x"}).status_code == 401
    assert client.get("/stores", headers=helpers.admin).status_code == 200
    settings = client.app.state.services.settings
    logged = caplog.text + repr(settings) + str(settings.model_dump())
    assert caplog.records
    for key in (helpers.admin["X-API-Key"], secret, secret.split("_", 2)[2]):
        assert key not in logged
