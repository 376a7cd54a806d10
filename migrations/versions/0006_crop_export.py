"""Crop export for adaptation: crop keeping per store (``stores.keep_crops``, off) and the audit log of
``reid-admin export-crops`` (``crop_exports``).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Stamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Add ``stores.keep_crops`` (false for every existing store) and the ``crop_exports`` table."""
    with op.batch_alter_table("stores") as batch:
        batch.add_column(sa.Column("keep_crops", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "crop_exports",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("store_id", sa.Integer(), sa.ForeignKey("stores.id", ondelete="CASCADE"), nullable=False),
        sa.Column("requested_at", Stamp, nullable=False),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("since", Stamp, nullable=False),
        sa.Column("until", Stamp, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("crops", sa.Integer(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_crop_exports_store_time", "crop_exports", ["store_id", "requested_at"])


def downgrade() -> None:
    """Drop the table and the column again."""
    op.drop_index("ix_crop_exports_store_time", table_name="crop_exports")
    op.drop_table("crop_exports")
    with op.batch_alter_table("stores") as batch:
        batch.drop_column("keep_crops")
