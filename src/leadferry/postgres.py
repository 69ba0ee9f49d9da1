"""The PostgreSQL warehouse (``LEADFERRY_WAREHOUSE_URL=postgresql://...``).

Loads go through :mod:`leadferry.apply` as on DuckDB, in one PostgreSQL transaction: each
table's Parquet files are copied (``COPY ... FROM STDIN``) into a temporary table
dropped at commit, and the same SQL applies the update method. Loads into one dataset wait for
each other on a transaction-scoped advisory lock; PostgreSQL locks everything else, so there is
no lock file.

Reads (query, preview, export, the pages and API) run in a read-only transaction with a statement
timeout. The read-only transaction refuses writes; reading server files, programs and other
servers (``pg_read_file``, ``COPY ... TO`` a file, ``lo_import``, ``dblink``) needs a superuser or
a ``pg_*_server_files`` role, so the warehouse URL's role must be an ordinary one
(``docs/deploy.md``). :meth:`PostgresWarehouse.query` also refuses anything but one SELECT-like
statement, and those functions by name.
"""

from __future__ import annotations

import contextlib
import io
import re
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leadferry.apply import MAX_IDENTIFIER, quoted, short_name
from leadferry.errors import (
    BusyError,
    ConfigError,
    LoadError,
    QueryTimeoutError,
    StorageError,
    first_line,
)
from leadferry.warehouse import QueryResult, SchemaReads

if TYPE_CHECKING:
    import psycopg
    import pyarrow as pa


_COPY_BATCH_ROWS = 50_000
_EXPORT_BATCH_ROWS = 50_000
# DuckDB's types, as the Parquet files read, and what PostgreSQL calls them.
_TYPES = {
    "VARCHAR": "text",
    "BOOLEAN": "boolean",
    "TINYINT": "smallint",
    "SMALLINT": "smallint",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "UTINYINT": "smallint",
    "USMALLINT": "integer",
    "UINTEGER": "bigint",
    "UBIGINT": "numeric(20)",
    "HUGEINT": "numeric(39)",
    "FLOAT": "real",
    "DOUBLE": "double precision",
    "DATE": "date",
    "TIME": "time",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP_S": "timestamp",
    "TIMESTAMP_MS": "timestamp",
    "TIMESTAMP_NS": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "JSON": "jsonb",
    "UUID": "uuid",
}
_DECIMAL = re.compile(r"^DECIMAL\((\d+),\s*(\d+)\)$")
_READ_KEYWORDS = ("select", "with", "values", "table", "explain", "show")
"""What a query may start with; the read-only transaction refuses writes within them."""
_UNREACHABLE = re.compile(
    r"\b(pg_read_file|pg_read_binary_file|pg_ls_\w+|pg_stat_file|dblink\w*|pg_file_write|"
    r"lo_(?:import|export|get|put|open|create|creat|unlink|from_bytea)|set_config|copy)\s*\(",
    re.IGNORECASE,
)
"""Functions and statements that reach past the warehouse's tables, refused by name as a second
guard: the first is a role that may not use them."""
_LEADING_COMMENTS = re.compile(r"^(\s+|--[^\n]*(\n|$)|/\*.*?\*/)*", re.DOTALL)


def libpq_url(url: str) -> str:
    """*url* as psycopg takes it (SQLAlchemy's ``postgresql+psycopg://`` spelling accepted)."""
    scheme, _, rest = url.partition("://")
    return f"postgresql://{rest}" if scheme.startswith("postgres") else url


LOADING = "leadferry load"
"""The ``application_name`` of a run's connection while it loads (``pg_stat_activity`` shows it);
readers are ``leadferry read``."""


def _open(url: str, name: str = "leadferry read") -> psycopg.Connection[Any]:
    """An autocommit connection (transactions are begun explicitly); psycopg's errors as such."""
    try:
        import psycopg
    except ImportError:
        raise ConfigError(
            "the PostgreSQL warehouse needs psycopg: pip install 'leadferry[postgres]'"
        ) from None
    return psycopg.connect(libpq_url(url), autocommit=True, application_name=name)


def connect(url: str) -> psycopg.Connection[Any]:
    """:func:`_open` for a reader.

    Raises:
        StorageError: the server cannot be reached or refused the login (one line, no URL).
    """
    import psycopg

    try:
        return _open(url)
    except psycopg.Error as exc:
        raise StorageError(
            f"cannot connect to the PostgreSQL warehouse: {first_line(exc)}; "
            "check LEADFERRY_WAREHOUSE_URL"
        ) from None


