"""Backing up and restoring a SQLite database with SQLite's online backup API.

A backup is a consistent copy taken while the service runs (one read transaction; in WAL mode writers
are not blocked). A restore copies a backup over the database page by page under SQLite's write lock,
WAL included, then upgrades its schema to the current revision. Services that keep running notice
that their indexes no longer match the database at their next catch-up and rebuild them from SQL; a
service started later checks its saved indexes the same way. PostgreSQL is backed up and restored with
``pg_dump`` and ``pg_restore`` (README: Backups).
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from model.files import atomic_write
from service.common.errors import InvalidInputError, NotFoundError
from service.storage.db import SQLITE_BUSY_TIMEOUT_S, migrate

REQUIRED_TABLES = ("alembic_version", "sightings", "stores")


@dataclass(frozen=True)
class Copied:
    """A database file written by a backup or restore: where, its size, and the sightings it holds."""

    path: Path
    size: int
    sightings: int


def sqlite_file(url: str) -> Path:
    """The database file of a SQLite URL; InvalidInputError for any other database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        raise InvalidInputError(
            f"backup and restore work on SQLite; for {parsed.get_backend_name()} use pg_dump and "
            "pg_restore (README: Backups)"
        )
    if not parsed.database or parsed.database == ":memory:" or parsed.database.startswith("file:"):
        raise InvalidInputError(f"{url} is not a SQLite database file")
    return Path(parsed.database)


def _check_database(path: Path) -> int:
    """The number of sightings in a SQLite file that passes a quick check and has the service's tables."""
    try:
        with closing(sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S)) as connection:
            status = connection.execute("PRAGMA quick_check").fetchone()[0]
            tables = {
                row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            missing = [name for name in REQUIRED_TABLES if name not in tables]
            if status != "ok" or missing:
                raise InvalidInputError(
                    f"{path} is not a usable service database ({status}; missing {missing})"
                )
            return int(connection.execute("SELECT count(*) FROM sightings").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        raise InvalidInputError(f"{path} is not a SQLite database ({exc})") from exc


def _copy(source: Path, target: Path) -> None:
    with (
        closing(sqlite3.connect(source, timeout=SQLITE_BUSY_TIMEOUT_S)) as origin,
        closing(sqlite3.connect(target, timeout=SQLITE_BUSY_TIMEOUT_S)) as destination,
    ):
        origin.backup(destination)


def backup_sqlite(url: str, destination: Path) -> Copied:
    """Copy the live database to ``destination`` (written beside it and renamed into place)."""
    source = sqlite_file(url)
    destination = Path(destination)
    if not source.is_file():
        raise NotFoundError(f"no database at {source}")
    if destination.exists() and destination.resolve() == source.resolve():
        raise InvalidInputError("the backup must go to another file than the database")
    destination.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(destination, lambda tmp: _copy(source, tmp))
    return Copied(destination, destination.stat().st_size, _check_database(destination))


def restore_sqlite(url: str, backup: Path) -> Copied:
    """Replace the database's content with a backup's, then migrate it to the current schema."""
    target = sqlite_file(url)
    backup = Path(backup)
    if not backup.is_file():
        raise NotFoundError(f"no backup at {backup}")
    if target.exists() and backup.resolve() == target.resolve():
        raise InvalidInputError("the backup is the database itself")
    _check_database(backup)
    target.parent.mkdir(parents=True, exist_ok=True)
    _copy(backup, target)
    migrate(url)
    return Copied(target, target.stat().st_size, _check_database(target))
