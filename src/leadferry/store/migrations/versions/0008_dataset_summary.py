"""Datasets keep what the Data Center judges and sorts by (their latest run's status and end,
their last success, their main table's rows) and a display name.

The first three are filled from the runs here; the main table's rows live in the warehouse,
which a migration of the store does not read: they stay unknown (NULL) until the Data Center
counts them (``service.listing``) or the dataset's next run records them.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None

_LATEST = "(select max(r.id) from runs r where r.dataset_id = datasets.id)"


def upgrade() -> None:
    with op.batch_alter_table("datasets") as table:
        table.add_column(
            sa.Column("display_name", sa.String(255), server_default="", nullable=False)
        )
        table.add_column(sa.Column("last_run_id", sa.Integer(), nullable=True))
        table.add_column(sa.Column("last_run_status", sa.String(16), nullable=True))
        table.add_column(
            sa.Column("last_run_finished_at", sa.DateTime(timezone=True), nullable=True)
        )
        table.add_column(sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True))
        table.add_column(sa.Column("table_rows", sa.BigInteger(), nullable=True))
        table.create_index("ix_datasets_last_success_at", ["last_success_at"])
        table.create_index("ix_datasets_table_rows", ["table_rows"])
    op.execute(
        f"update datasets set last_run_id = {_LATEST}, "
        f"last_run_status = (select r.status from runs r where r.id = {_LATEST}), "
        f"last_run_finished_at = (select r.finished_at from runs r where r.id = {_LATEST}), "
        "last_success_at = (select max(r.finished_at) from runs r "
        "where r.dataset_id = datasets.id and r.status = 'success')"
    )


def downgrade() -> None:
    with op.batch_alter_table("datasets") as table:
        table.drop_index("ix_datasets_table_rows")
        table.drop_index("ix_datasets_last_success_at")
        for column in (
            "table_rows",
            "last_success_at",
            "last_run_finished_at",
            "last_run_status",
            "last_run_id",
            "display_name",
        ):
            table.drop_column(column)
