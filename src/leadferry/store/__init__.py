"""The metadata store: accounts, datasets and runs (SQLite by default, PostgreSQL too).

Callers use :class:`Store` and get frozen records back; the tables, SQL and Alembic migrations
stay inside this package.
"""

from __future__ import annotations

from leadferry.store.core import STALE_RUN_ERROR, Store
from leadferry.store.records import (
    STATUSES,
    TRIGGERS,
    UPDATE_METHODS,
    Account,
    AccountSummary,
    Dataset,
    DatasetSpec,
    Run,
    ScheduleState,
)
from leadferry.store.secrets import generate_key, mask

__all__ = [
    "STALE_RUN_ERROR",
    "STATUSES",
    "TRIGGERS",
    "UPDATE_METHODS",
    "Account",
    "AccountSummary",
    "Dataset",
    "DatasetSpec",
    "Run",
    "ScheduleState",
    "Store",
    "generate_key",
    "mask",
]
