"""The Data Center's list at any size: search, filters, sorting and one page of lines.

The store's list query (:meth:`~leadferry.store.Store.list_statuses`) judges each dataset's
status in SQL (stale too: the time is a parameter), searches, filters, sorts, counts and cuts
the page there, so only a page of rows comes back; only that page is loaded in full
(:func:`~leadferry.service.status.overview`). Sorting by rows is the exception: the sizes live
in the warehouse, so the matching lines are sorted here by DuckDB's catalog estimates.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from leadferry.connectors import get_connector
from leadferry.errors import BusyError, ConfigError, NotFoundError
from leadferry.service.status import (
    STATUS_LABELS,
    DatasetOverview,
    DatasetStatus,
    judge,
    overview,
)

if TYPE_CHECKING:
    from pathlib import Path

    from leadferry.store import ListedDataset, Store
    from leadferry.store.records import AccountLine
    from leadferry.warehouse import Warehouse

SORTS = ("name", "status", "last_success", "next_run", "rows")
"""What the list can be sorted by; ``-name`` (a leading minus) sorts the other way."""
STATUS_FILTERS = (*STATUS_LABELS, "attention")
"""A badge's status, or ``attention``: every dataset that needs attention."""


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

    @classmethod
    def of_request(
        cls, q: str, connector: str, account: str, status: str, *, attention: bool, **paging: Any
    ) -> DatasetQuery:
        """The query a page or API request asks for: *attention* stands for its status filter."""
        return cls(
            search=q.strip(),
            connector=connector,
            account=account,
            status="attention" if attention else status,
            **paging,
        )

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
    by_rows = query.sort.removeprefix("-") == "rows"
    found = store.list_statuses(
        now,
        search=query.search,
        connector=query.connector,
        account=query.account,
        status=query.status,
        sort="name" if by_rows else query.sort,
        offset=0 if by_rows else query.offset,
        limit=None if by_rows else query.limit,
    )
    lines = found.lines
    if by_rows:
        end = None if query.limit is None else query.offset + query.limit
        lines = _by_rows(lines, query.sort.startswith("-"), warehouse)[query.offset : end]
    details = store.page_details([line.name for line in lines])
    statuses = {line.name: _status(line) for line in lines}
    shown = overview(details, warehouse if count_rows else None, statuses)
    return DatasetListing(shown, found.total, found.flagged, found.datasets, details.accounts)


def _status(line: ListedDataset) -> DatasetStatus:
    """A line's badge and reasons, from what the store judged in SQL."""
    return judge(
        line.last_status,
        failing=line.failing,
        succeeded_at=line.last_success,
        stale=line.stale,
        stale_after=line.stale_after,
    )


def _by_rows(
    lines: list[ListedDataset], descending: bool, warehouse: Warehouse
) -> list[ListedDataset]:
    """*lines* (by name) sorted by the rows of their main tables, ties by name; datasets
    without a table come last either way."""
    sizes = _table_sizes(warehouse)
    sized = [
        (sizes.get((line.name, _main_table(line.connector, line.report))), line) for line in lines
    ]
    valued = [(rows, line) for rows, line in sized if rows is not None]
    valued.sort(key=lambda pair: pair[0], reverse=descending)
    return [line for _rows, line in valued] + [line for rows, line in sized if rows is None]


@functools.cache
def _main_table(connector: str, report: str) -> str:
    return get_connector(connector).report(report).tables[0].name


_SIZES: dict[tuple[str, tuple[int, ...]], dict[tuple[str, str], int]] = {}
"""Table sizes already read, by warehouse file and the state of its files on disk."""


def _table_sizes(warehouse: Warehouse) -> dict[tuple[str, str], int]:
    """Every table's rows as DuckDB's catalog estimates them: what sorting by rows uses
    (counting every table of thousands of datasets would take seconds).

    Opening a warehouse of thousands of schemas takes hundreds of milliseconds, so the sizes
    are kept until the warehouse's file or its write-ahead log changes on disk (every load
    changes one of them).
    """
    key = (str(warehouse.path), _file_state(warehouse.path))
    if key in _SIZES:
        return _SIZES[key]
    try:
        with warehouse.reader() as connection:
            found = connection.execute(
                "select schema_name, table_name, estimated_size from duckdb_tables()"
            ).fetchall()
    except (NotFoundError, BusyError):
        return {}
    _SIZES.clear()
    _SIZES[key] = {(schema, table): int(size) for schema, table, size in found}
    return _SIZES[key]


def _file_state(path: Path) -> tuple[int, ...]:
    """The size and change time of the warehouse file and of its write-ahead log."""
    state: list[int] = []
    for file in (path, path.with_name(path.name + ".wal")):
        try:
            info = file.stat()
        except FileNotFoundError:
            state += [-1, -1]
        else:
            state += [info.st_size, info.st_mtime_ns]
    return tuple(state)
