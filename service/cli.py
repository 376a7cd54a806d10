"""Command-line entry points: ``reid-serve`` (uvicorn) and ``reid-admin`` (migrate, stores, keys, indexes)."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import secrets
import shlex
import shutil
import socket
import sys
import time
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.common.errors import InvalidInputError, NotFoundError
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
    settings = get_settings()
    parser = argparse.ArgumentParser(
        prog="reid-serve",
        description="Serve the re-id retail API. Other settings are REID_* variables (see .env.example).",
    )
    parser.add_argument(
        "--host", default=settings.host, help="address to listen on (env REID_HOST; now %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=settings.port, help="port to listen on (env REID_PORT; now %(default)s)"
    )
    parser.add_argument(
        "--log-level",
        default=settings.log_level,
        choices=["critical", "error", "warning", "info", "debug"],
        help="least severe log messages shown (env REID_LOG_LEVEL; now %(default)s)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    listener = _listen(args.host, args.port)  # before the model loads or the index folder is touched
    settings = _with_admin_key(settings)
    from service.app import create_app
    from service.http.server import ReidServer, server_config
    from service.vectors.folder_lock import IndexFolderBusyError, IndexFolderLock

    try:
        with IndexFolderLock(settings.index_dir):
            app = create_app(settings)
            # h11 with REID_MAX_HEADER_BYTES and REID_HEADER_TIMEOUT_S (service/http/server.py)
            config = server_config(app, settings, host=args.host, port=args.port, log_level=args.log_level)
            ReidServer(config).run(sockets=[listener])
    except IndexFolderBusyError as exc:
        sys.exit(f"reid-serve: {exc}")
    except KeyboardInterrupt:  # Ctrl-C: uvicorn has shut down cleanly and re-raised it (as uvicorn.run does)
        pass
    finally:
        listener.close()


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to host:port, or exit at once saying the port is taken (nothing else is started)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        if exc.errno == errno.EADDRINUSE:
            sys.exit(
                f"reid-serve: {host}:{port} is already in use (another reid-serve?). Stop that process, "
                f"or listen elsewhere: reid-serve --port {port + 1 if port < 65535 else 8000}, "
                "or set REID_PORT (and REID_HOST) in the environment or .env"
            )
        sys.exit(f"reid-serve: cannot listen on {host}:{port}: {exc.strerror or exc}")
    return listener


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


def _index_folder(settings: Settings):
    """The lock on the index folder (one process at a time); see service.vectors.folder_lock."""
    from service.vectors.folder_lock import IndexFolderLock

    return IndexFolderLock(settings.index_dir)


def cmd_rebuild_index(settings: Settings, _: argparse.Namespace) -> int:
    """Rebuild every store's index from SQL and save it to the index dir (refused while a server holds it)."""
    from service.vectors.folder_lock import IndexFolderBusyError

    try:
        with _index_folder(settings):
            return _rebuild_index(settings)
    except IndexFolderBusyError as exc:
        print(f"reid-admin: {exc}", file=sys.stderr)
        return 1


def _rebuild_index(settings: Settings) -> int:
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
    from service.vectors.folder_lock import IndexFolderBusyError

    try:
        with _index_folder(settings):
            return _purge(settings, args)
    except IndexFolderBusyError as exc:
        print(f"reid-admin: {exc} A running service purges by itself (REID_RETENTION_DAYS).", file=sys.stderr)
        return 1


def _purge(settings: Settings, args: argparse.Namespace) -> int:
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


