"""dlt's part of a run: its settings, the destination that picks its file format, and the
pipeline's working folder.

dlt extracts each run into Parquet files per table; leadferry applies them to the warehouse
itself, every table in one transaction (:mod:`leadferry.apply`), so dlt's normalise and load steps
and its staging schemas are never used. The destination is still dlt's DuckDB one: it decides how
dlt's extract writes the files.
"""

from __future__ import annotations

import copy
import functools
import logging
import os
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dlt
import pyarrow as pa
from dlt.common.configuration.container import Container
from dlt.common.configuration.providers import EnvironProvider
from dlt.common.configuration.specs.base_configuration import is_secret_hint
from dlt.common.configuration.specs.pluggable_run_context import PluggableRunContext
from dlt.common.data_writers import writers
from dlt.common.destination.reference import DestinationReference

from leadferry.settings import Settings

if TYPE_CHECKING:
    from dlt.common.destination import DestinationCapabilitiesContext
    from dlt.common.normalizers.naming import NamingConvention


class _DuckDBDestination(dlt.destinations.duckdb):  # type: ignore[misc]
    """dlt's DuckDB destination, its capabilities resolved once per process.

    dlt resolves the destination's whole configuration (each field looked up in every config
    provider, under several section names) each time a pipeline step asks for the capabilities:
    ten times a run, about a third of dlt's CPU in a 100-lead run. What they depend on (the
    destination's type, the naming convention, dlt's settings in the environment, which
    :func:`configure_dlt` sets before the first run) does not change within a process.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._capabilities: dict[Any, DestinationCapabilitiesContext] = {}
        self._capabilities_lock = threading.Lock()

    @property
    def destination_type(self) -> str:
        # What dlt's own factory calls itself, so that dlt treats this one as its DuckDB.
        base = dlt.destinations.duckdb
        return DestinationReference.normalize_type(f"{base.__module__}.{base.__qualname__}")

    def capabilities(
        self, config: Any = None, naming: NamingConvention | None = None
    ) -> DestinationCapabilitiesContext:
        if config is not None:
            return super().capabilities(config, naming)
        key = None if naming is None else (type(naming), naming.max_length)
        with self._capabilities_lock:
            if key not in self._capabilities:
                self._capabilities[key] = super().capabilities(None, naming)
            # dlt's pipeline sets the chosen file format on what it gets: a copy each time.
            return copy.copy(self._capabilities[key])


class _RunFileWriter(writers.ArrowToParquetWriter):  # type: ignore[misc]
    """dlt's writer of Arrow items into Parquet files, without what nobody reads in them.

    A run's files are read once, whole, by :mod:`leadferry.apply`, then deleted. Dictionary
    encoding (a hash of every value of every text column) and min/max statistics serve readers
    that skip pages; leaving them out cut dlt's extract and normalise of a million leads from
    3.4 to 2.8 CPU-s. The load id column keeps its dictionary (one value per file); LZ4 costs
    less than Snappy for about the same size (the files are 130 MB per million leads).
    """

    def _create_writer(self, schema: pa.Schema) -> Any:
        import pyarrow.parquet as pq

        form = self.parquet_format
        return pq.ParquetWriter(
            self._f,
            schema,
            flavor=form.flavor,
            version=form.version,
            data_page_size=form.data_page_size,
            coerce_timestamps=form.coerce_timestamps,
            allow_truncated_timestamps=form.allow_truncated_timestamps,
            use_compliant_nested_type=form.use_compliant_nested_type,
            **run_file_options(schema),
        )


def run_file_options(schema: pa.Schema) -> dict[str, Any]:
    """How a run's Parquet files with columns *schema* are encoded (see _RunFileWriter)."""
    return {
        "compression": "lz4",
        "use_dictionary": [name for name in schema.names if name == "_dlt_load_id"],
        "write_statistics": False,
    }


@functools.cache
def _is_secret(hint: Any) -> bool:
    return bool(is_secret_hint(hint))


