"""The PostgreSQL warehouse's reads: one read-only statement under an ordinary role, the statement
timeout, previews and exports without dlt's columns, and dropping one dataset's schema only.

A fresh database per test on the server scripts/test-services starts; the reads go through a
role without superuser, as docs/deploy.md tells a team to set up.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pyarrow.csv
import pyarrow.parquet as pq
import pytest

from leadferry.errors import ConfigError, NotFoundError, QueryTimeoutError
from leadferry.postgres import PostgresWarehouse
from leadferry.settings import Settings
from leadferry.warehouse import drop_schema, open_warehouse
from tests.postgres_server import fresh_database, server_url

pytestmark = pytest.mark.services


@pytest.fixture
def database() -> Iterator[str]:
    """A database with dataset ``acme`` (1,000 leads) and ``other``, as the owner sees it."""
    with fresh_database() as url:
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(
                "create schema acme; create table acme.leads as select g as uid, "
                "'name ' || g as name, g % 7 as day, 'x' as _dlt_id from generate_series(0, 999) g"
            )
            connection.execute("create schema other; create table other.leads (uid bigint)")
        yield url


@pytest.fixture
def reader_url(database) -> Iterator[str]:
    """*database*'s URL for an ordinary role that may read acme's tables."""
    role = f"lf_reader_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database, autocommit=True) as connection:
        connection.execute(f"create role {role} login nosuperuser")
        connection.execute(f"grant usage on schema acme to {role}")
        connection.execute(f"grant select on all tables in schema acme to {role}")
    parts = urlsplit(database)
    yield urlunsplit(parts._replace(netloc=f"{role}@{parts.netloc.split('@', 1)[-1]}"))
    with psycopg.connect(database, autocommit=True) as connection:
        connection.execute(f"drop owned by {role}")
        connection.execute(f"drop role {role}")


@pytest.fixture
def warehouse(reader_url) -> PostgresWarehouse:
    return PostgresWarehouse(reader_url, lock_timeout=5, statement_timeout=60)


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("copy acme.leads to '/tmp/leadferry-leads.csv'", "not COPY"),
        ("copy acme.leads from '/etc/hostname'", "not COPY"),
        ("select pg_read_file('/etc/passwd')", "not pg_read_file"),
        ("select lo_import ('/etc/passwd')", "not lo_import"),
        ("select 1; select 2", "exactly one SQL statement"),
        ("insert into acme.leads values (1)", "not INSERT"),
        ("with gone as (delete from acme.leads returning uid) select * from gone", "read-only"),
        ("  -- nothing\n ", "the query is empty"),
        ("select from where", "syntax error"),
    ],
)
def test_a_query_is_one_read_only_statement(warehouse, sql, message):
    with pytest.raises(ConfigError, match=message):
        warehouse.query(sql)
    assert warehouse.query("select count(*) as n from acme.leads").rows == [(1000,)]


@pytest.mark.parametrize(
    "sql",
    [
        "select pg_read_file('/etc/passwd')",
        "copy (select 1) to '/tmp/leadferry-out.csv'",
        "create table acme.t (x int)",
        "select * from other.leads",
    ],
)
def test_the_role_and_the_transaction_refuse_what_the_names_do_not_catch(warehouse, sql):
    """The guard that counts: an ordinary role in a read-only transaction."""
    with warehouse.reader() as connection, pytest.raises(psycopg.Error) as refused:
        connection.execute(sql)
    assert isinstance(
        refused.value, psycopg.errors.InsufficientPrivilege | psycopg.errors.ReadOnlySqlTransaction
    )


@pytest.mark.parametrize(
    ("sql", "columns"),
    [
        ("select count(*) as n from acme.leads", ["n"]),
        ("with d as (select distinct day from acme.leads) select count(*) as days from d", None),
        ("explain select * from acme.leads", None),
        ("values (1)", None),
    ],
)
def test_reads_of_the_warehouse_run(warehouse, sql, columns):
    result = warehouse.query(sql)
    assert result.rows
    if columns is not None:
        assert result.columns == columns


def test_a_query_past_its_timeout_is_cancelled_and_the_next_one_runs(reader_url):
    with pytest.raises(QueryTimeoutError, match="ran longer than 0.2s and was cancelled"):
        PostgresWarehouse(reader_url, 5, 0.2).query("select pg_sleep(30)")
    assert PostgresWarehouse(reader_url, 5, 60).query("select 1 as one").rows == [(1,)]


def test_preview_and_export_leave_dlts_columns_out(warehouse, tmp_path):
    assert warehouse.tables("acme") == ["leads"]
    preview = warehouse.preview("acme", "leads", 3)
    assert preview.columns == ["uid", "name", "day"]
    assert len(preview.rows) == 3
    csv_path = tmp_path / "out" / "leads.csv"
    assert warehouse.export("acme", "leads", "csv", csv_path) == 1000
    assert csv_path.read_text().splitlines()[0] == "uid,name,day"
    assert pyarrow.csv.read_csv(csv_path).num_rows == 1000
    parquet_path = tmp_path / "out" / "leads.parquet"
    assert warehouse.export("acme", "leads", "parquet", parquet_path) == 1000
    table = pq.read_table(parquet_path)
    assert table.column_names == ["uid", "name", "day"]
    assert sorted(table.column("uid").to_pylist()) == list(range(1000))
    with pytest.raises(NotFoundError, match="dataset acme has no lead_sends rows yet"):
        warehouse.export("acme", "lead_sends", "csv", tmp_path / "x.csv")


def test_the_warehouse_url_chooses_the_warehouse(database, tmp_path):
    settings = Settings(home=tmp_path, warehouse_url=database)
    assert isinstance(open_warehouse(settings), PostgresWarehouse)
    assert settings.warehouse_postgres_url == database
    alias = Settings(home=tmp_path, warehouse_url=database.replace("postgresql", "postgres", 1))
    assert alias.warehouse_postgres_url == database
    with pytest.raises(
        ValueError, match="use postgresql://user:password@host/database or duckdb:///"
    ):
        Settings(home=tmp_path, warehouse_url="mysql://db/x")
    elsewhere = Settings(home=tmp_path, warehouse_url=f"duckdb://{tmp_path}/w.duckdb")
    assert elsewhere.warehouse_path == tmp_path / "w.duckdb"
    assert elsewhere.warehouse_postgres_url is None
    assert server_url().startswith("postgresql://")


def test_removing_a_dataset_drops_its_schema_only(database, tmp_path):
    settings = Settings(home=tmp_path, warehouse_url=database)
    drop_schema(settings, "acme")
    with psycopg.connect(database) as connection:
        schemas = connection.execute(
            "select nspname from pg_namespace where nspname in ('acme', 'other')"
        ).fetchall()
    assert schemas == [("other",)]


def test_settling_waits_for_a_load_in_flight_and_sees_its_commit(database):
    """A dead run's COMMIT may still be on its way: the load holds the dataset's lock until its
    transaction ends, and committed_load reads after it, never before."""
    from leadferry.apply import LoadSpec, apply_load
    from leadferry.connectors.base import Table
    from leadferry.errors import BusyError
    from leadferry.postgres import PostgresDialect, writer

    found: list[object] = []
    readers: list[threading.Thread] = []

    class ReadWhileLoading(PostgresDialect):
        def serialise(self, connection, schema):
            super().serialise(connection, schema)
            with pytest.raises(BusyError):
                PostgresWarehouse(database, 0, 5).committed_load(schema, 1)
            waiting = PostgresWarehouse(database, 30, 30)
            readers.append(
                threading.Thread(target=lambda: found.append(waiting.committed_load(schema, 1)))
            )
            readers[0].start()
            time.sleep(0.3)
            assert found == []

    spec = LoadSpec("acme", "append", (Table("leads"),), "load-1", 1, {"leads": 0})
    with writer(database) as loading:
        apply_load(loading, spec, {}, ReadWhileLoading())
    readers[0].join(timeout=30)
    (load,) = found
    assert load is not None
    assert (load.load_id, load.run_id) == ("load-1", 1)
