"""dlt's part of a run: its settings, and the destination that picks its file format.

dlt extracts and normalises each run into Parquet files per table; leadferry applies them to the
warehouse itself, every table in one transaction (:mod:`leadferry.apply`), so dlt's load step and
its staging schemas are never used. The destination is still dlt's DuckDB one: it decides how
dlt's normaliser writes the files.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dlt
import pyarrow as pa

from leadferry.settings import Settings

if TYPE_CHECKING:
    from dlt.common.destination import Destination


def warehouse_destination(path: Path) -> Destination[Any, Any]:
    """The destination dlt normalises for: the DuckDB file at *path*."""
    return dlt.destinations.duckdb(str(path), destination_name="duckdb")


def configure_dlt(settings: Settings) -> None:
    """dlt's settings for leadferry's runs; the environment may override all but the load id."""
    defaults = {
        "RUNTIME__DLTHUB_TELEMETRY": "false",
        "RUNTIME__LOG_LEVEL": "ERROR",
        "DATA_WRITER__BUFFER_MAX_ITEMS": "50000",
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    # dlt would pickle each run's trace (exceptions, config values) under pipelines/: nothing
    # reads it, and nothing written there may hold what a vendor said.
    os.environ["ENABLE_RUNTIME_TRACE"] = "false"
    # Every row carries the load that wrote it: what `_leadferry_loads` records per run.
    os.environ["NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID"] = "true"
    # Arrow's default allocator keeps freed blocks per thread; the system one gives them back.
    pa.set_memory_pool(pa.system_memory_pool())
    logging.getLogger("dlt").setLevel(logging.ERROR)
    settings.pipelines_dir.mkdir(parents=True, exist_ok=True)