class _EnvironProvider(EnvironProvider):  # type: ignore[misc]
    """dlt's environment provider, judging whether a field is secret once per type hint.

    A run looks up about 700 names in the environment (40-odd configurations, each field under
    several section names), and dlt's provider takes each hint apart with ``typing`` to tell
    whether the field is a secret (which may be read from ``/run/secrets``): most of the cost of
    dlt's configuration in a small run. The answer depends on the hint alone. Values are still
    read from the environment at each lookup, and secrets the way dlt reads them.
    """

    def get_value(
        self, key: str, hint: type[Any], pipeline_name: str, *sections: str
    ) -> tuple[Any | None, str]:
        try:
            secret = _is_secret(hint)
        except TypeError:  # a hint that cannot be a dict key: judged as dlt does, each time
            secret = True
        if secret:
            return super().get_value(key, hint, pipeline_name, *sections)  # type: ignore[no-any-return]
        name = self.get_key_name(key, pipeline_name, *sections)
        return os.environ.get(name), name


_ENVIRON = EnvironProvider().name
"""The name dlt's providers are listed under (the one :func:`configure_dlt` replaces)."""

_DESTINATIONS: dict[Path, _DuckDBDestination] = {}
_DESTINATIONS_LOCK = threading.Lock()


def warehouse_destination(path: Path) -> _DuckDBDestination:
    """The destination dlt extracts for: the DuckDB file at *path*, one object per process."""
    with _DESTINATIONS_LOCK:
        if path not in _DESTINATIONS:
            _DESTINATIONS[path] = _DuckDBDestination(str(path), destination_name="duckdb")
        return _DESTINATIONS[path]


def clear_pipeline(settings: Settings, name: str) -> None:
    """Delete dataset *name*'s dlt working folder: its state, schemas and packages.

    A run starts and ends with an empty folder. Nothing there outlives a run on purpose: the
    state and schemas are the run's own (dlt never loads, so it has nothing to remember), and a
    package is either applied (its files are left to go) or was left by a failed or killed run,
    and is then never applied: it may hold rows that are in the warehouse already, or rows of a
    window that was since loaded again. Deleting it is cheaper than dlt's abort, which runs its
    load step to record the abort and keeps every package's files on disk.

    Raises:
        OSError: the folder cannot be deleted.
    """
    folder = settings.pipelines_dir / name
    if folder.exists():
        shutil.rmtree(folder)


def configure_dlt(settings: Settings) -> None:
    """dlt's settings for leadferry's runs; the environment may override all but the load id."""
    defaults = {
        "RUNTIME__DLTHUB_TELEMETRY": "false",
        "RUNTIME__LOG_LEVEL": "ERROR",
        # Rows dlt holds before writing: one chunk of the load's (run/load.py), so each is
        # written as it comes, not held and concatenated with the next two (40 MB less RSS
        # while a big run's pages come, the same CPU).
        "DATA_WRITER__BUFFER_MAX_ITEMS": "20000",
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    # dlt would pickle each run's trace (exceptions, config values) under pipelines/: nothing
    # reads it, and nothing written there may hold what a vendor said.
    os.environ["ENABLE_RUNTIME_TRACE"] = "false"
    # dlt's own state never reaches the warehouse (only the report's tables are applied): not
    # writing it into every package saves an extract step per run.
    os.environ["RESTORE_FROM_DESTINATION"] = "false"
    # Every row carries the load that wrote it: what `_leadferry_loads` records per run.
    os.environ["NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID"] = "true"
    # What pyarrow allocates goes to the system allocator (see leadferry/__init__.py), also
    # where pyarrow was imported before leadferry and its C++ default is mimalloc.
    pa.set_memory_pool(pa.system_memory_pool())
    logging.getLogger("dlt").setLevel(logging.ERROR)
    # The writer dlt's extract looks up for Arrow items into Parquet files.
    writers.WRITER_SPECS[_RunFileWriter.writer_spec()] = _RunFileWriter
    providers = Container()[PluggableRunContext].providers
    if not isinstance(providers[_ENVIRON], _EnvironProvider):
        providers[_ENVIRON] = _EnvironProvider()
    settings.pipelines_dir.mkdir(parents=True, exist_ok=True)