class PostgresConnection:
    """A psycopg connection that takes the ``?`` placeholders the shared SQL is written with."""

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    def execute(self, query: str, parameters: Sequence[Any] | None = None, /) -> Any:
        if parameters is not None:
            query = query.replace("%", "%%").replace("?", "%s")
        return self.raw.execute(query, parameters)

    def close(self) -> None:
        self.raw.close()


class PostgresDialect:
    """How :func:`leadferry.apply.apply_load` writes into PostgreSQL."""

    def stage(self, connection: PostgresConnection, relation: str, files: Sequence[str]) -> None:
        """COPY the rows of *files* into a temporary table that goes at the end of the
        transaction; DuckDB reads the files, as it does for its own warehouse, and pyarrow
        writes them as CSV (quoted text, so an empty string stays apart from NULL)."""
        import duckdb
        import pyarrow.csv

        paths = ", ".join("'" + path.replace("'", "''") + "'" for path in files)
        with duckdb.connect(":memory:", config={"threads": 1}) as reader:
            rows = reader.sql(f"select * from read_parquet([{paths}], union_by_name = true)")
            columns = [
                f"{quoted(_column_name(name))} {_postgres_type(name, str(kind))}"
                for name, kind in zip(rows.columns, rows.types, strict=True)
            ]
            connection.execute(
                f"create temp table {relation} ({', '.join(columns)}) on commit drop"
            )
            options = pyarrow.csv.WriteOptions(include_header=False)
            with connection.raw.cursor().copy(f"copy {relation} from stdin (format csv)") as copy:
                for batch in rows.to_arrow_reader(_COPY_BATCH_ROWS):
                    buffer = io.BytesIO()
                    pyarrow.csv.write_csv(batch, buffer, options)
                    copy.write(buffer.getbuffer())

    def columns(self, connection: PostgresConnection, relation: str) -> list[tuple[str, str]]:
        found = connection.execute(
            "select attname, format_type(atttypid, atttypmod) from pg_attribute "
            "where attrelid = ?::regclass and attnum > 0 and not attisdropped order by attnum",
            [relation],
        ).fetchall()
        return [(name, kind) for name, kind in found]

    def serialise(self, connection: PostgresConnection, schema: str) -> None:
        connection.execute("select pg_advisory_xact_lock(hashtext(?))", [_lock_key(schema)])

    def columns_before(
        self, connection: PostgresConnection, schema: str, tables: Sequence[str]
    ) -> dict[str, set[str]] | None:
        return None  # another node may load the dataset until serialise holds it: read after

    def index(
        self, connection: PostgresConnection, schema: str, table: str, columns: Sequence[str]
    ) -> None:
        name = quoted(short_name("ix", table, *columns))
        keys = ", ".join(quoted(column) for column in columns)
        connection.execute(
            f"create index if not exists {name} on {quoted(schema)}.{quoted(table)} ({keys})"
        )


def _lock_key(schema: str) -> str:
    """The advisory lock a load of dataset *schema* holds until its transaction has ended."""
    return f"leadferry:{schema}"


def _column_name(name: str) -> str:
    if len(name) > MAX_IDENTIFIER:
        raise LoadError(
            f"column {name[:40]}... is longer than PostgreSQL's {MAX_IDENTIFIER} characters: "
            "ask the vendor to shorten the field, or load this dataset into a DuckDB warehouse"
        )
    return name


def _postgres_type(column: str, kind: str) -> str:
    if kind in _TYPES:
        return _TYPES[kind]
    decimal = _DECIMAL.match(kind)
    if decimal:
        return f"numeric({decimal[1]}, {decimal[2]})"
    raise LoadError(f"column {column} has type {kind}, which the PostgreSQL warehouse cannot take")


@contextlib.contextmanager
def writer(url: str, lock_timeout: float = 600.0) -> Iterator[PostgresConnection]:
    """A connection for one load; the load's transaction is :func:`apply_load`'s. A lock it
    waits for longer than *lock_timeout* seconds (a long read of a table it adds a column to)
    fails the load, which changes nothing.

    Raises:
        psycopg.Error: the server cannot be reached (the run's load fails with its reason).
    """
    connection = PostgresConnection(_open(url, LOADING))
    try:
        # A killed run's transaction ends within a second even mid-statement, not when the
        # statement would have finished: its lock is what settling waits for.
        connection.execute("set client_connection_check_interval = 1000")
        connection.execute(f"set lock_timeout = {_milliseconds(lock_timeout)}")
        yield connection
    finally:
        connection.close()


