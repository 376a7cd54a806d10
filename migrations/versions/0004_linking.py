"""Linking: tracks and link reasons on sightings, a calibrated threshold per store, overlapping cameras,
zone transit times, and the log of re-linking changes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
SIGHTING_COLUMNS = (
    ("track_id", sa.String(64)),
    ("link_rule", sa.String(16)),
    ("link_runner_up", sa.Float()),
)


def upgrade() -> None:
    """Add the nullable columns, the track index and the three tables."""
    for name, kind in SIGHTING_COLUMNS:
        op.add_column("sightings", sa.Column(name, kind, nullable=True))
    op.create_index("ix_sightings_camera_track", "sightings", ["camera_id", "track_id", "captured_ms"])
    op.add_column("stores", sa.Column("match_threshold", sa.Float(), nullable=True))
    op.create_table(
        "camera_overlaps",
        sa.Column("store_id", sa.Integer(), sa.ForeignKey("stores.id", ondelete="CASCADE"), nullable=False),
        sa.Column("camera_id", sa.Integer(), sa.ForeignKey("cameras.id", ondelete="CASCADE"), nullable=False),
        sa.Column(
            "other_camera_id", sa.Integer(), sa.ForeignKey("cameras.id", ondelete="CASCADE"), nullable=False
        ),
        sa.PrimaryKeyConstraint("camera_id", "other_camera_id"),
    )
    op.create_index("ix_camera_overlaps_store_id", "camera_overlaps", ["store_id"])
    op.create_table(
        "zone_transits",
        sa.Column("store_id", sa.Integer(), sa.ForeignKey("stores.id", ondelete="CASCADE"), nullable=False),
        sa.Column("zone_id", sa.Integer(), sa.ForeignKey("zones.id", ondelete="CASCADE"), nullable=False),
        sa.Column(
            "other_zone_id", sa.Integer(), sa.ForeignKey("zones.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("min_seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("zone_id", "other_zone_id"),
    )
    op.create_index("ix_zone_transits_store_id", "zone_transits", ["store_id"])
    op.create_table(
        "link_events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("store_id", sa.Integer(), sa.ForeignKey("stores.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("visitor_id", sa.BigInteger(), nullable=False),
        sa.Column("from_visitor_id", sa.BigInteger(), nullable=False),
        sa.Column("sightings", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_link_events_store_id", "link_events", ["store_id", "id"])


def downgrade() -> None:
    """Drop the tables, the index and the columns again."""
    op.drop_index("ix_link_events_store_id", table_name="link_events")
    op.drop_table("link_events")
    op.drop_index("ix_zone_transits_store_id", table_name="zone_transits")
    op.drop_table("zone_transits")
    op.drop_index("ix_camera_overlaps_store_id", table_name="camera_overlaps")
    op.drop_table("camera_overlaps")
    with op.batch_alter_table("stores") as batch:
        batch.drop_column("match_threshold")
    op.drop_index("ix_sightings_camera_track", table_name="sightings")
    with op.batch_alter_table("sightings", table_kwargs={"sqlite_autoincrement": True}) as batch:
        for name, _ in reversed(SIGHTING_COLUMNS):
            batch.drop_column(name)
