"""Store analytics: staff (left out of the counts), the store analytics audit, returning shoppers per
store (off by default), a covering sightings index, and the density summary with its invalidation marks.

The marks are written by database triggers, so that every change of a sighting (ingest, erasure,
retention, re-linking, or any other writer) and of a visitor's staff flag marks the UTC days spanned by
the visitors concerned; a summary day overlapped by a mark is recomputed before it is used.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Stamp = sa.DateTime(timezone=True)
DAY_MS = 86_400_000

# ---- SQLite: one trigger per event; a mark spans the visitor's sightings and the changed row's time ----


def _sqlite_mark(row: str) -> str:
    span = f"SELECT {{}}(captured_ms) FROM sightings WHERE visitor_id = {row}.visitor_id"
    return (
        "INSERT INTO density_marks (store_id, lo_day, hi_day, version) VALUES ("
        f"{row}.store_id, "
        f"min({row}.captured_ms, coalesce(({span.format('min')}), {row}.captured_ms)) / {DAY_MS}, "
        f"max({row}.captured_ms, coalesce(({span.format('max')}), {row}.captured_ms)) / {DAY_MS}, 1) "
        "ON CONFLICT (store_id, lo_day, hi_day) DO UPDATE SET version = version + 1;"
    )


SQLITE_TRIGGERS = {
    "density_sightings_insert": f"AFTER INSERT ON sightings BEGIN {_sqlite_mark('NEW')} END",
    "density_sightings_delete": f"AFTER DELETE ON sightings BEGIN {_sqlite_mark('OLD')} END",
    "density_sightings_update": (
        "AFTER UPDATE OF visitor_id, zone_id, captured_ms, store_id ON sightings "
        f"BEGIN {_sqlite_mark('OLD')} {_sqlite_mark('NEW')} END"
    ),
    "density_visitors_staff": (
        "AFTER UPDATE OF staff_id ON visitors WHEN OLD.staff_id IS NOT NEW.staff_id BEGIN "
        "INSERT INTO density_marks (store_id, lo_day, hi_day, version) "
        f"SELECT NEW.store_id, min(captured_ms) / {DAY_MS}, max(captured_ms) / {DAY_MS}, 1 "
        "FROM sightings WHERE visitor_id = NEW.id HAVING count(*) > 0 "
        "ON CONFLICT (store_id, lo_day, hi_day) DO UPDATE SET version = version + 1; END"
    ),
}

# ---- PostgreSQL: statement triggers over transition tables (one mark per span, not per row: a bulk
# write of thousands of rows upserts a few marks once, instead of updating one mark row per row) ----

PG_SPANS = f"""
    spans AS (
        SELECT c.store_id,
            least(min(c.ms), (SELECT min(captured_ms) FROM sightings WHERE visitor_id = c.visitor_id)) AS lo,
            greatest(max(c.ms), (SELECT max(captured_ms) FROM sightings WHERE visitor_id = c.visitor_id))
                AS hi
        FROM changed c GROUP BY c.store_id, c.visitor_id
    )
    INSERT INTO density_marks (store_id, lo_day, hi_day, version)
    SELECT store_id, lo / {DAY_MS}, hi / {DAY_MS}, 1 FROM spans WHERE lo IS NOT NULL GROUP BY 1, 2, 3
    ON CONFLICT (store_id, lo_day, hi_day) DO UPDATE SET version = density_marks.version + 1;"""


def _pg_function(name: str, changed: str) -> str:
    return f"""
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH {changed},{PG_SPANS}
    RETURN NULL;