class PostgresWarehouse(SchemaReads):
    """Read-only access to the PostgreSQL warehouse, one transaction per read."""

    def __init__(self, url: str, lock_timeout: float, statement_timeout: float) -> None:
        self.url = url
        self.lock_timeout = lock_timeout
        self.statement_timeout = statement_timeout

    @contextlib.contextmanager
    def reader(self, *, timed: bool = True) -> Iterator[PostgresConnection]:
        """A connection in a read-only transaction for the block, rolled back after it.

        Raises:
            StorageError: the server cannot be reached.
            BusyError: a load held a table past the lock timeout (adding a column locks it).
            QueryTimeoutError: the block's statements ran out of time.
        """
        import psycopg

        connection = PostgresConnection(connect(self.url))
        try:
            connection.execute("begin transaction read only")
            timeout = _milliseconds(self.statement_timeout) if timed else 0
            connection.execute(f"set local statement_timeout = {timeout}")
            # 0 would wait for ever: a read that may not wait waits a millisecond.
            connection.execute(f"set local lock_timeout = {_milliseconds(self.lock_timeout)}")
            try:
                yield connection
            except psycopg.errors.QueryCanceled:
                raise QueryTimeoutError(
                    f"the query ran longer than {self.statement_timeout:g}s and was cancelled: "
                    "narrow it, or allow it more time (leadferry query --timeout SECONDS)"
                ) from None
            except psycopg.errors.LockNotAvailable:
                raise BusyError(
                    "the warehouse is busy: a run is changing this dataset's tables; try again"
                ) from None
            except psycopg.Error as exc:
                raise StorageError(
                    f"the PostgreSQL warehouse refused a read: {first_line(exc)}"
                ) from None
        finally:
            connection.close()

    def query(self, sql: str) -> QueryResult:
        """Run one read-only SQL statement.

        Raises:
            ConfigError: not exactly one SELECT-like statement, or PostgreSQL refused it.
            QueryTimeoutError: it ran longer than the statement timeout.
        """
        import psycopg

        _check_statement(sql)
        with self.reader() as connection:
            try:
                # A prepared statement is one statement: PostgreSQL refuses two.
                cursor = connection.raw.cursor()
                cursor.execute(sql, prepare=True)
                if cursor.description is None:
                    return QueryResult([], [])
                return QueryResult([c.name for c in cursor.description], cursor.fetchall())
            except (psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable):
                raise
            except psycopg.errors.SyntaxError as exc:
                if "multiple commands" in str(exc):
                    raise ConfigError(
                        "give exactly one SQL statement: run them one by one"
                    ) from None
                raise ConfigError(f"query failed: {first_line(exc)}") from None
            except psycopg.errors.InsufficientPrivilege as exc:
                raise ConfigError(
                    f"query refused: it may read only the warehouse's tables ({first_line(exc)})"
                ) from None
            except psycopg.Error as exc:
                raise ConfigError(f"query failed: {first_line(exc)}") from None

    def _before_loads(self, connection: PostgresConnection, schema: str) -> None:
        """Wait for the load of *schema* in flight: a dead run's COMMIT may still be on its way
        to the server, and its transaction holds the dataset's lock until it has committed or
        rolled back."""
        connection.execute("select pg_advisory_xact_lock_shared(hashtext(?))", [_lock_key(schema)])

    def _unreadable(self, exc: Exception) -> bool:
        import psycopg

        # A lock the load held past the timeout: reader() makes it a BusyError.
        return isinstance(exc, psycopg.Error) and not isinstance(
            exc, psycopg.errors.LockNotAvailable
        )

    def preview(self, schema: str, table: str, limit: int) -> QueryResult:
        """The first *limit* rows of ``schema.table``, without dlt's bookkeeping columns."""
        with self.reader() as connection:
            cursor = connection.execute(f"{_user_rows(connection, schema, table)} limit ?", [limit])
            return QueryResult([c.name for c in cursor.description], cursor.fetchall())

    def export(self, schema: str, table: str, fmt: str, output: Path) -> int:
        """As :meth:`leadferry.warehouse.Warehouse.export`: rows read through a server-side
        cursor in batches, written by pyarrow to a hidden file renamed over *output*."""
        from leadferry.exporting import check_export, write_export

        check_export(fmt, output)
        with self.reader(timed=False) as connection:
            sql = _user_rows(connection, schema, table)
            with connection.raw.cursor(name=f"export_{secrets.token_hex(4)}") as cursor:
                cursor.execute(sql)
                return write_export(_ArrowBatches(cursor), fmt, output)


