"""Initial schema: stores, zones, cameras, API keys, visitors, sightings.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Stamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create every table and the indexes the queries need."""
    op.create_table(
        "stores",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("created_at", Stamp, nullable=False),
        sa.Column("ingest_seq", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.create_table(
        "zones",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("store_id", sa.Integer(), sa.ForeignKey("stores.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
    )
    op.create_index("ix_zones_store_name", "zones", ["store_id", "name"], unique=True)
    op.create_table(
        "cameras",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("store_id", sa.Integer(), sa.ForeignKey("stores.id", ondelete="CASCADE"), nullable=False),
        sa.Column("zone_id", sa.Integer(), sa.ForeignKey("zones.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
    )
    op.create_index("ix_cameras_store", "cameras", ["store_id"])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("store_id", sa.Integer(), sa.ForeignKey("stores.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("prefix", sa.String(32), nullable=False, unique=True),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("created_at", Stamp, nullable=False),
    )
    op.create_index("ix_api_keys_store_id", "api_keys", ["store_id"])
    op.create_table(
        "visitors",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("store_id", sa.Integer(), sa.ForeignKey("stores.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", Stamp, nullable=False),
    )
    op.create_index("ix_visitors_store", "visitors", ["store_id"])
    op.create_table(
        "sightings",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("store_id", sa.Integer(), sa.ForeignKey("stores.id", ondelete="CASCADE"), nullable=False),
        sa.Column("zone_id", sa.Integer(), sa.ForeignKey("zones.id", ondelete="CASCADE"), nullable=False),
        sa.Column("camera_id", sa.Integer(), sa.ForeignKey("cameras.id", ondelete="CASCADE"), nullable=False),
        sa.Column("visitor_id", BigId, sa.ForeignKey("visitors.id", ondelete="CASCADE"), nullable=False),
        sa.Column("captured_at", Stamp, nullable=False),
        sa.Column("captured_ms", sa.BigInteger(), nullable=False),
        sa.Column("received_at", Stamp, nullable=False),
        sa.Column("similarity", sa.Float(), nullable=True),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_sightings_store_captured", "sightings", ["store_id", "captured_ms"])
    op.create_index("ix_sightings_store_id", "sightings", ["store_id", "id"])
    op.create_index("ix_sightings_store_zone_captured", "sightings", ["store_id", "zone_id", "captured_ms"])
    op.create_index("ix_sightings_visitor", "sightings", ["visitor_id", "captured_ms"])


def downgrade() -> None:
    """Drop everything this revision created."""
    for table in ("sightings", "visitors", "api_keys", "cameras", "zones", "stores"):
        op.drop_table(table)
