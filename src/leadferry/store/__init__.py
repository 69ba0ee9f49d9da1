"""The metadata store: accounts, datasets, runs and users (SQLite by default, PostgreSQL too).

Callers use :class:`Store` and get frozen records back; the tables, SQL and Alembic migrations
stay inside this package.
"""

from __future__ import annotations

from leadferry.store.core import Store
from leadferry.store.records import (
    STATUSES,
    TRIGGERS,
    UPDATE_METHODS,
    Account,
    AccountSummary,
    ApiToken,
    Dataset,
    DatasetSpec,
    ListedDataset,
    Run,
    RunProgress,
    ScheduleState,
    User,
    WebSession,
)
from leadferry.store.runs import STALE_RUN_ERROR
from leadferry.store.secrets import generate_key, mask

__all__ = [
    "STALE_RUN_ERROR",
    "STATUSES",
    "TRIGGERS",
    "UPDATE_METHODS",
    "Account",
    "AccountSummary",
    "ApiToken",
    "Dataset",
    "DatasetSpec",
    "ListedDataset",
    "Run",
    "RunProgress",
    "ScheduleState",
    "Store",
    "User",
    "WebSession",
    "generate_key",
    "mask",
]
