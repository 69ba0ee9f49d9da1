"""A dataset's data: the first rows of its tables in the warehouse, the rows of a report not
yet saved as a dataset (Load Preview, fetched from the vendor without saving anything), and
exports of its tables as CSV or Parquet files."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import FileResponse

from leadferry.errors import NotFoundError
from leadferry.service.data import choose_table
from leadferry.service.export import EXPORT_TYPES
from leadferry.service.preview import preview_report
from leadferry.warehouse import QueryResult, open_warehouse
from leadferry.web.api.models import (
    PreviewPublic,
    PreviewRequest,
    date_selection_of,
    problems,
)
from leadferry.web.api.routing import ApiRoute
from leadferry.web.deps import (
    EditorDep,
    NowDep,
    SettingsDep,
    StoreDep,
    VendorClientDep,
    ViewerDep,
)
from leadferry.web.downloads import export_download

router = APIRouter(tags=["data"], route_class=ApiRoute)

DatasetPath = Annotated[str, Path(max_length=63, description="The dataset's name.")]
TableQuery = Annotated[
    str | None, Query(max_length=64, description="A table other than the report's main one.")
]


def preview_public(result: QueryResult) -> PreviewPublic:
    return PreviewPublic(columns=result.columns, rows=[list(row) for row in result.rows])


@router.get("/datasets/{name}/preview", responses=problems(404, 409, 422))
def preview_dataset(
    name: DatasetPath,
    store: StoreDep,
    settings: SettingsDep,
    _user: ViewerDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="How many rows.")] = 10,
    table: TableQuery = None,
) -> PreviewPublic:
    """The first rows of a dataset's table as loaded (dlt's bookkeeping columns left out).

    404 until a run has loaded the table; 409 while a run holds the warehouse too long.
    """
    dataset = store.get_dataset(name)
    chosen = choose_table(dataset, table)
    warehouse = open_warehouse(settings)
    if chosen not in warehouse.tables(dataset.name):
        raise NotFoundError(f"dataset {name} has no {chosen} rows yet: run it first")
    return preview_public(warehouse.preview(dataset.name, chosen, limit))


@router.post("/preview", responses=problems(403, 404, 422, 502))
def preview_unsaved(
    body: PreviewRequest,
    store: StoreDep,
    settings: SettingsDep,
    now: NowDep,
    vendor_client: VendorClientDep,
    _user: EditorDep,
) -> PreviewPublic:
    """Load Preview: the first rows a dataset of these settings would load, fetched from the
    vendor now; nothing is saved. 502 when the vendor refuses or cannot be reached."""
    result = preview_report(
        store,
        settings,
        body.account,
        body.report,
        body.params,
        date_selection_of(body.date_selection),
        body.timezone,
        now,
        limit=body.limit,
        client=vendor_client,
    )
    return preview_public(result)


@router.get(
    "/datasets/{name}/export",
    response_class=FileResponse,
    responses={
        200: {
            "description": "The table as a file to download.",
            "content": {media_type: {} for media_type in EXPORT_TYPES.values()},
        },
        **problems(404, 409, 422),
    },
)
def export_dataset(
    name: DatasetPath,
    store: StoreDep,
    settings: SettingsDep,
    _user: ViewerDep,
    format: Annotated[  # noqa: A002 (the query parameter's name)
        Literal["csv", "parquet"], Query(description="The file format.")
    ] = "csv",
    table: TableQuery = None,
) -> FileResponse:
    """A table of the dataset as a CSV or Parquet file (``<dataset>_<table>.<format>``).

    404 until a run has loaded the table; 409 while a run holds the warehouse too long.
    """
    return export_download(store, settings, name, format, table)
