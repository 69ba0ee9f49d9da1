"""The Data Center's list at any size: search, filters, sorting and one page of lines.

The store's list query (:meth:`~leadferry.store.Store.summarize_datasets`) searches and
filters by connector and account in SQL and gives each dataset the few columns its status
needs; the status (which depends on the time: stale) is judged here, then the lines are
filtered by status, sorted and cut to a page, and only that page is loaded in full
(:func:`~leadferry.service.status.overview`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from leadferry.connectors import get_connector
from leadferry.errors import BusyError, ConfigError, NotFoundError
from leadferry.service.status import (
    STATUS_LABELS,
    DatasetOverview,
    DatasetStatus,
    overview,
    summary_status,
)

if TYPE_CHECKING:
    from leadferry.store import DatasetSummary, Store
    from leadferry.store.records import AccountLine
    from leadferry.warehouse import Warehouse

SORTS = ("name", "status", "last_success", "next_run", "rows")
"""What the list can be sorted by; ``-name`` (a leading minus) sorts the other way."""
STATUS_FILTERS = (*STATUS_LABELS, "attention")
"""A badge's status, or ``attention``: every dataset that needs attention."""
_STATUS_ORDER = {status: order for order, status in enumerate(STATUS_LABELS)}


@dataclass(frozen=True, slots=True)
class DatasetQuery:
    """Which datasets to list and how: all of them by name unless told otherwise.

    ``limit`` None lists every match from ``offset`` on.
    """

    search: str = ""
    connector: str = ""
    account: str = ""
    status: str = ""
    sort: str = "name"
    offset: int = 0
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.sort.removeprefix("-") not in SORTS:
            raise ConfigError(f"sort must be one of {', '.join(SORTS)} (a leading - reverses)")
        if self.status and self.status not in STATUS_FILTERS:
            raise ConfigError(f"status must be one of {', '.join(STATUS_FILTERS)}")
        if self.offset < 0 or (self.limit is not None and self.limit < 1):
            raise ConfigError("offset must be 0 or more, and limit 1 or more")


@dataclass(frozen=True, slots=True)
class DatasetListing:
    """One page of the list: its lines, how many datasets match (``total``), how many of those
    need attention (``flagged``, before the status filter), how many exist at all, and every
    account."""

    lines: list[DatasetOverview]
    total: int
    flagged: int
    datasets: int
    accounts: list[AccountLine]
    """Every account (what the filters offer)."""


def list_datasets(
    store: Store,
    warehouse: Warehouse,
    now: dt.datetime,
    query: DatasetQuery,
    *,
    count_rows: bool = True,
) -> DatasetListing:
    """The page of datasets *query* asks for, with their status and recent runs, and with the
    rows of their main tables when *count_rows*."""
    matching = store.summarize_datasets(query.search, query.connector, query.account)
    filtered = query.search or query.connector or query.account
    every = store.count_datasets() if filtered else len(matching)
    judged = [(summary, summary_status(summary, now)) for summary in matching]
    flagged = sum(1 for _summary, status in judged if status.needs_attention)
    if query.status == "attention":
        judged = [(summary, status) for summary, status in judged if status.needs_attention]
    elif query.status:
        judged = [(summary, status) for summary, status in judged if status.status == query.status]
    judged = _sorted(judged, query.sort, warehouse)
    end = None if query.limit is None else query.offset + query.limit
    page = judged[query.offset : end]
    details = store.page_details([summary.name for summary, _status in page])
    statuses = {summary.name: status for summary, status in page}
    lines = overview(details, warehouse if count_rows else None, statuses)
    return DatasetListing(lines, len(judged), flagged, every, details.accounts)


Judged = tuple["DatasetSummary", DatasetStatus]


def _sorted(judged: list[Judged], sort: str, warehouse: Warehouse) -> list[Judged]:
    """*judged* sorted by *sort*, ties by name; datasets without a value (never succeeded, no
    next run, no table) come last either way."""
    descending = sort.startswith("-")
    keys: dict[str, Callable[[Judged], Any]] = {
        "name": lambda line: line[0].name,
        "status": lambda line: _STATUS_ORDER[line[1].status],
        "last_success": lambda line: line[1].last_success,
        "next_run": lambda line: line[0].next_run_at,
    }
    field = sort.removeprefix("-")
    if field == "rows":
        sizes = _table_sizes(warehouse)
        keys["rows"] = lambda line: sizes.get((line[0].name, _main_table(line[0])))
    key = keys[field]
    by_name = sorted(judged, key=lambda line: line[0].name)
    valued = [line for line in by_name if key(line) is not None]
    unvalued = [line for line in by_name if key(line) is None]
    return sorted(valued, key=key, reverse=descending) + unvalued


def _main_table(summary: DatasetSummary) -> str:
    return get_connector(summary.connector).report(summary.report).tables[0].name


def _table_sizes(warehouse: Warehouse) -> dict[tuple[str, str], int]:
    """Every table's rows as DuckDB's catalog estimates them: what sorting by rows uses
    (counting every table of thousands of datasets would take seconds)."""
    try:
        with warehouse.reader() as connection:
            found = connection.execute(
                "select schema_name, table_name, estimated_size from duckdb_tables()"
            ).fetchall()
    except (NotFoundError, BusyError):
        return {}
    return {(schema, table): int(size) for schema, table, size in found}
