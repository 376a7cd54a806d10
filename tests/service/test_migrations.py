"""The schema comes only from the Alembic migrations, and they match the ORM models on both databases."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from service.storage.db import alembic_config, migrate
from service.storage.models import Base


def test_migrations_match_the_models_and_downgrade(database_url):
    engine = create_engine(database_url)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    command.downgrade(alembic_config(database_url), "base")
    assert not inspect(engine).has_table("sightings")
    migrate(database_url)
    assert inspect(engine).has_table("sightings")
    engine.dispose()


ROWS_AT_0002 = (
    "INSERT INTO stores (id, name, timezone, created_at, ingest_seq)"
    " VALUES (1, 's', 'UTC', CURRENT_TIMESTAMP, 0)",
    "INSERT INTO zones (id, store_id, name) VALUES (1, 1, 'z')",
    "INSERT INTO cameras (id, store_id, zone_id, name) VALUES (1, 1, 1, 'c')",
    "INSERT INTO visitors (id, store_id, created_at)"
    " VALUES (1, 1, CURRENT_TIMESTAMP), (2, 1, CURRENT_TIMESTAMP)",
    "INSERT INTO sightings (id, store_id, zone_id, camera_id, visitor_id, captured_at, captured_ms,"
    " received_at, model_version, embedding) VALUES"
    " (1, 1, 1, 1, 1, CURRENT_TIMESTAMP, 0, CURRENT_TIMESTAMP, 'm', :vector),"
    " (2, 1, 1, 1, 2, CURRENT_TIMESTAMP, 0, CURRENT_TIMESTAMP, 'm', :vector)",
)
NEW_SIGHTING = (
    "INSERT INTO sightings (store_id, zone_id, camera_id, visitor_id, captured_at, captured_ms, received_at,"
    " model_version, embedding) VALUES (1, 1, 1, 1, CURRENT_TIMESTAMP, 0, CURRENT_TIMESTAMP, 'm', :vector)"
)


def test_upgrade_keeps_rows_and_deleted_ids_are_never_handed_out_again(database_url):
    command.downgrade(alembic_config(database_url), "0002")
    engine = create_engine(database_url)
    with engine.begin() as connection:
        for statement in ROWS_AT_0002:
            connection.execute(text(statement), {"vector": b"\0" * 8})
        if engine.dialect.name == "postgresql":
            for table in ("stores", "zones", "cameras", "visitors", "sightings"):
                connection.execute(text(f"SELECT setval('{table}_id_seq', (SELECT max(id) FROM {table}))"))
    migrate(database_url)
    with engine.begin() as connection:
        assert connection.execute(text("SELECT id, visitor_id FROM sightings ORDER BY id")).all() == [
            (1, 1),
            (2, 2),
        ]
        assert connection.execute(text("SELECT match_enabled FROM stores")).scalar_one() in (False, 0)
        connection.execute(text("DELETE FROM sightings WHERE id = 2"))
        connection.execute(text("DELETE FROM visitors WHERE id = 2"))
    with engine.begin() as connection:
        connection.execute(text(NEW_SIGHTING), {"vector": b"\0" * 8})
        new_id = connection.execute(text("SELECT max(id) FROM sightings")).scalar_one()
        connection.execute(text("INSERT INTO visitors (store_id, created_at) VALUES (1, CURRENT_TIMESTAMP)"))
        new_visitor = connection.execute(text("SELECT max(id) FROM visitors")).scalar_one()
    engine.dispose()
    assert new_id == 3 and new_visitor == 3
