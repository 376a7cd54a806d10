"""API keys: when each was last used and when it was revoked.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("last_used_at", "revoked_at")


def upgrade() -> None:
    """Add the nullable ``last_used_at`` and ``revoked_at`` timestamps to ``api_keys``."""
    with op.batch_alter_table("api_keys") as batch:
        for name in COLUMNS:
            batch.add_column(sa.Column(name, sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Drop the two columns again."""
    with op.batch_alter_table("api_keys") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
