"""The schema comes only from the Alembic migrations, and they match the ORM models on both databases."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from service.db import alembic_config, migrate
from service.models import Base


def test_migrations_match_the_models_and_downgrade(database_url):
    engine = create_engine(database_url)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    command.downgrade(alembic_config(database_url), "base")
    assert not inspect(engine).has_table("sightings")
    migrate(database_url)
    assert inspect(engine).has_table("sightings")
    engine.dispose()
