"""Command-line entry points: ``reid-serve`` (uvicorn) and ``reid-admin`` (migrate, stores, keys, indexes)."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
import time

from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.common.errors import NotFoundError
from service.privacy.retention import purge_expired
from service.settings import Settings, get_settings
from service.storage.db import make_engine, make_session_factory, migrate
from service.storage.models import Store
from service.stores import crud

DEMO_STORE = "Demo store"
DEMO_LAYOUT = {
    "entrance": ["entrance-cam"],
    "aisles": ["aisle-cam-1", "aisle-cam-2"],
    "checkout": ["till-cam"],
}
log = logging.getLogger("service.cli")


def serve(argv: list[str] | None = None) -> None:
    """Run the API with uvicorn on the configured host and port."""
    import uvicorn

    settings = get_settings()
    parser = argparse.ArgumentParser(prog="reid-serve", description="Serve the re-id retail API.")
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.port)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = _with_admin_key(settings)
    from service.app import create_app

    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level)


def _with_admin_key(settings: Settings) -> Settings:
    """Use the admin key from ``admin_key_file`` when ``REID_ADMIN_KEY`` is unset."""
    if settings.admin_key is None and settings.admin_key_file.is_file():
        key = settings.admin_key_file.read_text().strip()
        return settings.model_copy(update={"admin_key": SecretStr(key)})
    return settings


def _sessions(settings: Settings):
    return make_session_factory(make_engine(settings.database_url))


def cmd_migrate(settings: Settings, _: argparse.Namespace) -> int:
    """Upgrade the schema to the latest revision."""
    migrate(settings.database_url)
    print(f"database at {settings.database_url} is up to date")
    return 0


def create_layout(session: Session, store_id: int, layout: dict[str, list[str]]) -> None:
    """Add zones, each with its cameras, to a store."""
    for zone_name, cameras in layout.items():
        zone = crud.create_zone(session=session, store_id=store_id, name=zone_name)
        for camera_name in cameras:
            crud.create_camera(session=session, store_id=store_id, zone_id=zone.id, name=camera_name)


def cmd_create_store(settings: Settings, args: argparse.Namespace) -> int:
    """Create a store with optional zones (each with one camera) and print its first key."""
    with _sessions(settings)() as session:
        store = crud.create_store(
            session=session, name=args.name, timezone=args.timezone, match_enabled=args.enable_person_search
        )
        create_layout(session, store.id, {zone: [f"{zone}-cam"] for zone in args.zone or []})
        new = crud.create_key(session=session, store_id=store.id, name="default")
    print(f"store {store.id} created; its key (shown once): {new.secret}")
    return 0


def cmd_create_key(settings: Settings, args: argparse.Namespace) -> int:
    """Create a new key for a store and print it (shown once)."""
    try:
        with _sessions(settings)() as session:
            new = crud.create_key(session=session, store_id=args.store_id, name=args.name)
    except NotFoundError as exc:
        print(exc.detail, file=sys.stderr)
        return 1
    print(f"new key for store {args.store_id} (shown once): {new.secret}")
    return 0


def cmd_person_search(settings: Settings, args: argparse.Namespace) -> int:
    """Enable or disable person search (/match) for a store."""
    try:
        with _sessions(settings)() as session:
            crud.set_person_search(session=session, store_id=args.store_id, enabled=args.state == "on")
    except NotFoundError as exc:
        print(exc.detail, file=sys.stderr)
        return 1
    print(f"person search for store {args.store_id} is {args.state}")
    return 0


def _index_sync(settings: Settings):
    from service.embedding.model import load_model
    from service.vectors.factory import open_vector_store
    from service.vectors.sync import IndexSync

    model = load_model(settings)
    vectors, index_dir = open_vector_store(settings, model.embedder.dim, model.embedder.version)
    return IndexSync(vectors, _sessions(settings), model.embedder.version, index_dir)


def cmd_rebuild_index(settings: Settings, _: argparse.Namespace) -> int:
    """Rebuild every store's index from SQL and save it to the index dir."""
    sync = _index_sync(settings)
    with sync.sessions() as session:
        store_ids = list(session.scalars(select(Store.id)))
    for store_id in store_ids:
        print(f"store {store_id}: {sync.rebuild(store_id)} vectors")
    sync.save()
    return 0


