"""Applying one run's rows to its dataset: every table and the run's record in ONE transaction.

dlt extracts a run into Parquet files per table; this module writes them into the dataset's
schema itself, so that a run's changes to the main table, its child tables (LeadExec's
``lead_sends``), partition's emptied days and the bookkeeping row that says the run committed
become visible together or not at all. A process killed at any instant leaves the dataset as it
was before the run or as it is after it, and :func:`committed_load` tells which.

The SQL is generated here and only here, and runs on DuckDB and PostgreSQL alike. What differs
between them is a :class:`Dialect`: how a table's files become the relation
``incoming_<table>`` inside the transaction (a view over ``read_parquet`` on DuckDB, a temporary
table filled by COPY on PostgreSQL), how a dataset's loads are serialised, and which indexes the
tables get.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from leadferry.errors import LoadError

if TYPE_CHECKING:
    from leadferry.connectors.base import Table

LOADS_TABLE = "_leadferry_loads"
"""The dataset's record of its committed loads: one row per run, written with the run's rows."""

MAX_IDENTIFIER = 63
"""The longest name PostgreSQL keeps whole (it cuts longer ones): the limit of every warehouse."""

DAY_COLUMN = "report_day"
"""The local calendar day of a row (in the dataset's time zone): what partition replaces by."""


class Connection(Protocol):
    """What the apply needs of a database connection (DuckDB's, for one)."""

    def execute(self, query: str, parameters: Sequence[Any] | None = None, /) -> Any: ...


class Dialect(Protocol):
    """What differs between the warehouses the apply writes to."""

    def stage(self, connection: Connection, relation: str, files: Sequence[str]) -> None:
        """Make *relation* (quoted) the rows of the Parquet *files*, for this transaction."""

    def columns(self, connection: Connection, relation: str) -> list[tuple[str, str]]:
        """The columns of a staged relation: ``(name, type)``, the type as DDL spells it."""

    def serialise(self, connection: Connection, schema: str) -> None:
        """Hold off any other load into *schema* until this transaction ends."""

    def columns_before(
        self, connection: Connection, schema: str, tables: Sequence[str]
    ) -> dict[str, set[str]] | None:
        """The columns of those of *tables* in *schema* that exist, read before the load's
        transaction where nothing else can change them until it ends; None where they must be
        read inside it, once :meth:`serialise` holds the schema."""

    def index(
        self, connection: Connection, schema: str, table: str, columns: Sequence[str]
    ) -> None:
        """Index ``schema.table`` on *columns* if this warehouse wants it."""


class DuckDBDialect:
    """DuckDB reads the Parquet files where they lie; one writer at a time holds the file lock,
    and its tables are scanned, not indexed (an index slows its deletes down)."""

    def stage(self, connection: Connection, relation: str, files: Sequence[str]) -> None:
        paths = ", ".join("'" + path.replace("'", "''") + "'" for path in files)
        connection.execute(
            f"create or replace temp view {relation} as "
            f"select * from read_parquet([{paths}], union_by_name = true)"
        )

    def columns(self, connection: Connection, relation: str) -> list[tuple[str, str]]:
        found = connection.execute(f"describe select * from {relation}").fetchall()
        return [(name, kind) for name, kind, *_ in found]

    def serialise(self, connection: Connection, schema: str) -> None:
        return None  # the writer lock file serialises every load

    def columns_before(
        self, connection: Connection, schema: str, tables: Sequence[str]
    ) -> dict[str, set[str]] | None:
        """Read table by table (about 0.4 ms each): DuckDB's catalog views list every column of
        every dataset in the file, 6 ms at 4 datasets and 20 at 200. Before the transaction, as
        a missing table raises and would abort it; the writer lock keeps other loads out."""
        import duckdb

        columns: dict[str, set[str]] = {}
        for table in tables:
            try:
                found = connection.execute(
                    "select name from pragma_table_info(?)", [f"{quoted(schema)}.{quoted(table)}"]
                ).fetchall()
            except duckdb.CatalogException:  # no such table (or schema) yet
                continue
            columns[table] = {name for (name,) in found}
        return columns

    def index(
        self, connection: Connection, schema: str, table: str, columns: Sequence[str]
    ) -> None:
        return None


DUCKDB = DuckDBDialect()


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """What one run writes, and how (its dataset's update method)."""

    schema: str
    method: str
    tables: tuple[Table, ...]
    """The report's tables, main table first; child tables refer to its first key column."""
    load_id: str
    run_id: int
    rows: Mapping[str, int]
    merge_key: tuple[str, ...] = ()
    days: tuple[dt.date, ...] = ()
    """Partition: the window's days; with the days of the loaded rows they are replaced."""
    cursor: dt.datetime | None = None

    @property
    def parent_id(self) -> str | None:
        """The main table's column that child tables refer to."""
        key = self.tables[0].primary_key
        return key[0] if key else None


@dataclass(frozen=True, slots=True)
class Applied:
    """What a committed load changed, and what its dataset's main table holds after it."""

    schema_changes: list[str]
    """New columns and tables, in the history's words."""
    table_rows: int
    """Rows in the main table (0 when no load has created it): what the Data Center shows and
    sorts by, counted in the load's own transaction."""


@dataclass(frozen=True, slots=True)
class CommittedLoad:
    """A load the warehouse has: the run it belongs to and what it wrote."""

    load_id: str
    run_id: int
    committed_at: dt.datetime
    rows: dict[str, int] = field(default_factory=dict)
    cursor: dt.datetime | None = None
    schema_changes: list[str] = field(default_factory=list)


def quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def apply_load(
    connection: Connection,
    spec: LoadSpec,
    files: Mapping[str, Sequence[str]],
    dialect: Dialect = DUCKDB,
) -> Applied:
    """Write the rows of *files* (table -> its Parquet files) into ``spec.schema`` in one
    transaction.

    Creates the schema, tables and new columns, applies the update method to every table of the
    report, records the load in ``_leadferry_loads``, and commits. Returns the schema changes
    and the main table's rows. On any error nothing is left changed.

    Raises:
        LoadError: the load was applied before (a load is never applied twice).
        The database's own error when it refuses the rows (rolled back).
    """
    existing = dialect.columns_before(connection, spec.schema, [t.name for t in spec.tables])
    connection.execute("begin transaction")
    try:
        applied = _apply(connection, spec, files, dialect, existing)
        connection.execute("commit")
    except BaseException:
        connection.execute("rollback")
        raise
    return applied


def _apply(
    connection: Connection,
    spec: LoadSpec,
    files: Mapping[str, Sequence[str]],
    dialect: Dialect,
    existing: dict[str, set[str]] | None,
) -> Applied:
    schema = quoted(spec.schema)
    dialect.serialise(connection, spec.schema)
    connection.execute(f"create schema if not exists {schema}")
    connection.execute(
        f"create table if not exists {schema}.{LOADS_TABLE} (load_id varchar primary key, "
        "run_id bigint not null, rows_json varchar not null, cursor timestamptz, "
        "schema_changes_json varchar not null, committed_at timestamptz not null)"
    )
    applied = connection.execute(
        f"select count(*) from {schema}.{LOADS_TABLE} where load_id = ? or run_id = ?",
        [spec.load_id, spec.run_id],
    ).fetchone()[0]
    if applied:
        raise LoadError(f"load {spec.load_id} (run {spec.run_id}) is in the warehouse already")
    sources: dict[str, list[tuple[str, str]]] = {}
    for table, paths in files.items():
        dialect.stage(connection, _incoming(table), paths)
        sources[table] = dialect.columns(connection, _incoming(table))
    # The catalog is read once (on DuckDB before the transaction); _evolve keeps this up to date
    # with what it creates.
    if existing is None:
        existing = _columns(connection, spec.schema)
    changes = _evolve(connection, spec, sources, dialect, existing)
    present = [table for table in spec.tables if table.name in existing]
    if spec.method == "replace":
        for table in present:
            connection.execute(f"delete from {_target(spec, table.name)}")
    elif spec.method == "merge":
        _delete_merged(connection, spec, present, sources)
    elif spec.method == "partition":
        _delete_partitions(connection, spec, present, sources)
    elif spec.method != "append":
        raise ValueError(f"unknown update method {spec.method!r}")
    for table in spec.tables:
        if table.name in sources:
            names = ", ".join(quoted(name) for name, _kind in sources[table.name])
            connection.execute(
                f"insert into {_target(spec, table.name)} ({names}) "
                f"{_incoming_rows(spec, table, names)}"
            )
    if spec.method == "partition":
        _delete_orphans(connection, spec, existing)
    connection.execute(
        f"insert into {schema}.{LOADS_TABLE} values (?, ?, ?, ?, ?, current_timestamp)",
        [
            spec.load_id,
            spec.run_id,
            json.dumps(dict(spec.rows)),
            spec.cursor,
            json.dumps(changes),
        ],
    )
    return Applied(changes, _main_rows(connection, spec, existing))


def _evolve(
    connection: Connection,
    spec: LoadSpec,
    sources: Mapping[str, list[tuple[str, str]]],
    dialect: Dialect,
    existing: dict[str, set[str]],
) -> list[str]:
    """Create missing tables and add new columns, typed as the incoming rows are, and add them
    to *existing* (table -> its columns); index what the deletes of the update method look rows
    up by."""
    loaded_before = any(table.name in existing for table in spec.tables)
    changes = []
    for table in spec.tables:
        incoming = sources.get(table.name)
        if incoming is None:
            continue
        target = _target(spec, table.name)
        if table.name not in existing:
            columns = ", ".join(f"{quoted(name)} {kind}" for name, kind in incoming)
            connection.execute(f"create table {target} ({columns})")
            existing[table.name] = {name for name, _kind in incoming}
            if loaded_before:
                changes.append(f"{table.name}: new table")
            _index(connection, spec, table, {name for name, _kind in incoming}, dialect)
            continue
        added = [(name, kind) for name, kind in incoming if name not in existing[table.name]]
        for name, kind in added:
            connection.execute(f"alter table {target} add column {quoted(name)} {kind}")
        existing[table.name] |= {name for name, _kind in added}
        _index(connection, spec, table, existing[table.name], dialect)
        visible = sorted(name for name, _kind in added if not name.startswith("_dlt"))
        if visible:
            plural = "s" if len(visible) > 1 else ""
            changes.append(f"{table.name}: new column{plural} " + ", ".join(visible))
    return changes


def _delete_merged(
    connection: Connection,
    spec: LoadSpec,
    present: list[Table],
    sources: Mapping[str, object],
) -> None:
    """Merge: main rows whose key arrives go, with their children; so do children of arriving
    parents, whose deliveries are replaced as a whole."""
    main, children = spec.tables[0], [t for t in present if t.parent_key]
    main_target = _target(spec, main.name)
    main_arrives = main.name in sources and main in present
    matches = " and ".join(f"m.{quoted(k)} = i.{quoted(k)}" for k in spec.merge_key)
    leaving = f"select 1 from {_incoming(main.name)} i where {matches}"
    for child in children:
        parent = quoted(child.parent_key or "")
        replaced = []
        if main_arrives and spec.parent_id:
            parent_id = quoted(spec.parent_id)
            replaced.append(f"select m.{parent_id} from {main_target} m where exists ({leaving})")
            replaced.append(f"select {parent_id} from {_incoming(main.name)}")
        if child.name in sources:
            replaced.append(f"select {parent} from {_incoming(child.name)}")
        if replaced:
            connection.execute(
                f"delete from {_target(spec, child.name)} where {parent} in "
                f"({' union '.join(replaced)})"
            )
    if main_arrives:
        connection.execute(f"delete from {main_target} m where exists ({leaving})")


def _delete_partitions(
    connection: Connection,
    spec: LoadSpec,
    present: list[Table],
    sources: Mapping[str, object],
) -> None:
    """Partition: the window's days and the days that arrive are emptied; children of arriving
    parents go too (the rest of the orphans after the insert)."""
    main = spec.tables[0]
    if main in present:
        days = " union ".join(["select ?::date"] * len(spec.days))
        if main.name in sources:
            loaded = f"select {DAY_COLUMN} from {_incoming(main.name)}"
            days = f"{days} union {loaded}" if days else loaded
        if days:
            connection.execute(
                f"delete from {_target(spec, main.name)} where {DAY_COLUMN} in ({days})",
                list(spec.days),
            )
    for child in present:
        if child.parent_key and child.name in sources:
            parent = quoted(child.parent_key)
            connection.execute(
                f"delete from {_target(spec, child.name)} where {parent} in "
                f"(select {parent} from {_incoming(child.name)})"
            )


def _delete_orphans(
    connection: Connection, spec: LoadSpec, existing: Mapping[str, set[str]]
) -> None:
    main = spec.tables[0]
    if not spec.parent_id or main.name not in existing:
        return
    for child in spec.tables[1:]:
        if child.parent_key and child.name in existing:
            connection.execute(
                f"delete from {_target(spec, child.name)} c where not exists (select 1 from "
                f"{_target(spec, main.name)} m where m.{quoted(spec.parent_id)} = "
                f"c.{quoted(child.parent_key)})"
            )


def _main_rows(connection: Connection, spec: LoadSpec, existing: Mapping[str, set[str]]) -> int:
    main = spec.tables[0].name
    if main not in existing:
        return 0
    return int(connection.execute(f"select count(*) from {_target(spec, main)}").fetchone()[0])


def _incoming_rows(spec: LoadSpec, table: Table, names: str) -> str:
    """The rows to insert: for merge's main table, one per key (the incoming may repeat one)."""
    if spec.method == "merge" and table is spec.tables[0] and spec.merge_key:
        keys = ", ".join(quoted(k) for k in spec.merge_key)
        return f"select distinct on ({keys}) {names} from {_incoming(table.name)}"
    return f"select {names} from {_incoming(table.name)}"


def _index(
    connection: Connection, spec: LoadSpec, table: Table, columns: set[str], dialect: Dialect
) -> None:
    """The indexes the update methods' deletes look rows up by: the day partition empties, the
    merge key, and a child table's parent key."""
    wanted: list[tuple[str, ...]] = []
    if table is spec.tables[0]:
        wanted += [(DAY_COLUMN,), spec.merge_key]
    if table.parent_key:
        wanted.append((table.parent_key,))
    for key in wanted:
        if key and set(key) <= columns:
            dialect.index(connection, spec.schema, table.name, key)


def _columns(connection: Connection, schema: str) -> dict[str, set[str]]:
    found = connection.execute(
        "select table_name, column_name from information_schema.columns where table_schema = ?",
        [schema],
    ).fetchall()
    columns: dict[str, set[str]] = {}
    for table, column in found:
        columns.setdefault(table, set()).add(column)
    return columns


def _target(spec: LoadSpec, table: str) -> str:
    return f"{quoted(spec.schema)}.{quoted(table)}"


def _incoming(table: str) -> str:
    return quoted(short_name("incoming", table))


def short_name(prefix: str, *parts: str) -> str:
    """``prefix_part_...``, or with a digest for the parts when that is past PostgreSQL's 63."""
    name = "_".join((prefix, *parts))
    if len(name) <= MAX_IDENTIFIER:
        return name
    digest = hashlib.sha1("\0".join(parts).encode()).hexdigest()[:16]
    return f"{prefix}_{digest}"


def committed_load(connection: Connection, schema: str, run_id: int) -> CommittedLoad | None:
    """The load run *run_id* committed into *schema*, or None when it committed none."""
    found = connection.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, LOADS_TABLE],
    ).fetchone()[0]
    if not found:
        return None
    row = connection.execute(
        f"select load_id, committed_at, rows_json, cursor, schema_changes_json "
        f"from {quoted(schema)}.{LOADS_TABLE} where run_id = ?",
        [run_id],
    ).fetchone()
    if row is None:
        return None
    load_id, committed_at, rows, cursor, changes = row
    return CommittedLoad(
        load_id, run_id, _utc(committed_at), json.loads(rows), _utc(cursor), json.loads(changes)
    )


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    """A stored instant, aware and in UTC whatever the session's time zone."""
    return None if value is None else value.astimezone(dt.UTC)
