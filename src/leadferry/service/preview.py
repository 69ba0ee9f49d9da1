"""Load Preview: the first rows a dataset would load, fetched without saving anything."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from leadferry.connectors import get_connector
from leadferry.dates import DateSelection, today_in
from leadferry.warehouse import QueryResult

if TYPE_CHECKING:
    import httpx2

    from leadferry.settings import Settings
    from leadferry.store import Store


def preview_report(
    store: Store,
    settings: Settings,
    account_name: str,
    report_slug: str,
    params: Mapping[str, Any],
    date_selection: Mapping[str, Any] | None,
    timezone: str | None,
    now: dt.datetime,
    limit: int = 10,
    client: httpx2.Client | None = None,
) -> QueryResult:
    """Fetch the first *limit* rows of the report's main table for the selection's window.

    Only the first pages are requested: the fetch stops as soon as *limit* rows arrived.
    Nothing is written to the store or the warehouse. The requests go through *client* when
    given, otherwise through a client of its own.

    Raises:
        NotFoundError: no such account or report.
        ConfigError: invalid parameters or dates (named).
        ConnectorError: the vendor refused or failed.
    """
    from leadferry.run.client import connected
    from leadferry.run.plan import check_dataset_settings

    account = store.get_account(account_name)
    connector_cls = get_connector(account.connector)
    typed = check_dataset_settings(
        connector_cls,
        report_slug,
        dict(params),
        dict(date_selection or {}),
        timezone,
        "replace",
        None,
    )
    report = connector_cls.report(report_slug)
    zone_name = timezone or account.config.get("timezone") or connector_cls.default_timezone()
    window = (
        DateSelection.parse(dict(date_selection or {})).resolve(zone_name, today_in(zone_name, now))
        if report.dated
        else None
    )
    found: list[dict[str, Any]] = []
    with connected(account, settings, client) as connector:
        batches = connector.fetch(report, typed, window)
        try:
            for part in batches:
                if part.table == report.main_table.name:
                    found.extend(part.batch.slice(0, limit - len(found)).to_pylist())
                if len(found) >= limit:
                    break
        finally:
            batches.close()
    # Pages may carry different per-lead fields: show every column any row has, in order seen.
    columns = list(dict.fromkeys(name for row in found for name in row))
    return QueryResult(columns, [tuple(row.get(name) for name in columns) for row in found])