def cmd_purge(settings: Settings, args: argparse.Namespace) -> int:
    """Delete expired sightings (whole UTC days), emptied visitors and old audit rows, then save the indexes.

    Opening the indexes after the purge drops every vector whose sighting is no longer in SQL.
    """
    days = args.days or settings.retention_days
    result = purge_expired(_sessions(settings), days, settings.audit_retention_days)
    sync = _index_sync(settings)
    sync.start()
    sync.save()
    print(
        f"deleted {result.sightings} sightings captured before {result.cutoff.date()}, "
        f"{result.visitors} visitors left without sightings and {result.audit_rows} audit rows"
    )
    return 0


def _admin_key_for_demo(settings: Settings) -> str | None:
    """Generate and save an admin key (0600) when none is configured; returns it when new."""
    if settings.admin_key is not None or settings.admin_key_file.is_file():
        return None
    key = secrets.token_urlsafe(32)
    settings.admin_key_file.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(settings.admin_key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key + "\n")
    return key


def cmd_demo(settings: Settings, _: argparse.Namespace) -> int:
    """Migrate, then create a demo store with zones, cameras and a key unless it exists (idempotent)."""
    migrate(settings.database_url)
    new_admin = _admin_key_for_demo(settings)
    if new_admin:
        print(f"admin key (saved to {settings.admin_key_file}, mode 0600): {new_admin}")
    with _sessions(settings)() as session:
        existing = session.scalar(select(Store).where(Store.name == DEMO_STORE))
        if existing is not None:
            crud.set_person_search(session=session, store_id=existing.id, enabled=True)
            print(
                f"demo store {existing.id} exists; keys are shown only once. "
                f"Make a new one with: reid-admin create-key {existing.id}"
            )
            return 0
        store = crud.create_store(session=session, name=DEMO_STORE, timezone="UTC", match_enabled=True)
        create_layout(session, store.id, DEMO_LAYOUT)
        secret = crud.create_key(session=session, store_id=store.id, name="demo").secret
    print(
        f"demo store {store.id} created with zones {', '.join(DEMO_LAYOUT)}; store key (shown once): {secret}"
    )
    return 0


def admin(argv: list[str] | None = None) -> None:
    """``reid-admin`` subcommands."""
    parser = argparse.ArgumentParser(prog="reid-admin", description="Administer the re-id retail service.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="create or upgrade the database schema").set_defaults(run=cmd_migrate)
    store = commands.add_parser("create-store", help="create a store and print its first key")
    store.add_argument("name")
    store.add_argument("--timezone", default="UTC")
    store.add_argument("--zone", action="append", help="zone name (repeatable); each gets one camera")
    store.add_argument(
        "--enable-person-search", action="store_true", help="allow /match for this store (off by default)"
    )
    store.set_defaults(run=cmd_create_store)
    key = commands.add_parser("create-key", help="create and print a new key for a store")
    key.add_argument("store_id", type=int)
    key.add_argument("--name", default="cli")
    key.set_defaults(run=cmd_create_key)
    search = commands.add_parser("person-search", help="enable or disable /match for a store")
    search.add_argument("store_id", type=int)
    search.add_argument("state", choices=["on", "off"])
    search.set_defaults(run=cmd_person_search)
    commands.add_parser("rebuild-index", help="rebuild all indexes from SQL and save them").set_defaults(
        run=cmd_rebuild_index
    )
    purge = commands.add_parser(
        "purge", help="delete expired sightings and audit rows now (the service also does it periodically)"
    )
    purge.add_argument("--days", type=int, default=None, help="override REID_RETENTION_DAYS")
    purge.set_defaults(run=cmd_purge)
    commands.add_parser("demo", help="migrate and create a demo store and key if missing").set_defaults(
        run=cmd_demo
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    code = args.run(get_settings(), args)
    log.debug("%s took %.1fs", args.command, time.perf_counter() - started)
    sys.exit(code)
