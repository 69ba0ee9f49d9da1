"""Schedules, retries, alerts and the scheduler's state.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("datasets") as table:
        table.add_column(sa.Column("schedule", sa.JSON(), nullable=True))
        table.add_column(sa.Column("retry_every", sa.Integer(), nullable=True))
        table.add_column(sa.Column("retries", sa.Integer(), server_default="0", nullable=False))
        table.add_column(
            sa.Column("when_failing", sa.String(16), server_default="keep", nullable=False)
        )
        table.add_column(sa.Column("stale_after", sa.Integer(), nullable=True))
        table.add_column(sa.Column("alert_webhook", sa.Text(), nullable=True))
        table.add_column(sa.Column("alert_emails", sa.JSON(), server_default="[]", nullable=False))
        table.add_column(sa.Column("next_run_at", WHEN, nullable=True))
        table.add_column(sa.Column("last_slot", WHEN, nullable=True))
        table.add_column(sa.Column("retry_at", WHEN, nullable=True))
        table.add_column(
            sa.Column("retry_attempt", sa.Integer(), server_default="0", nullable=False)
        )
        table.add_column(
            sa.Column("failing", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        table.add_column(sa.Column("alert_state", sa.JSON(), server_default="{}", nullable=False))
    with op.batch_alter_table("runs") as table:
        table.add_column(sa.Column("slot", WHEN, nullable=True))
        table.add_column(sa.Column("attempt", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("runs") as table:
        table.drop_column("attempt")
        table.drop_column("slot")
    with op.batch_alter_table("datasets") as table:
        for column in ("alert_state", "failing", "retry_attempt", "retry_at", "last_slot",
                       "next_run_at", "alert_emails", "alert_webhook", "stale_after",
                       "when_failing", "retries", "retry_every", "schedule"):  # fmt: skip
            table.drop_column(column)
