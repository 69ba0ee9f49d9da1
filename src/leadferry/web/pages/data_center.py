"""The Data Center (``/``): every dataset with its status, rows and next run; Run Now."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from leadferry.auth import role_allows
from leadferry.connectors import get_connector
from leadferry.service.status import DatasetOverview, needing_attention, overview
from leadferry.web.deps import NowDep, SettingsDep, StoreDep, ViewerDep
from leadferry.web.pages.common import is_active, page_warehouse, render_page
from leadferry.web.templating import is_htmx, render

if TYPE_CHECKING:
    from leadferry.settings import Settings
    from leadferry.store import Store

router = APIRouter(include_in_schema=False)


@router.get("/")
def data_center(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    now: NowDep,
    user: ViewerDep,
    attention: bool = False,
) -> Response:
    """Every dataset; ``?attention=1`` keeps those that need attention. HTMX requests (the
    filter toggle) get the dataset list alone."""
    lines = overview(store, page_warehouse(settings), now)
    flagged = needing_attention(lines)
    context = {
        "rows": [row_view(request, line) for line in (flagged if attention else lines)],
        "attention": attention,
        "total": len(lines),
        "flagged": len(flagged),
        "can_change": role_allows(user.role, "editor"),
    }
    # A history restore wants the whole page back, not the fragment.
    if is_htmx(request) and "HX-History-Restore-Request" not in request.headers:
        response: Response = render(request, "_dataset_rows.html", context)
    else:
        response = render_page(request, "data_center.html", context)
    response.headers["Vary"] = "HX-Request"
    return response


@router.get("/datasets/{name:dataset}/row")
def dataset_row(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    now: NowDep,
    user: ViewerDep,
    name: str,
    polling: bool = False,
) -> Response:
    """One dataset's line of the Data Center: what a running line polls. The poll that finds
    the run over asks the page to reload the list (``datasets-changed``), whose counts and
    filter may have changed."""
    row = line_of(request, store, settings, now, name)
    response = render_row(request, row, role_allows(user.role, "editor"))
    if polling and not row["active"]:
        response.headers["HX-Trigger"] = "datasets-changed"
    return response


def line_of(
    request: Request, store: Store, settings: Settings, now: dt.datetime, name: str
) -> dict[str, Any]:
    """The line of dataset *name* (NotFoundError if it is gone)."""
    line = overview(store, page_warehouse(settings), now, [store.get_dataset(name)])[0]
    return row_view(request, line)


def render_row(request: Request, row: dict[str, Any], can_change: bool) -> Response:
    """The ``<tr>`` of one dataset."""
    context = {"row": row, "can_change": can_change}
    return render(request, "_dataset_row.html", context)  # type: ignore[no-any-return]


def row_view(request: Request, line: DatasetOverview) -> dict[str, Any]:
    """What a line of the table shows besides the overview: labels, and whether it is busy."""
    dataset = line.dataset
    connector = get_connector(dataset.connector)
    active = is_active(request, dataset.name, line.status.status)
    return {
        "line": line,
        "connector": connector.label,
        "report": connector.report(dataset.report).label,
        "active": active,
        "queued": active and line.status.status != "running",
    }
