"""Privacy: person search opt-in per store, its audit log, optional crops and erasure tombstones;
token buckets for rate limits shared by replicas.

On SQLite, ``visitors`` and ``sightings`` are rebuilt with AUTOINCREMENT: without it SQLite hands out
the ids of deleted newest rows again, and the index watermarks and erasure tombstones need ids that are
never reused. (PostgreSQL sequences never reuse ids.)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Stamp = sa.DateTime(timezone=True)
NEVER_REUSED = ("visitors", "sightings")


def upgrade() -> None:
    """Add ``stores.match_enabled`` (off) and the crop, tombstone, audit and bucket tables; no id reuse."""
    if op.get_bind().dialect.name == "sqlite":
        for table in NEVER_REUSED:
            with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": True}):
                pass
    with op.batch_alter_table("stores") as batch:
        batch.add_column(sa.Column("match_enabled", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "sighting_crops",
        sa.Column(
            "sighting_id",
            BigId,
            sa.ForeignKey("sightings.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "deleted_sightings",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("store_id", sa.Integer(), sa.ForeignKey("stores.id", ondelete="CASCADE"), nullable=False),
        sa.Column("sighting_id", sa.BigInteger(), nullable=False),
        sa.Column("deleted_at", Stamp, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_deleted_sightings_store_id", "deleted_sightings", ["store_id", "id"])
    op.create_table(
        "match_audit",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("store_id", sa.Integer(), sa.ForeignKey("stores.id", ondelete="CASCADE"), nullable=False),
        sa.Column("key_id", sa.Integer(), sa.ForeignKey("api_keys.id", ondelete="SET NULL"), nullable=True),
        sa.Column("key_prefix", sa.String(32), nullable=False),
        sa.Column("case_id", sa.String(100), nullable=True),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("requested_at", Stamp, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("results", sa.Integer(), nullable=False),
        sa.Column("visitors", sa.Integer(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_match_audit_store_time", "match_audit", ["store_id", "requested_at"])
    op.create_table(
        "rate_buckets",
        sa.Column("bucket", sa.String(64), primary_key=True),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    """Drop the four tables and the column again (SQLite keeps AUTOINCREMENT, which is harmless)."""
    for table in ("rate_buckets", "match_audit", "deleted_sightings", "sighting_crops"):
        op.drop_table(table)
    with op.batch_alter_table("stores") as batch:
        batch.drop_column("match_enabled")