def _user_rows(connection: PostgresConnection, schema: str, table: str) -> str:
    """``select <columns but dlt's> from "schema"."table"``.

    Raises:
        NotFoundError: nothing was loaded into the table yet.
    """
    from leadferry.warehouse import _table

    name = _table(connection, schema, table)
    found = connection.execute(
        "select column_name from information_schema.columns where table_schema = ? "
        "and table_name = ? and not starts_with(column_name, '_dlt_') order by ordinal_position",
        [schema, table],
    ).fetchall()
    columns = ", ".join(quoted(column) for (column,) in found)
    return f"select {columns} from {name}"


class _ArrowBatches:
    """A server-side cursor's rows as Arrow record batches with one schema, typed from the
    columns' PostgreSQL types (a batch of NULLs would otherwise type a column as null)."""

    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self.cursor = cursor
        self.schema = _arrow_schema(cursor)

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        while rows := self.cursor.fetchmany(_EXPORT_BATCH_ROWS):
            columns = list(zip(*rows, strict=True))
            yield pa.record_batch(
                [
                    pa.array(_plain(values, field.type), type=field.type)
                    for values, field in zip(columns, self.schema, strict=True)
                ],
                schema=self.schema,
            )


def _plain(values: Sequence[Any], kind: pa.DataType) -> Sequence[Any]:
    """JSON values as text when the column is text (psycopg parses json into objects)."""
    import json

    import pyarrow as pa

    if kind == pa.string() and any(not isinstance(v, str | None) for v in values):
        return [v if v is None or isinstance(v, str) else json.dumps(v) for v in values]
    return values


def _arrow_schema(cursor: psycopg.Cursor[Any]) -> pa.Schema:
    import pyarrow as pa

    by_type: dict[str, pa.DataType] = {
        "bool": pa.bool_(),
        "int2": pa.int16(),
        "int4": pa.int32(),
        "int8": pa.int64(),
        "float4": pa.float32(),
        "float8": pa.float64(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us"),
        "timestamptz": pa.timestamp("us", tz="UTC"),
        "time": pa.time64("us"),
    }
    fields = []
    for column in cursor.description:
        name = column.type_display.split("(")[0] if column.type_display else ""
        if name == "numeric" and column.precision is not None:
            kind = pa.decimal128(column.precision, column.scale or 0)
        else:
            kind = by_type.get(_TYPE_NAMES.get(column.type_code, name), pa.string())
        fields.append(pa.field(column.name, kind))
    return pa.schema(fields)


_TYPE_NAMES = {16: "bool", 21: "int2", 23: "int4", 20: "int8", 700: "float4", 701: "float8"}
_TYPE_NAMES |= {1082: "date", 1114: "timestamp", 1184: "timestamptz", 1083: "time"}


def _check_statement(sql: str) -> None:
    body = _LEADING_COMMENTS.sub("", sql).strip().rstrip(";").strip()
    if not body:
        raise ConfigError("the query is empty: give one SQL statement")
    keyword = body.split(None, 1)[0].lower()
    if keyword not in _READ_KEYWORDS:
        raise ConfigError(
            f"query runs SELECT and EXPLAIN only, not {keyword.upper()}: "
            "the warehouse is read-only here"
        )
    reaching = _UNREACHABLE.search(body)
    if reaching:
        raise ConfigError(
            f"query refused: it may read only the warehouse's tables, not {reaching[1]}"
        )


def _milliseconds(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def drop_schemas(url: str, schemas: Sequence[str]) -> None:
    """Drop *schemas* and everything in them, in one transaction."""
    with writer(url) as connection:
        connection.execute("begin")
        try:
            for schema in schemas:
                connection.execute(f"drop schema if exists {quoted(schema)} cascade")
            connection.execute("commit")
        except BaseException:
            connection.execute("rollback")
            raise
