"""The Data Center's list at any size: search, filters, sorting and one page of lines.

The store's list query (:meth:`~leadferry.store.Store.list_page`) judges each dataset's
status in SQL (stale too: the time is a parameter), searches, filters, sorts (by rows too: each
successful run records its main table's rows), counts and cuts the page there, so only a page
of rows comes back; only that page is loaded in full
(:func:`~leadferry.service.status.overview`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from leadferry.errors import BusyError, ConfigError, NotFoundError
from leadferry.service.data import main_row_counts
from leadferry.service.status import (
    STATUS_LABELS,
    DatasetOverview,
    DatasetStatus,
    judge,
    overview,
)

if TYPE_CHECKING:
    from leadferry.store import Dataset, ListedDataset, Store
    from leadferry.store.records import AccountLine, PageDetails, StatusPage
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
) -> DatasetListing:
    """The page of datasets *query* asks for, with their status, recent runs and the rows of
    their main tables (as their runs recorded them)."""
    found, details, to_count = _page(store, now, query)
    # Sizes the store lacks (rare: an old store, a run settled after its process died) are
    # counted once, and the page read again, sorted and shown with them.
    if to_count and count_unknown_rows(store, warehouse, to_count):
        found, details, _ = _page(store, now, query)
    statuses = {line.name: _status(line) for line in found.lines}
    shown = overview(details, statuses)
    return DatasetListing(shown, found.total, found.flagged, found.datasets, details.accounts)


def _page(
    store: Store, now: dt.datetime, query: DatasetQuery
) -> tuple[StatusPage, PageDetails, list[Dataset]]:
    return store.list_page(
        now,
        search=query.search,
        connector=query.connector,
        account=query.account,
        status=query.status,
        sort=query.sort,
        offset=query.offset,
        limit=query.limit,
    )


def count_unknown_rows(
    store: Store, warehouse: Warehouse, unknown: list[Dataset] | None = None
) -> bool:
    """Count in the warehouse, once, the main tables whose rows the store does not know
    (datasets that loaded before it kept them, or whose run was settled after its process
    died) and record them, so that the list shows and sorts every size from the store.

    *unknown*: those datasets when already read (default: read them). A missing or busy
    warehouse leaves them unknown until the next time. Returns whether any was recorded.
    """
    if unknown is None:
        unknown = store.datasets_to_count()
    if not unknown:
        return False
    try:
        counts = main_row_counts(warehouse, unknown)
    except (NotFoundError, BusyError):
        return False
    # A dataset that loaded but has no main table (its runs brought no rows) holds none.
    store.record_table_rows([(dataset, counts.get(dataset.name, 0)) for dataset in unknown])
    return True


def _status(line: ListedDataset) -> DatasetStatus:
    """A line's badge and reasons, from what the store judged in SQL."""
    return judge(
        line.last_status,
        failing=line.failing,
        succeeded_at=line.last_success,
        stale=line.stale,
        stale_after=line.stale_after,
    )
