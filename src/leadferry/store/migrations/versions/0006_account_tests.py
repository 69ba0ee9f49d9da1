"""Accounts remember their last connection test: when, whether it passed, and why not.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as table:
        table.add_column(sa.Column("tested_at", sa.DateTime(timezone=True), nullable=True))
        table.add_column(sa.Column("test_ok", sa.Boolean(), nullable=True))
        table.add_column(sa.Column("test_message", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("accounts") as table:
        table.drop_column("test_message")
        table.drop_column("test_ok")
        table.drop_column("tested_at")
