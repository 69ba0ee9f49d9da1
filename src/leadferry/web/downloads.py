"""File downloads shared by the pages and the REST API."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from leadferry.service.export import EXPORT_TYPES, export_file

if TYPE_CHECKING:
    from leadferry.settings import Settings
    from leadferry.store import Store


def export_download(
    store: Store, settings: Settings, name: str, fmt: str, table: str | None
) -> FileResponse:
    """A dataset's table as a CSV or Parquet download; its temporary folder goes once sent.

    Raises:
        ConfigError: an unknown format or table; NotFoundError: nothing loaded yet;
        BusyError: the warehouse stayed busy.
    """
    output = export_file(store, settings, name, fmt, table)
    return FileResponse(
        output,
        media_type=EXPORT_TYPES[fmt],
        filename=output.name,
        background=BackgroundTask(shutil.rmtree, output.parent, ignore_errors=True),
    )
