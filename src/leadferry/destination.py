"""dlt's DuckDB destination, with `replace` done in one copy instead of two.

dlt makes `replace` atomic on DuckDB by loading into a staging schema and then copying every row
into the dataset's table in one transaction (its ``insert-from-staging`` strategy): each row is
written twice. DuckDB can do the same in one copy: each table's load job deletes the rows of
earlier loads and inserts the new file in a single transaction, so a load that fails leaves the
previous table as it was, and a reader never sees a half-replaced table. For 1,000,000 leads that
took the load step from about 5 s to under 3 (docs/benchmarks.md).

Merge and partition (dlt's merge with delete-insert) still go through the staging schema.
Everything else is dlt's own destination: same configuration section (``destination.duckdb``),
same type, same SQL for the other write dispositions.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dlt
import pyarrow as pa
from dlt.common.destination.client import LoadJob, PreparedTableSchema
from dlt.common.destination.exceptions import DestinationTerminalException
from dlt.common.destination.reference import DestinationReference
from dlt.destinations.impl.duckdb.duck import DuckDbClient, DuckDbCopyJob

from leadferry.settings import Settings

if TYPE_CHECKING:
    from dlt.common.destination import Destination

LOAD_ID_COLUMN = "_dlt_load_id"


class _ReplacingCopyJob(DuckDbCopyJob):
    """Loads one file into a `replace` table, deleting what earlier loads left, atomically."""

    def run(self) -> None:
        sql_client = self._job_client.sql_client
        table = sql_client.make_qualified_table_name(self.load_table_name)
        with sql_client.begin_transaction():
            # Rows of this load stay: a table may come in several files, each its own job.
            sql_client.execute_sql(
                f"DELETE FROM {table} WHERE {LOAD_ID_COLUMN} <> %s", self._load_id
            )
            super().run()


class _DuckDbClient(DuckDbClient):
    def should_truncate_table_before_load(self, table_name: str) -> bool:
        # Replace tables are emptied inside their load job's transaction instead.
        return False

    def create_load_job(
        self, table: PreparedTableSchema, file_path: str, load_id: str, restore: bool = False
    ) -> LoadJob:
        job = super().create_load_job(table, file_path, load_id, restore)
        if table["write_disposition"] != "replace":
            return job
        if type(job) is not DuckDbCopyJob or LOAD_ID_COLUMN not in table["columns"]:
            raise DestinationTerminalException(
                f"{table['name']}: replace loads Parquet files with {LOAD_ID_COLUMN}"
            )
        return _ReplacingCopyJob(file_path)


class _DuckDb(dlt.destinations.duckdb):
    @property
    def client_class(self) -> type[DuckDbClient]:
        return _DuckDbClient

    @property
    def destination_type(self) -> str:
        # dlt's own type, so pipelines and their state see the destination they always had.
        parent = dlt.destinations.duckdb
        return DestinationReference.normalize_type(f"{parent.__module__}.{parent.__qualname__}")


def warehouse_destination(path: Path) -> Destination[Any, Any]:
    """The destination runs load into: the DuckDB file at *path*."""
    return _DuckDb(str(path), replace_strategy="truncate-and-insert", destination_name="duckdb")


def configure_dlt(settings: Settings) -> None:
    """dlt's settings for leadferry's runs; the environment may override all but the load id."""
    defaults = {
        "RUNTIME__DLTHUB_TELEMETRY": "false",
        "RUNTIME__LOG_LEVEL": "ERROR",
        "LOAD__TRUNCATE_STAGING_DATASET": "true",
        "LOAD__DELETE_COMPLETED_JOBS": "true",
        "DATA_WRITER__BUFFER_MAX_ITEMS": "50000",
    }
    # DuckDB may otherwise take 80% of RAM while loading, so peak memory grew with the run;
    # bounded, it spills. Insertion order is not needed: tables have keys, not positions. One
    # thread per statement: dlt loads the tables side by side already, and two threads inside
    # that memory spent a third more CPU on the same insert (2.9 against 2.2 s for 1M leads).
    defaults["DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG"] = json.dumps(
        {
            "preserve_insertion_order": False,
            "memory_limit": settings.warehouse_memory,
            "threads": 1,
        }
    )
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    # dlt would pickle each run's trace (exceptions, config values) under pipelines/: nothing
    # reads it, and nothing written there may hold what a vendor said.
    os.environ["ENABLE_RUNTIME_TRACE"] = "false"
    # Replace tells the rows of earlier loads by their load id.
    os.environ["NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID"] = "true"
    # Arrow's default allocator keeps freed blocks per thread; the system one gives them back.
    pa.set_memory_pool(pa.system_memory_pool())
    logging.getLogger("dlt").setLevel(logging.ERROR)
    settings.pipelines_dir.mkdir(parents=True, exist_ok=True)
