"""Running runs show how far they got (pages, rows) and can be asked to stop.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as table:
        table.add_column(sa.Column("progress", sa.JSON(), nullable=True))
        table.add_column(sa.Column("cancel_requested", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as table:
        table.drop_column("cancel_requested")
        table.drop_column("progress")
