"""The Data Center (``/``): every dataset with its status, rows and next run; Run Now."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from leadferry.auth import role_allows
from leadferry.connectors import get_connector
from leadferry.service.listing import DatasetQuery, count_unknown_rows, list_datasets
from leadferry.service.status import STATUS_LABELS, DatasetOverview, dataset_status, overview
from leadferry.web.deps import NowDep, SettingsDep, StoreDep, ViewerDep
from leadferry.web.pages.common import is_active, page_warehouse, render_page
from leadferry.web.templating import is_htmx, render

if TYPE_CHECKING:
    from leadferry.settings import Settings
    from leadferry.store import Store
    from leadferry.store.records import AccountLine

router = APIRouter(include_in_schema=False)


PAGE_SIZES = (25, 50, 100, 200)
MAX_PAGE_SIZE = 5000
"""The largest page a URL may ask for (the menu offers PAGE_SIZES)."""


@router.get("/")
def data_center(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    now: NowDep,
    user: ViewerDep,
    attention: bool = False,
    q: Annotated[str, Query(max_length=200)] = "",
    connector: str = "",
    account: str = "",
    status: str = "",
    sort: str = "name",
    page: Annotated[int, Query(ge=1)] = 1,
    size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = PAGE_SIZES[1],
) -> Response:
    """The datasets matching the search and filters, one page of them; ``?attention=1`` keeps
    those that need attention. HTMX requests (the search, filters, sorting, paging and the
    attention toggle) get the dataset list alone."""
    query = DatasetQuery.of_request(
        q, connector, account, status, attention=attention, sort=sort,
        offset=(page - 1) * size, limit=size,
    )  # fmt: skip
    listing = list_datasets(store, page_warehouse(settings), now, query)
    pages = max(1, -(-listing.total // size))
    filters = {"q": query.search, "connector": connector, "account": account}
    filters |= {"status": "" if attention else status, "sort": sort, "size": size}
    context = {
        "rows": [row_view(request, line) for line in listing.lines],
        "attention": attention,
        "total": listing.total,
        "flagged": listing.flagged,
        "datasets": listing.datasets,
        "filtered": bool(query.search or connector or account or status),
        "filters": filters,
        "page": min(page, pages),
        "pages": pages,
        "first": query.offset + 1,
        "page_url": lambda number: list_url(filters, number, attention),
        "choices": filter_choices(listing.accounts),
        "sorts": SORT_LABELS,
        "page_sizes": PAGE_SIZES,
        "statuses": STATUS_LABELS,
        "can_change": role_allows(user.role, "editor"),
    }
    # A history restore wants the whole page back, not the fragment.
    if is_htmx(request) and "HX-History-Restore-Request" not in request.headers:
        response: Response = render(request, "_dataset_rows.html", context)
    else:
        response = render_page(request, "data_center.html", context)
    response.headers["Vary"] = "HX-Request"
    return response


DEFAULTS = {"sort": "name", "size": PAGE_SIZES[1], "page": 1}


def list_url(filters: dict[str, Any], page: int, attention: bool) -> str:
    """The Data Center's URL for page *page* with these filters (defaults left out)."""
    shown = {k: v for k, v in (filters | {"page": page}).items() if v and v != DEFAULTS.get(k)}
    if attention:
        shown["attention"] = 1
    return "/?" + urlencode(shown) if shown else "/"


SORT_LABELS = {
    "name": "Name",
    "-name": "Name, Z to A",
    "status": "Status (worst first)",
    "-last_success": "Last success, newest first",
    "last_success": "Last success, oldest first",
    "next_run": "Next run, soonest first",
    "-rows": "Rows, most first",
    "rows": "Rows, fewest first",
}


def filter_choices(accounts: list[AccountLine]) -> dict[str, list[tuple[str, str]]]:
    """The connectors and accounts the filters offer: those that exist."""
    connectors = sorted({account.connector for account in accounts})
    return {
        "connector": [(name, get_connector(name).label) for name in connectors],
        "account": [(account.name, account.name) for account in accounts],
    }


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
    count_unknown_rows(store, page_warehouse(settings))
    dataset = store.get_dataset(name)
    status = dataset_status(dataset, store.list_runs(name), now)
    details = store.page_details([name])
    line = overview(details, {name: status})[0]
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
