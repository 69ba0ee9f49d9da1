"""A dataset's health at a glance: its status, whether it needs attention, its last success.

The Data Center, the dataset page and the REST API all show a dataset's status by these rules,
so a badge means the same thing wherever it appears.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from leadferry import alerts
from leadferry.connectors import get_connector

if TYPE_CHECKING:
    from leadferry.store import Dataset, Run
    from leadferry.store.records import PageDetails

STATUS_LABELS = {
    "running": "running",
    "failing": "failing",
    "failed": "failed",
    "stale": "stale",
    "never": "never run",
    "success": "success",
}
"""Each status and the words its badge shows, in the order they take precedence."""


@dataclass(frozen=True, slots=True)
class DatasetStatus:
    """What a dataset's badge says, and why it needs attention (if it does).

    ``status`` is a key of :data:`STATUS_LABELS`; ``reasons`` is empty when all is well.
    """

    status: str
    last_success: dt.datetime | None
    reasons: tuple[str, ...]

    @property
    def label(self) -> str:
        return STATUS_LABELS[self.status]

    @property
    def needs_attention(self) -> bool:
        return bool(self.reasons)


@dataclass(frozen=True, slots=True)
class DatasetOverview:
    """One line of the Data Center: a dataset, its status, its zone and how many rows it holds.

    ``rows`` counts the main table in the warehouse (as its latest successful run left it) when
    ``rows_counted`` is true; otherwise it is what the last run loaded into it (None if it
    never ran).
    """

    dataset: Dataset
    status: DatasetStatus
    timezone: str
    rows: int | None
    rows_counted: bool
    recent: tuple[str, ...] = ()
    """The statuses of its last five runs, oldest first."""


def last_success(runs: Iterable[Run]) -> dt.datetime | None:
    """When the newest successful run among *runs* finished (None if none succeeded)."""
    return max(
        (r.finished_at for r in runs if r.status == "success" and r.finished_at is not None),
        default=None,
    )


def is_stale(dataset: Dataset, succeeded_at: dt.datetime | None, now: dt.datetime) -> bool:
    """Whether the dataset's ``stale_after`` minutes have passed without a success.

    The period counts from the last success, or from the dataset's creation if it never
    succeeded: the rule the stale-data alert follows.
    """
    if not dataset.stale_after:
        return False
    limit = dt.timedelta(minutes=dataset.stale_after)
    alert = alerts.stale_alert(dataset.name, succeeded_at, dataset.created_at, limit, now)
    return alert is not None


def dataset_status(dataset: Dataset, runs: Iterable[Run], now: dt.datetime) -> DatasetStatus:
    """The status of *dataset* given its *runs* (any order), at *now* (see :func:`judge`)."""
    last = dataset.last_run
    succeeded_at = last_success(runs)
    return judge(
        last.status if last else None,
        failing=dataset.state.failing,
        succeeded_at=succeeded_at,
        stale=is_stale(dataset, succeeded_at, now),
        stale_after=dataset.stale_after,
    )


def judge(
    last_status: str | None,
    *,
    failing: bool,
    succeeded_at: dt.datetime | None,
    stale: bool,
    stale_after: int | None,
) -> DatasetStatus:
    """The badge is the first that applies of: running, failing (retries exhausted), failed (the
    last run failed or was interrupted), stale, never run, success. A dataset needs attention
    when it is failing, its last run failed or was interrupted, it is stale, or it never
    succeeded.
    """
    reasons = []
    if failing:
        reasons.append("failing: its retries ran out")
    if last_status in ("failed", "interrupted"):
        reasons.append(f"its last run {last_status}")
    if stale:
        reasons.append(f"stale: no success for over {stale_after} minutes")
    if succeeded_at is None:
        reasons.append("never ran" if last_status is None else "never succeeded")
    if last_status == "running":
        status = "running"
    elif failing:
        status = "failing"
    elif last_status in ("failed", "interrupted"):
        status = "failed"
    elif stale:
        status = "stale"
    elif last_status is None:
        status = "never"
    else:
        status = "success"
    return DatasetStatus(status, succeeded_at, tuple(reasons))


def overview(details: PageDetails, statuses: Mapping[str, DatasetStatus]) -> list[DatasetOverview]:
    """The Data Center's lines for the datasets of *details* (read in one go by
    ``Store.page_details``), whose *statuses* are known, with the rows of their main tables as
    their runs recorded them (what the last run loaded when that is not known).
    """
    from leadferry.run.plan import effective_timezone
    from leadferry.service.data import last_run_rows

    accounts = {account.name: account for account in details.accounts}
    lines = []
    for dataset in details.datasets:
        counted = dataset.table_rows is not None
        rows = dataset.table_rows if counted else last_run_rows(dataset)
        connector = get_connector(dataset.connector)
        zone = effective_timezone(dataset.timezone, accounts[dataset.account], connector)
        recent = tuple(details.recent.get(dataset.name, ()))
        lines.append(DatasetOverview(dataset, statuses[dataset.name], zone, rows, counted, recent))
    return lines
