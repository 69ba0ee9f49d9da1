"""The dataset page (``/datasets/{name}``): status, schedule, settings, schema, data preview,
History with its chart, and exports."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from leadferry.auth import role_allows
from leadferry.connectors import get_connector
from leadferry.dates import zone
from leadferry.errors import (
    BusyError,
    ConfigError,
    NotFoundError,
    QueryTimeoutError,
    StorageError,
)
from leadferry.service.data import (
    choose_table,
    last_run_rows,
    main_row_counts,
    table_names,
    table_schemas,
)
from leadferry.service.datasets import (
    dataset_zone,
    describe,
    is_paused,
    next_window,
    schedule_text,
)
from leadferry.service.runs import days_of, history_summary
from leadferry.service.status import dataset_status
from leadferry.warehouse import QueryResult, Warehouse
from leadferry.web.deps import NowDep, SettingsDep, StoreDep, ViewerDep
from leadferry.web.downloads import export_download
from leadferry.web.pages.chart import run_chart
from leadferry.web.pages.common import is_active, page_warehouse, render_page
from leadferry.web.templating import render

if TYPE_CHECKING:
    from leadferry.store import Dataset, Store

router = APIRouter(include_in_schema=False)

PREVIEW_ROWS = 20
NO_DATA = "Nothing loaded yet: run the dataset to fill its tables."


@router.get("/datasets/{name:dataset}")
def dataset_page(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    now: NowDep,
    user: ViewerDep,
    name: str,
    table: str | None = None,
) -> Response:
    """Everything about one dataset; ``?table=`` previews another of its tables."""
    dataset = store.get_dataset(name)
    chosen = choose_table(dataset, table)
    timezone = dataset_zone(store, dataset)
    context = history_context(request, store, now, dataset, role_allows(user.role, "editor"))
    context |= _settings_context(dataset, timezone, now)
    context |= _data_context(page_warehouse(settings), dataset, chosen)
    return render_page(request, "dataset.html", context)


@router.get("/datasets/{name:dataset}/history")
def dataset_history(
    request: Request, store: StoreDep, now: NowDep, user: ViewerDep, name: str
) -> Response:
    """The History section alone: what the page polls while a run is going."""
    dataset = store.get_dataset(name)
    return render_history(request, store, now, dataset, role_allows(user.role, "editor"))


@router.get("/datasets/{name:dataset}/preview")
def dataset_preview(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    _user: ViewerDep,
    name: str,
    table: str | None = None,
) -> Response:
    """The data preview of one table (the table selector swaps it in place)."""
    dataset = store.get_dataset(name)
    chosen = choose_table(dataset, table)
    preview, problem = _preview(page_warehouse(settings), dataset, chosen)
    context = {"dataset": dataset, "table": chosen, "preview": preview, "data_problem": problem}
    return render(request, "_preview_table.html", context)  # type: ignore[no-any-return]


@router.get("/datasets/{name:dataset}/export")
def export(
    store: StoreDep,
    settings: SettingsDep,
    _user: ViewerDep,
    name: str,
    format: str = "csv",  # noqa: A002 (the query parameter's name)
    table: str | None = None,
) -> Response:
    """Download a table of the dataset as CSV or Parquet (a temporary file, deleted after).

    Raises:
        ConfigError: an unknown format or table; NotFoundError: nothing loaded yet;
        BusyError: the warehouse stayed busy.
    """
    return export_download(store, settings, name, format, table)


def render_history(
    request: Request, store: Store, now: dt.datetime, dataset: Dataset, can_change: bool
) -> Response:
    """The History fragment, with the status block swapped out of band."""
    context = history_context(request, store, now, dataset, can_change) | {"oob": True}
    return render(request, "_history.html", context)  # type: ignore[no-any-return]


def history_context(
    request: Request, store: Store, now: dt.datetime, dataset: Dataset, can_change: bool
) -> dict[str, Any]:
    """What the status block and the History section show."""
    runs = store.list_runs(dataset.name)
    tz = zone(dataset_zone(store, dataset))
    status = dataset_status(dataset, runs, now)
    return {
        "dataset": dataset,
        "status": status,
        "active": is_active(request, dataset.name, status.status),
        "can_change": can_change,
        "tz": tz,
        "runs": [
            {"run": run, "window": days_of(run.window_start, run.window_end, tz)} for run in runs
        ],
        "summary": history_summary(runs),
        "chart": run_chart(runs, tz),
    }


def _settings_context(dataset: Dataset, timezone: str, now: dt.datetime) -> dict[str, Any]:
    connector = get_connector(dataset.connector)
    try:
        window = next_window(dataset, timezone, now)
        next_days = days_of(window.start, window.end, zone(timezone)) if window else None
    except ConfigError as exc:
        next_days = f"cannot be resolved: {exc}"
    return {
        "timezone": timezone,
        "facts": describe(dataset, zone(timezone)),
        "connector": connector.label,
        "report": connector.report(dataset.report).label,
        "schedule": schedule_text(dataset),
        "next_window": next_days,
        "paused": is_paused(dataset),
    }


def _data_context(warehouse: Warehouse, dataset: Dataset, table: str) -> dict[str, Any]:
    """Schema, preview and row count, each read under the shared lock; less when it is busy,
    too slow or unreadable (the page says why)."""
    schemas, counts, problem = [], {}, None
    try:
        schemas = table_schemas(warehouse, dataset)
        counts = main_row_counts(warehouse, [dataset])
    except NotFoundError:
        problem = NO_DATA
    except (BusyError, QueryTimeoutError, StorageError) as exc:
        problem = str(exc)
    preview = None
    if problem is None:
        preview, problem = _preview(warehouse, dataset, table)
    counted = dataset.name in counts
    return {
        "tables": table_names(dataset),
        "table": table,
        "schemas": schemas,
        "preview": preview,
        "data_problem": problem,
        "rows": counts[dataset.name] if counted else last_run_rows(dataset),
        "rows_counted": counted,
    }


def _preview(
    warehouse: Warehouse, dataset: Dataset, table: str
) -> tuple[QueryResult | None, str | None]:
    """The first rows of *table*, or why there are none to show."""
    try:
        if table not in warehouse.tables(dataset.name):
            return None, f"No rows in {table} yet." if dataset.last_run else NO_DATA
        return warehouse.preview(dataset.name, table, PREVIEW_ROWS), None
    except NotFoundError:
        return None, NO_DATA
    except (BusyError, QueryTimeoutError, StorageError) as exc:
        return None, str(exc)
