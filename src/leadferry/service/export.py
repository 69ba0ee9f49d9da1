"""Exports to download: a dataset's table written as CSV or Parquet into a temporary folder.

The web page and the REST API both answer with the file and remove its folder once it is sent.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from leadferry.errors import ConfigError, NotFoundError

if TYPE_CHECKING:
    from leadferry.settings import Settings
    from leadferry.store import Store

EXPORT_TYPES = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}
"""Each export format and its media type."""


def export_file(
    store: Store, settings: Settings, name: str, fmt: str, table: str | None = None
) -> Path:
    """Write a table of dataset *name* (its main one by default) to a new temporary folder.

    Returns the file, named ``<dataset>_<table>.<fmt>``; the caller removes its folder.

    Raises:
        ConfigError: an unknown format or table.
        NotFoundError: no such dataset, or nothing loaded into the table yet.
        BusyError: a run held the warehouse longer than the lock timeout.
    """
    from leadferry.service.data import choose_table
    from leadferry.warehouse import open_warehouse

    if fmt not in EXPORT_TYPES:
        raise ConfigError(f"unknown export format {fmt!r}: use csv or parquet")
    dataset = store.get_dataset(name)
    chosen = choose_table(dataset, table)
    warehouse = open_warehouse(settings)
    if chosen not in warehouse.tables(dataset.name):
        raise NotFoundError(f"dataset {name} has no {chosen} rows yet: run it first")
    folder = Path(tempfile.mkdtemp(prefix="leadferry-export-"))
    output = folder / f"{name}_{chosen}.{fmt}"
    try:
        warehouse.export(dataset.name, chosen, fmt, output)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return output
