"""Load Preview: the first rows a dataset would load, fetched without saving anything."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from leadferry.warehouse import QueryResult

if TYPE_CHECKING:
    import httpx2

    from leadferry.dates import DateSelection
    from leadferry.settings import Settings
    from leadferry.store import Store


def preview_report(
    store: Store,
    settings: Settings,
    account_name: str,
    report_slug: str,
    params: Mapping[str, Any],
    date_selection: DateSelection,
    timezone: str | None,
    now: dt.datetime,
    limit: int = 10,
    client: httpx2.Client | None = None,
) -> QueryResult:
    """Fetch the first *limit* rows of the report's main table for the selection's window.

    The fetch is planned as a run of a dataset of these settings would be; only the first
    pages are requested: the fetch stops as soon as *limit* rows arrived. Nothing is written
    to the store or the warehouse. The requests go through *client* when given, otherwise
    through a client of its own.

    Raises:
        NotFoundError: no such account or report.
        ConfigError: invalid parameters or dates (named).
        ConnectorError: the vendor refused or failed.
    """
    from leadferry.run.client import connected
    from leadferry.run.plan import plan_run
    from leadferry.store import DatasetSpec

    account = store.get_account(account_name)
    unsaved = DatasetSpec(
        name="preview",
        account=account.name,
        report=report_slug,
        params=dict(params),
        date_selection=date_selection,
        timezone=timezone,
    )
    plan = plan_run(account, unsaved, now)
    main_table = plan.report.main_table.name
    found: list[dict[str, Any]] = []
    with connected(account, settings, client) as connector:
        batches = connector.fetch(plan.report, plan.params, plan.window)
        try:
            for part in batches:
                if part.table == main_table:
                    found.extend(part.batch.slice(0, limit - len(found)).to_pylist())
                if len(found) >= limit:
                    break
        finally:
            batches.close()
    # Pages may carry different per-lead fields: show every column any row has, in order seen.
    columns = list(dict.fromkeys(name for row in found for name in row))
    return QueryResult(columns, [tuple(row.get(name) for name in columns) for row in found])
