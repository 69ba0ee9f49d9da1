"""A dataset's data in the warehouse: its tables, their row counts and columns, and removal.

Everything here reads through :class:`~leadferry.warehouse.Warehouse`, so it holds the shared
lock for one short read and says who is writing when the warehouse is busy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from leadferry.connectors import get_connector
from leadferry.errors import BusyError, ConfigError

if TYPE_CHECKING:
    from leadferry.settings import Settings
    from leadferry.store import Dataset, Store
    from leadferry.warehouse import Warehouse

_DLT_PREFIX = "_dlt"


@dataclass(frozen=True, slots=True)
class TableSchema:
    """A warehouse table of a dataset and its columns, as ``(name, type)`` in table order."""

    name: str
    columns: list[tuple[str, str]]


def table_names(dataset: Dataset) -> list[str]:
    """The tables the dataset's report loads, its main table first."""
    report = get_connector(dataset.connector).report(dataset.report)
    return [table.name for table in report.tables]


def choose_table(dataset: Dataset, table: str | None) -> str:
    """*table* if the dataset's report loads it, else the main table when *table* is None.

    Raises:
        ConfigError: the report has no such table (the message lists its tables).
    """
    names = table_names(dataset)
    if table is None or table == "":
        return names[0]
    if table not in names:
        raise ConfigError(
            f"dataset {dataset.name} has no table {table!r} (tables: {', '.join(names)})"
        )
    return table


def last_run_rows(dataset: Dataset) -> int | None:
    """What the dataset's latest run loaded into its main table (None if it loaded nothing:
    it never ran, is running, or failed)."""
    last = dataset.last_run
    if last is None or last.status != "success":
        return None
    return last.rows.get(table_names(dataset)[0], 0)


_COUNTED: dict[tuple[str, int, int], int] = {}
"""Row counts already read: ``(warehouse, dataset id, latest run id) -> rows``. A dataset's
tables change only through its runs, so its count holds until it has a newer run."""
_COUNTED_LIMIT = 50_000


def main_row_counts(warehouse: Warehouse, datasets: Sequence[Dataset]) -> dict[str, int]:
    """Rows in each dataset's main table, for those whose table exists.

    Counts already read since the dataset's latest run are remembered; the others are read in
    one go.

    Raises:
        NotFoundError: there is no warehouse yet.
        BusyError: a run held the warehouse longer than the warehouse's lock timeout.
    """
    where = str(warehouse.path)
    keys = {
        dataset.name: (where, dataset.id, dataset.last_run.id)
        for dataset in datasets
        if dataset.last_run is not None and dataset.last_run.status != "running"
    }
    known = {name: _COUNTED[key] for name, key in keys.items() if key in _COUNTED}
    unread = [dataset for dataset in datasets if dataset.name not in known]
    if not unread:
        return known
    read = _read_main_row_counts(warehouse, unread)
    if len(_COUNTED) > _COUNTED_LIMIT:
        _COUNTED.clear()
    for name, count in read.items():
        if name in keys:
            _COUNTED[keys[name]] = count
    return known | read


def _read_main_row_counts(warehouse: Warehouse, datasets: Sequence[Dataset]) -> dict[str, int]:
    mains = {(dataset.name, table_names(dataset)[0]) for dataset in datasets}
    with warehouse.reader() as connection:
        existing = connection.execute(
            "select schema_name, table_name from duckdb_tables() "
            "where list_contains(?, schema_name)",
            [sorted({schema for schema, _table in mains})],
        ).fetchall()
        found = sorted(mains.intersection(existing))
        if not found:
            return {}
        counts = " union all ".join(
            f"select ? as dataset, count(*) as n from {_quoted(schema)}.{_quoted(table)}"
            for schema, table in found
        )
        rows = connection.execute(counts, [schema for schema, _table in found]).fetchall()
    return {name: int(count) for name, count in rows}


def table_schemas(warehouse: Warehouse, dataset: Dataset) -> list[TableSchema]:
    """The dataset's tables in the warehouse with their columns (dlt's bookkeeping left out).

    The report's tables come first, in its order; tables that exist but that the report no
    longer declares follow by name. A dataset that never loaded has none.

    Raises:
        NotFoundError: there is no warehouse yet.
        BusyError: a run held the warehouse longer than the warehouse's lock timeout.
    """
    with warehouse.reader() as connection:
        found = connection.execute(
            "select table_name, column_name, data_type from information_schema.columns "
            "where table_schema = ? and not starts_with(table_name, '_') "
            "and not starts_with(column_name, ?) order by table_name, ordinal_position",
            [dataset.name, _DLT_PREFIX],
        ).fetchall()
    columns: dict[str, list[tuple[str, str]]] = {}
    for table, column, data_type in found:
        columns.setdefault(table, []).append((column, data_type))
    declared = table_names(dataset)
    order = [name for name in declared if name in columns]
    order += sorted(name for name in columns if name not in declared)
    return [TableSchema(name, columns[name]) for name in order]


def remove_dataset(store: Store, settings: Settings, name: str, *, drop_data: bool) -> None:
    """Remove a dataset and its history; with *drop_data*, drop its warehouse schema first.

    Raises:
        NotFoundError: no such dataset.
        BusyError: it is running, or the warehouse stayed busy (nothing was removed).
    """
    from leadferry.warehouse import drop_schema

    dataset = store.get_dataset(name)
    if dataset.last_run is not None and dataset.last_run.status == "running":
        raise BusyError(f"dataset {name} is running: remove it once its run has finished")
    if drop_data:
        staging = f"{name}_staging"
        taken = any(other.name == staging for other in store.list_datasets())
        drop_schema(settings, name, leftovers=() if taken else (staging,))
    store.remove_dataset(name)


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
