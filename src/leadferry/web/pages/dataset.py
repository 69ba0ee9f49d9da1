"""The dataset page (``/datasets/{name}``): status, schedule, settings, schema, data preview,
History with its chart, and exports."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from leadferry.apply import DAY_COLUMN
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
    TableSchema,
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
from leadferry.store import STATUSES, TRIGGERS
from leadferry.warehouse import QueryResult, Warehouse
from leadferry.web.deps import NowDep, SettingsDep, StoreDep, ViewerDep
from leadferry.web.downloads import export_download
from leadferry.web.pages.chart import DayChart, day_chart, run_chart
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
    shown: HistoryDep,
    table: str | None = None,
) -> Response:
    """Everything about one dataset; ``?table=`` previews another of its tables, and
    ``?status=``, ``?trigger=`` and ``?page=`` choose the runs its History lists."""
    dataset = store.get_dataset(name)
    chosen = choose_table(dataset, table)
    timezone = dataset_zone(store, dataset)
    can_change = role_allows(user.role, "editor")
    context = history_context(request, store, now, dataset, can_change, shown)
    context |= _settings_context(dataset, timezone, now)
    context |= _data_context(page_warehouse(settings), dataset, chosen)
    return render_page(request, "dataset.html", context)


@router.get("/datasets/{name:dataset}/history")
def dataset_history(
    request: Request, store: StoreDep, now: NowDep, user: ViewerDep, name: str, shown: HistoryDep
) -> Response:
    """The History section alone: what the page polls while a run is going, and what its
    filters and pages swap in."""
    dataset = store.get_dataset(name)
    can_change = role_allows(user.role, "editor")
    return render_history(request, store, now, dataset, can_change, shown)


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
    request: Request,
    store: Store,
    now: dt.datetime,
    dataset: Dataset,
    can_change: bool,
    shown: HistoryView | None = None,
) -> Response:
    """The History fragment, with the status block swapped out of band."""
    context = history_context(request, store, now, dataset, can_change, shown or HistoryView())
    context["oob"] = True
    return render(request, "_history.html", context)  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class HistoryView:
    """Which runs the History lists: by status and trigger, one page of them."""

    status: str = ""
    trigger: str = ""
    page: int = 1


def history_view(
    status: Annotated[str, Query(pattern="^(|" + "|".join(STATUSES) + ")$")] = "",
    trigger: Annotated[str, Query(pattern="^(|" + "|".join(TRIGGERS) + ")$")] = "",
    page: Annotated[int, Query(ge=1)] = 1,
) -> HistoryView:
    return HistoryView(status, trigger, page)


HistoryDep = Annotated[HistoryView, Depends(history_view)]
HISTORY_PAGE = 20
"""Runs per page of the History."""


def history_context(
    request: Request,
    store: Store,
    now: dt.datetime,
    dataset: Dataset,
    can_change: bool,
    shown: HistoryView,
) -> dict[str, Any]:
    """What the status block and the History section show: the summary and chart of every
    run, and the page of runs the filters choose, each numbered in the dataset's history."""
    runs = store.list_runs(dataset.name)
    page, total = store.history_page(
        dataset.name,
        status=shown.status,
        trigger=shown.trigger,
        offset=(shown.page - 1) * HISTORY_PAGE,
        limit=HISTORY_PAGE,
    )
    tz = zone(dataset_zone(store, dataset))
    status = dataset_status(dataset, runs, now)
    filters = {"status": shown.status, "trigger": shown.trigger}

    def history_url(number: int) -> str:
        query = urlencode({k: v for k, v in (filters | {"page": number}).items() if v})
        return f"/datasets/{dataset.name}/history?{query}"

    return {
        "dataset": dataset,
        "status": status,
        "active": is_active(request, dataset.name, status.status),
        "can_change": can_change,
        "tz": tz,
        "runs": [
            {"run": run, "number": number, "window": days_of(run.window_start, run.window_end, tz)}
            for number, run in page
        ],
        "summary": history_summary(runs),
        "chart": run_chart(runs, tz),
        "history_filters": filters,
        "history_total": total,
        "history_page": shown.page,
        "history_pages": max(1, -(-total // HISTORY_PAGE)),
        "history_url": history_url,
        "run_statuses": STATUSES,
        "triggers": TRIGGERS,
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
        "dated": connector.report(dataset.report).dated,
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
        "data_chart": _data_chart(warehouse, dataset, schemas) if problem is None else None,
        "tables": table_names(dataset),
        "table": table,
        "schemas": schemas,
        "preview": preview,
        "data_problem": problem,
        "rows": counts[dataset.name] if counted else last_run_rows(dataset),
        "rows_counted": counted,
    }


DATA_CHART_DAYS = 90
"""The last report days with rows that the data chart shows."""


def _data_chart(
    warehouse: Warehouse, dataset: Dataset, schemas: list[TableSchema]
) -> DayChart | None:
    """Rows per report day of the main table, when its report is dated and the table has its
    day column (None otherwise, or when the warehouse cannot be read now)."""
    main = table_names(dataset)[0]
    columns = {name for schema in schemas if schema.name == main for name, _type in schema.columns}
    if DAY_COLUMN not in columns:
        return None
    try:
        counts = warehouse.rows_per_day(dataset.name, main, DAY_COLUMN, DATA_CHART_DAYS)
    except (NotFoundError, BusyError, QueryTimeoutError, StorageError):
        return None
    return day_chart(counts)


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
