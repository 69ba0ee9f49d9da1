"""One run's rows applied to every table of a dataset in one transaction: on a real DuckDB file,
and on a fresh PostgreSQL database (the same tests: both warehouses keep the same promises)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from leadferry.apply import DUCKDB, LoadSpec, apply_load, committed_load
from leadferry.connectors.base import Table
from leadferry.errors import LoadError
from tests.postgres_server import fresh_database

TABLES = (Table("leads", primary_key=("uid",)), Table("lead_sends", parent_key="lead_uid"))
DAY = dt.date(2026, 11, 20)


class Warehouse:
    """A warehouse and the Parquet files of each load, as a run would have them."""

    def __init__(self, folder: Path, connection, dialect, refused: type[Exception]) -> None:
        self.folder = folder
        self.connection = connection
        self.dialect = dialect
        self.refused = refused
        """What the database raises when a column cannot take the incoming values."""
        self.loads = 0

    def load(self, method: str, fail_on: str | None = None, **tables: pa.Table) -> list[str]:
        """Apply *tables* (name -> rows) as the next run; *fail_on* names a table whose insert
        the database refuses (a value its column cannot take)."""
        self.loads += 1
        load_id = f"load-{self.loads}"
        files = {}
        for name, rows in tables.items():
            rows = rows.append_column("_dlt_load_id", pa.array([load_id] * len(rows)))
            if name == fail_on:
                rows = rows.append_column("lead_uid_text", pa.array(["x"] * len(rows)))
            path = self.folder / f"{name}.{self.loads}.parquet"
            pq.write_table(rows, path)
            files[name] = [str(path)]
        if fail_on:
            # The column exists with a type the incoming text cannot take.
            self.connection.execute(
                f"alter table shop.{fail_on} add column if not exists lead_uid_text bigint"
            )
        spec = LoadSpec(
            schema="shop",
            method=method,
            tables=TABLES,
            load_id=load_id,
            run_id=self.loads,
            rows={name: len(rows) for name, rows in tables.items()},
            merge_key=("uid",) if method == "merge" else (),
            days=(DAY,) if method == "partition" else (),
        )
        return apply_load(self.connection, spec, files, self.dialect)

    def rows(self, table: str) -> list[tuple]:
        columns = "uid, day" if table == "leads" else "lead_uid, target"
        return self.select(f"select {columns} from shop.{table} order by 1, 2")

    def select(self, sql: str) -> list[tuple]:
        return self.connection.execute(sql).fetchall()

    def snapshot(self) -> tuple[list[tuple], list[tuple], list[tuple]]:
        loads = self.select("select load_id from shop._leadferry_loads order by 1")
        return self.rows("leads"), self.rows("lead_sends"), loads


def leads(*uids: int, day: dt.date = DAY) -> pa.Table:
    return pa.table({"uid": list(uids), "day": [day] * len(uids), "report_day": [day] * len(uids)})


def sends(*pairs: tuple[int, str]) -> pa.Table:
    return pa.table({"lead_uid": [p[0] for p in pairs], "target": [p[1] for p in pairs]})


@pytest.fixture(params=["duckdb", pytest.param("postgresql", marks=pytest.mark.services)])
def warehouse(request, tmp_path) -> Iterator[Warehouse]:
    if request.param == "duckdb":
        connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
        yield Warehouse(tmp_path, connection, DUCKDB, duckdb.ConversionException)
        connection.close()
        return
    import psycopg

    from leadferry.postgres import PostgresDialect, writer

    with fresh_database() as url, writer(url) as connection:
        yield Warehouse(tmp_path, connection, PostgresDialect(), psycopg.errors.DatatypeMismatch)


@pytest.mark.parametrize("method", ["replace", "append", "merge", "partition"])
def test_a_refused_child_table_leaves_every_table_as_it_was(warehouse, method):
    warehouse.load(method, leads=leads(1, 2), lead_sends=sends((1, "a"), (2, "b")))
    before = warehouse.snapshot()
    # The main table's rows are written first; the child's are refused: nothing stays.
    with pytest.raises(warehouse.refused):
        warehouse.load(method, fail_on="lead_sends", leads=leads(1, 3), lead_sends=sends((3, "c")))
    assert warehouse.snapshot() == before
    assert committed_load(warehouse.connection, "shop", 2) is None


def test_replace_empties_the_tables_that_got_no_rows(warehouse):
    warehouse.load("replace", leads=leads(1, 2), lead_sends=sends((1, "a")))
    warehouse.load("replace", leads=leads(3))
    assert warehouse.rows("leads") == [(3, DAY)]
    assert warehouse.rows("lead_sends") == []


def test_merge_keeps_one_row_per_key_and_replaces_the_sends_of_reloaded_leads(warehouse):
    warehouse.load("merge", leads=leads(1, 2), lead_sends=sends((1, "a"), (2, "b")))
    warehouse.load("merge", leads=leads(2, 2, 3), lead_sends=sends((3, "c")))
    assert [uid for uid, _day in warehouse.rows("leads")] == [1, 2, 3]
    # Lead 2 came again without sends: its old send went with it.
    assert warehouse.rows("lead_sends") == [(1, "a"), (3, "c")]


def test_partition_empties_the_windows_days_and_removes_orphan_sends(warehouse):
    other = DAY - dt.timedelta(days=1)
    warehouse.load(
        "append",
        leads=pa.concat_tables([leads(1, day=other), leads(2)]),
        lead_sends=sends((1, "a"), (2, "b")),
    )
    # Nothing arrives for DAY, the window's only day: it ends up empty, with its sends.
    warehouse.load("partition", leads=leads(3, day=other))
    assert warehouse.rows("leads") == [(3, other)]
    assert warehouse.rows("lead_sends") == []


def test_a_load_is_recorded_with_its_rows_and_never_applied_twice(warehouse):
    applied = warehouse.load("append", leads=leads(1))
    assert (applied.schema_changes, applied.table_rows) == ([], 1)
    found = committed_load(warehouse.connection, "shop", 1)
    assert found is not None
    assert (found.load_id, found.rows) == ("load-1", {"leads": 1})
    warehouse.loads = 0  # the same load id and run again
    with pytest.raises(LoadError, match="in the warehouse already"):
        warehouse.load("append", leads=leads(1))
    assert warehouse.rows("leads") == [(1, DAY)]


def test_new_columns_and_tables_are_added_and_named(warehouse):
    warehouse.load("append", leads=leads(1))
    wider = leads(2).append_column("score", pa.array([7]))
    applied = warehouse.load("append", leads=wider, lead_sends=sends((2, "b")))
    assert applied.schema_changes == ["leads: new column score", "lead_sends: new table"]
    assert applied.table_rows == 2
    assert warehouse.select("select uid, score from shop.leads order by 1") == [
        (1, None),
        (2, 7),
    ]
