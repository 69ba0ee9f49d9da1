"""Runs spread over workers: which worker runs each, its heartbeat (the lease), the job it serves.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as table:
        table.add_column(sa.Column("worker", sa.String(length=255), nullable=True))
        table.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        table.add_column(sa.Column("job_key", sa.String(length=64), nullable=True))
        table.create_index("uq_runs_job_key", ["job_key"], unique=True)
        table.create_index("ix_runs_status", ["status"])


def downgrade() -> None:
    with op.batch_alter_table("runs") as table:
        table.drop_index("ix_runs_status")
        table.drop_index("uq_runs_job_key")
        table.drop_column("job_key")
        table.drop_column("heartbeat_at")
        table.drop_column("worker")