END $$"""


PG_MOVED = """moved AS (
        SELECT o.store_id AS old_store, o.visitor_id AS old_visitor, o.captured_ms AS old_ms,
            n.store_id AS new_store, n.visitor_id AS new_visitor, n.captured_ms AS new_ms
        FROM old_rows o JOIN new_rows n ON n.id = o.id
        WHERE (o.visitor_id, o.zone_id, o.captured_ms, o.store_id)
            IS DISTINCT FROM (n.visitor_id, n.zone_id, n.captured_ms, n.store_id)
    ),
    changed (store_id, visitor_id, ms) AS (
        SELECT old_store, old_visitor, old_ms FROM moved
        UNION ALL SELECT new_store, new_visitor, new_ms FROM moved
    )"""
PG_FUNCTIONS = {
    "density_sightings_inserted()": _pg_function(
        "density_sightings_inserted",
        "changed (store_id, visitor_id, ms) AS (SELECT store_id, visitor_id, captured_ms FROM new_rows)",
    ),
    "density_sightings_deleted()": _pg_function(
        "density_sightings_deleted",
        "changed (store_id, visitor_id, ms) AS (SELECT store_id, visitor_id, captured_ms FROM old_rows)",
    ),
    "density_sightings_updated()": _pg_function("density_sightings_updated", PG_MOVED),
    "density_visitors_updated()": _pg_function(
        "density_visitors_updated",
        """flipped AS (
        SELECT n.store_id, n.id FROM old_rows o JOIN new_rows n ON n.id = o.id
        WHERE o.staff_id IS DISTINCT FROM n.staff_id
    ),
    changed (store_id, visitor_id, ms) AS (SELECT store_id, id, CAST(NULL AS bigint) FROM flipped)""",
    ),
}
PG_TRIGGERS = {
    ("density_sightings_insert", "sightings"): (
        "AFTER INSERT ON sightings REFERENCING NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION density_sightings_inserted()"
    ),
    ("density_sightings_delete", "sightings"): (
        "AFTER DELETE ON sightings REFERENCING OLD TABLE AS old_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION density_sightings_deleted()"
    ),
    ("density_sightings_update", "sightings"): (
        "AFTER UPDATE ON sightings REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION density_sightings_updated()"
    ),
    ("density_visitors_staff", "visitors"): (
        "AFTER UPDATE ON visitors REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION density_visitors_updated()"
    ),
}


def _create_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for body in PG_FUNCTIONS.values():
            op.execute(body)
        for (name, _), body in PG_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")
    else:
        for name, body in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")


def _drop_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, table in PG_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        for signature in PG_FUNCTIONS:
            op.execute(f"DROP FUNCTION IF EXISTS {signature}")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")


def upgrade() -> None:
    """Add the columns, tables and indexes, swap the sightings time index for a covering one, and
    create the triggers that mark density summaries out of date."""
    with op.batch_alter_table("stores") as batch:
        batch.add_column(
            sa.Column("returning_enabled", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.add_column("visitors", sa.Column("staff_id", sa.Integer(), nullable=True))
    op.create_index("ix_visitors_store_staff", "visitors", ["store_id", "staff_id"])
    op.create_index(
        "ix_sightings_store_captured_zone_visitor",
        "sightings",
        ["store_id", "captured_ms", "zone_id", "visitor_id"],
    )
    op.drop_index("ix_sightings_store_captured", table_name="sightings")
    op.create_table(
        "staff",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("store_id", sa.Integer(), sa.ForeignKey("stores.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_at", Stamp, nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("prototype", sa.LargeBinary(), nullable=False),
        sa.Column("enrolled", sa.Integer(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_staff_store_name", "staff", ["store_id", "name"], unique=True)
    op.create_table(
        "staff_photos",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("staff_id", sa.Integer(), sa.ForeignKey("staff.id", ondelete="CASCADE"), nullable=False),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_staff_photos_staff", "staff_photos", ["staff_id"])
    op.create_table(
        "store_audit",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("store_id", sa.Integer(), sa.ForeignKey("stores.id", ondelete="CASCADE"), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("key_id", sa.Integer(), sa.ForeignKey("api_keys.id", ondelete="SET NULL"), nullable=True),
        sa.Column("key_prefix", sa.String(32), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("visitor_id", sa.BigInteger(), nullable=True),
        sa.Column("detail", sa.String(500), nullable=True),
        sa.Column("at", Stamp, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_store_audit_store_id", "store_audit", ["store_id", "id"])
    op.create_table(
        "density_days",
        sa.Column("store_id", sa.Integer(), sa.ForeignKey("stores.id", ondelete="CASCADE"), nullable=False),
        sa.Column("start_ms", sa.BigInteger(), nullable=False),
        sa.Column("end_ms", sa.BigInteger(), nullable=False),
        sa.Column("gap_ms", sa.BigInteger(), nullable=False),
        sa.Column("include_staff", sa.Boolean(), nullable=False),
        sa.Column("zone_id", sa.Integer(), sa.ForeignKey("zones.id", ondelete="CASCADE"), nullable=False),
        sa.Column("unique_visitors", sa.Integer(), nullable=False),
        sa.Column("sightings", sa.Integer(), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("dwell_ms", sa.BigInteger(), nullable=False),
        sa.Column("present_ms", sa.BigInteger(), nullable=False),
        sa.Column("occupancy_max", sa.Integer(), nullable=False),
        sa.Column("crossing", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("store_id", "start_ms", "end_ms", "gap_ms", "include_staff", "zone_id"),
    )
    op.create_table(
        "density_marks",
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("lo_day", sa.BigInteger(), nullable=False),
        sa.Column("hi_day", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("store_id", "lo_day", "hi_day"),
    )
    op.create_table(
        "density_epochs",
        sa.Column("store_id", sa.Integer(), sa.ForeignKey("stores.id", ondelete="CASCADE"), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("store_id"),
    )
    _create_triggers()


def downgrade() -> None:
    """Drop the triggers, tables, indexes and columns again, and bring the plain time index back."""
    _drop_triggers()
    for table in ("density_epochs", "density_marks", "density_days"):
        op.drop_table(table)
    op.drop_index("ix_store_audit_store_id", table_name="store_audit")
    op.drop_table("store_audit")
    op.drop_index("ix_staff_photos_staff", table_name="staff_photos")
    op.drop_table("staff_photos")
    op.drop_index("ix_staff_store_name", table_name="staff")
    op.drop_table("staff")
    op.create_index("ix_sightings_store_captured", "sightings", ["store_id", "captured_ms"])
    op.drop_index("ix_sightings_store_captured_zone_visitor", table_name="sightings")
    op.drop_index("ix_visitors_store_staff", table_name="visitors")
    with op.batch_alter_table("visitors", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("staff_id")
    with op.batch_alter_table("stores") as batch:
        batch.drop_column("returning_enabled")