def cmd_calibrate(settings: Settings, args: argparse.Namespace) -> int:
    """Pick the linking threshold that maximises pairwise F1 on a labelled sample; optionally apply it."""
    import json

    from service.embedding.model import load_model
    from service.ingest.calibration import embed_sample, plot_curve, read_sample, sweep

    try:
        images = read_sample(args.folder)
    except InvalidInputError as exc:
        print(exc.detail, file=sys.stderr)
        return 1
    model = load_model(settings)
    if not model.trained:
        print("warning: no exported model; calibrating the untrained network is meaningless", file=sys.stderr)
    embeddings = embed_sample(model.embedder, images)
    calibration = sweep(embeddings, [image.person for image in images])
    best = calibration.best
    print(f"{calibration.crops} crops of {calibration.people} people, model {model.embedder.version}")
    print("threshold  precision  recall  F1     clusters")
    for point in calibration.curve:
        mark = "  <- best" if point is best else ""
        print(
            f"{point.threshold:9.3f}  {point.precision:9.3f}  {point.recall:6.3f}  {point.f1:.3f}"
            f"  {point.clusters:8d}{mark}"
        )
    print(f"plot: {plot_curve(calibration, args.plot)}")
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "model": model.embedder.version,
                    "best": best.__dict__,
                    "curve": [p.__dict__ for p in calibration.curve],
                },
                indent=2,
            )
        )
    if args.apply_to is not None:
        try:
            with _sessions(settings)() as session:
                crud.update_store(
                    session=session, store_id=args.apply_to, changes={"match_threshold": best.threshold}
                )
        except NotFoundError as exc:
            print(exc.detail, file=sys.stderr)
            return 1
        print(f"store {args.apply_to} now links at threshold {best.threshold:.3f}")
    else:
        print(
            f"best threshold {best.threshold:.3f} (F1 {best.f1:.3f}); set it with REID_MATCH_THRESHOLD, "
            f"or per store with --apply-to STORE_ID"
        )
    return 0


def cmd_relink(settings: Settings, args: argparse.Namespace) -> int:
    """Run one re-linking pass over a store's window now."""
    from service.common.timeparse import parse_timestamp, to_ms
    from service.embedding.model import load_model
    from service.ingest.service import RelinkContext, relink
    from service.storage.locks import StoreWriteQueue

    try:
        start = to_ms(parse_timestamp(args.start, "--start")) if args.start else None
        end = to_ms(parse_timestamp(args.end, "--end")) if args.end else None
        version = load_model(settings).embedder.version
        context = RelinkContext(_sessions(settings), StoreWriteQueue(), settings, version)
        result = relink(context, store_id=args.store_id, start_ms=start, end_ms=end)
    except (InvalidInputError, NotFoundError) as exc:
        print(exc.detail, file=sys.stderr)
        return 1
    print(
        f"store {args.store_id}: {result.sightings} sightings in {result.units} tracks or crops; "
        f"{result.moved} moved ({result.merges} merges, {result.splits} splits); "
        f"visitors {result.visitors_before} -> {result.visitors_after}"
    )
    return 0


def cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    """Copy the SQLite database to a file while the service runs (SQLite's online backup)."""
    from service.operations.backup import backup_sqlite

    try:
        copied = backup_sqlite(settings.database_url, args.file)
    except (InvalidInputError, NotFoundError) as exc:
        print(f"reid-admin: {exc.detail}", file=sys.stderr)
        return 1
    print(f"backed up {copied.sightings} sightings to {copied.path} ({copied.size} bytes)")
    return 0


def cmd_restore(settings: Settings, args: argparse.Namespace) -> int:
    """Replace the SQLite database with a backup, then migrate it; services rebuild their indexes."""
    from service.operations.backup import restore_sqlite, sqlite_file

    try:
        target = sqlite_file(settings.database_url)
        if not args.yes:
            print(f"reid-admin: this replaces {target} with {args.file}; add --yes to go on", file=sys.stderr)
            return 2
        copied = restore_sqlite(settings.database_url, args.file)
    except (InvalidInputError, NotFoundError) as exc:
        print(f"reid-admin: {exc.detail}", file=sys.stderr)
        return 1
    print(
        f"restored {copied.path} from {args.file}: {copied.sightings} sightings. Services check their "
        "indexes against the database and rebuild them from SQL (at start, or at their next catch-up)."
    )
    return 0


