"""Whether the database takes writes: failures seen on real writes, and checks for readiness.

A database can answer ``SELECT 1`` and still refuse every write: PostgreSQL switched read-only (or a
standby after a failover), a full disk, a file or volume made read-only. ``watch_writes`` listens to
the engine's errors and remembers the last write (an INSERT, UPDATE or DELETE, or a commit) that failed
for such a reason; lock waits, deadlocks and serialization conflicts are contention, not failure, and
are left out. A read-only error also marks the connection as lost, so the pool reconnects (and picks up
the database's current mode) instead of reusing a read-only session.

``WriteHealth.check`` is what readiness asks: after a recorded failure, one real committed write (an
UPDATE of Alembic's version row to itself) decides whether writes work again; otherwise a cheap check
that writes can start (PostgreSQL: not a standby and not read-only; SQLite: the database file, its WAL
files and folder are writable).
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, event, text
from sqlalchemy.engine import Connection, ExceptionContext
from sqlalchemy.exc import DBAPIError

from service.metrics import WRITE_FAILURES
from service.storage.db import SQLITE_BUSY_TIMEOUT_S

WRITE_STATEMENT = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)
READ_ONLY_SQLSTATE = "25006"
CONTENTION_SQLSTATES = ("40", "55P03", "57014")
SQLITE_CONTENTION = ("database is locked", "database table is locked")
PROBE_WRITE = "UPDATE alembic_version SET version_num = version_num"
PROBE_TIMEOUT_S = 2
MAX_REASON_CHARS = 200
COMMITTING = "reid_committing"
READ_ONLY_PREFIX = "read-only: "


@dataclass(frozen=True)
class WriteFailure:
    """The last write the database refused, and why."""

    at: datetime
    reason: str


def describe(error: BaseException) -> str:
    """A short, single-line reason: the error's class and the first line of its message."""
    first = (str(error).strip().splitlines() or [""])[0]
    return f"{type(error).__name__}: {first}"[:MAX_REASON_CHARS]


def _sqlstate(error: BaseException | None) -> str:
    return str(getattr(error, "sqlstate", "") or "")


def is_contention(error: BaseException | None) -> bool:
    """Lock waits, deadlocks, serialization conflicts and cancelled statements: retry, not failure."""
    state = _sqlstate(error)
    return state.startswith(CONTENTION_SQLSTATES) or any(text in str(error) for text in SQLITE_CONTENTION)


def refuses_writes(error: BaseException) -> bool:
    """Whether a database error says the database is read-only (PostgreSQL's read-only transaction)."""
    original = error.orig if isinstance(error, DBAPIError) else error
    return _sqlstate(original) == READ_ONLY_SQLSTATE


class WriteHealth:
    """The last failed write (until a write succeeds again) and the readiness check built on it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failure: WriteFailure | None = None

    @property
    def failure(self) -> WriteFailure | None:
        """The last write failure not yet followed by a successful probe."""
        with self._lock:
            return self._failure

    def record(self, reason: str) -> None:
        """Remember a failed write."""
        WRITE_FAILURES.inc()
        with self._lock:
            self._failure = WriteFailure(datetime.now(UTC), reason)

    def clear(self) -> None:
        """Writes work again."""
        with self._lock:
            self._failure = None

    def check(self, engine: Engine) -> str | None:
        """None when writes work, else why not; after a failed write, a committed write decides."""
        if self.failure is None:
            return _cannot_start_writes(engine)
        problem = _probe_write(engine)
        if problem is not None and problem.startswith(READ_ONLY_PREFIX):
            problem = _probe_write(engine)  # that session was read-only and is gone: one fresh try
        if problem is None:
            self.clear()
        return problem


def watch_writes(engine: Engine) -> WriteHealth:
    """Record the engine's failed writes in a new ``WriteHealth``."""
    health = WriteHealth()
    dbapi = engine.dialect.dbapi
    failures = (dbapi.OperationalError, dbapi.InternalError) if dbapi is not None else ()

    def committing(connection: Connection) -> None:
        connection.info[COMMITTING] = True

    def began(connection: Connection) -> None:
        connection.info.pop(COMMITTING, None)

    def failed(context: ExceptionContext) -> None:
        error = context.original_exception
        if context.is_disconnect or not isinstance(error, failures) or is_contention(error):
            return
        statement = context.statement
        if statement is None:
            connection = context.connection
            if connection is None or not connection.info.get(COMMITTING):
                return
        elif not WRITE_STATEMENT.match(statement):
            return
        health.record(describe(error))
        if refuses_writes(error):
            context.is_disconnect = True

    event.listen(engine, "commit", committing)
    event.listen(engine, "begin", began)
    event.listen(engine, "handle_error", failed)
    return health


def _probe_write(engine: Engine) -> str | None:
    """Commit one harmless write (Alembic's version row set to itself); why it failed, or None."""
    dialect = engine.dialect.name
    failure: DBAPIError | None = None
    try:
        with engine.connect() as connection:
            if dialect == "sqlite":
                connection.exec_driver_sql(f"PRAGMA busy_timeout = {PROBE_TIMEOUT_S * 1000}")
            try:
                if dialect == "postgresql":
                    connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{PROBE_TIMEOUT_S}s'")
                connection.execute(text(PROBE_WRITE))
                connection.commit()
            except DBAPIError as exc:
                failure = exc
                connection.rollback()
            if dialect == "sqlite":
                connection.exec_driver_sql(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_S * 1000}")
    except DBAPIError as exc:
        failure = failure or exc
    if failure is None or is_contention(failure.orig):
        return None
    return READ_ONLY_PREFIX + describe(failure.orig) if refuses_writes(failure) else describe(failure.orig)


def _cannot_start_writes(engine: Engine) -> str | None:
    """Why no write could start now (read-only server or files), or None; no write is made."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            standby, read_only = connection.execute(
                text("SELECT pg_is_in_recovery(), current_setting('transaction_read_only')")
            ).one()
            if standby or read_only == "on":
                connection.invalidate()  # a session keeps its mode: the next check opens a fresh one
        if standby:
            return "the database server is a read-only standby"
        return "the database is read-only (transaction_read_only is on)" if read_only == "on" else None
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        path = Path(database)
        for candidate in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            if candidate.exists() and not os.access(candidate, os.W_OK):
                return f"the database file {candidate.name} is read-only"
        if not os.access(path.parent, os.W_OK):
            return "the database's folder is read-only"
    return None
