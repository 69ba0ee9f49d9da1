"""Incremental datasets: their settings and cursor.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("datasets") as table:
        table.add_column(sa.Column("incremental", sa.JSON(), nullable=True))
        table.add_column(sa.Column("cursor", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("datasets") as table:
        table.drop_column("cursor")
        table.drop_column("incremental")