def _positive(value: str) -> int:
    """An argparse type: a whole number of at least 1."""
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return number


def cmd_reembed(settings: Settings, args: argparse.Namespace) -> int:
    """Re-embed kept crops of earlier models' sightings with the current model (resumable, in batches)."""
    from tqdm import tqdm

    from service.embedding.model import load_model
    from service.operations.reembed import plan_reembed, reembed

    model = load_model(settings)
    if not model.trained:
        print(f"reid-admin: no trained model in {settings.model_dir} to re-embed with", file=sys.stderr)
        return 1
    sessions = _sessions(settings)
    plan = plan_reembed(sessions, model.embedder.version)
    print(
        f"model {plan.model_version}: {plan.with_crops} sightings of other models have a kept crop, "
        f"{plan.without_crops} have none"
    )
    total = plan.with_crops if args.limit is None else min(plan.with_crops, args.limit)
    with tqdm(total=total, unit="sighting", desc="re-embedding", disable=args.quiet) as bar:
        result = reembed(
            sessions, model.embedder, batch_size=args.batch_size, limit=args.limit, progress=bar.update
        )
    print(
        f"re-embedded {result.reembedded} sightings with {result.model_version} "
        f"({result.undecodable} crops did not decode, {result.gone} were deleted meanwhile); "
        f"left: {result.left_with_crops} with crops, {result.left_without_crops} without (these stay "
        "unsearchable until retention purges them)"
    )
    return 0


def cmd_export_crops(settings: Settings, args: argparse.Namespace) -> int:
    """Write a store's kept crops of a capture window to a folder for adaptation (no identities; audited)."""
    from tqdm import tqdm

    from service.common.errors import ForbiddenError
    from service.common.timeparse import parse_timestamp
    from service.operations.export_crops import export_crops, requester

    try:
        since = parse_timestamp(args.since, "--since")
        until = parse_timestamp(args.until, "--until")
        with tqdm(unit="crop", desc="exporting", disable=args.quiet) as bar:
            result = export_crops(
                _sessions(settings),
                store_id=args.store_id,
                since=since,
                until=until,
                out=args.out,
                requested_by=requester(),
                progress=bar.update,
            )
    except (ForbiddenError, InvalidInputError, NotFoundError) as exc:
        print(f"reid-admin: {exc.detail}", file=sys.stderr)
        return 1
    skipped = f" ({result.undecodable} crops did not decode and were skipped)" if result.undecodable else ""
    print(
        f"exported {result.crops} crops of store {result.store_id} captured {since.isoformat()} to "
        f"{until.isoformat()} into {result.folder}{skipped}; file names carry camera and capture time only. "
        "These images show people: keep them on the training machine and delete the folder once "
        f"`reid-train adapt --unlabelled {result.folder}` has run. The export is in the store's audit log "
        f"(GET /stores/{result.store_id}/crop-exports)."
    )
    return 0


def admin_command() -> str:
    """``reid-admin`` as a command that runs where it is printed, without an activated virtualenv."""
    installed = Path(sys.executable).with_name("reid-admin")
    if not installed.is_file():
        return "reid-admin"
    on_path = shutil.which("reid-admin")
    if on_path and os.path.samefile(on_path, installed):
        return "reid-admin"
    try:
        shown = installed.relative_to(Path.cwd())
    except ValueError:
        shown = installed
    return shlex.quote(str(shown))


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
                f"Make a new one with: {admin_command()} create-key {existing.id}"
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
    parser = argparse.ArgumentParser(
        prog="reid-admin",
        description="Administer the re-id retail service. Settings (REID_DATABASE_URL, REID_INDEX_DIR, ...) "
        "come from the environment and .env, as for reid-serve (see .env.example).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="create or upgrade the database schema").set_defaults(run=cmd_migrate)
    store = commands.add_parser("create-store", help="create a store and print its first key")
    store.add_argument("name")
    store.add_argument("--timezone", default="UTC", help="IANA time zone, e.g. Europe/Berlin (default UTC)")
    store.add_argument("--zone", action="append", help="zone name (repeatable); each gets one camera")
    store.add_argument(
        "--enable-person-search", action="store_true", help="allow /match for this store (off by default)"
    )
    store.set_defaults(run=cmd_create_store)
    key = commands.add_parser("create-key", help="create and print a new key for a store")
    key.add_argument("store_id", type=int)
    key.add_argument("--name", default="cli", help="a label for the key (default cli)")
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
    purge.add_argument(
        "--days", type=int, default=None, help="keep this many days (default: env REID_RETENTION_DAYS)"
    )
    purge.set_defaults(run=cmd_purge)
    calibrate = commands.add_parser(
        "calibrate", help="pick the linking threshold from a labelled sample (ROOT/<person>/<camera>_<n>.jpg)"
    )
    calibrate.add_argument("folder", type=Path, help="the labelled sample, one folder per person")
    calibrate.add_argument(
        "--plot", type=Path, default=Path("calibration.png"), help="where to draw the precision/recall curve"
    )
    calibrate.add_argument("--json", type=Path, default=None, help="also write the curve as JSON here")
    calibrate.add_argument(
        "--apply-to", type=int, default=None, metavar="STORE_ID", help="set the store's threshold to the best"
    )
    calibrate.set_defaults(run=cmd_calibrate)
    relink_parser = commands.add_parser(
        "relink", help="re-link a store's recent sightings now (the service also does it periodically)"
    )
    relink_parser.add_argument("store_id", type=int)
    relink_parser.add_argument("--start", default=None, help="window start, ISO 8601 with offset")
    relink_parser.add_argument("--end", default=None, help="window end, ISO 8601 with offset (default now)")
    relink_parser.set_defaults(run=cmd_relink)
    backup = commands.add_parser("backup", help="copy the SQLite database to FILE, also while serving")
    backup.add_argument("file", type=Path, help="where the copy goes (PostgreSQL: use pg_dump)")
    backup.set_defaults(run=cmd_backup)
    restore = commands.add_parser("restore", help="replace the SQLite database with a backup, then migrate")
    restore.add_argument("file", type=Path, help="a file made by `reid-admin backup`")
    restore.add_argument("--yes", action="store_true", help="really replace the database")
    restore.set_defaults(run=cmd_restore)
    reembed_parser = commands.add_parser(
        "reembed", help="re-embed earlier models' sightings from kept crops with the current model"
    )
    reembed_parser.add_argument("--batch-size", type=_positive, default=64, help="crops per batch (64)")
    reembed_parser.add_argument(
        "--limit", type=_positive, default=None, help="stop after this many sightings (run again to go on)"
    )
    reembed_parser.add_argument("--quiet", action="store_true", help="no progress bar")
    reembed_parser.set_defaults(run=cmd_reembed)
    export = commands.add_parser(
        "export-crops",
        help="write a store's kept crops to a folder for reid-train adapt (crop keeping on; no identities; "
        "audited)",
    )
    export.add_argument("store_id", type=int)
    export.add_argument("--since", required=True, help="capture window start, ISO 8601 with offset")
    export.add_argument("--until", required=True, help="capture window end (excluded), ISO 8601 with offset")
    export.add_argument("out", type=Path, help="a new or empty folder")
    export.add_argument("--quiet", action="store_true", help="no progress bar")
    export.set_defaults(run=cmd_export_crops)
    commands.add_parser("demo", help="migrate and create a demo store and key if missing").set_defaults(
        run=cmd_demo
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    code = args.run(get_settings(), args)
    log.debug("%s took %.1fs", args.command, time.perf_counter() - started)
    sys.exit(code)
