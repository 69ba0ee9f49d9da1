"""The engine behind the store, and the Alembic migrations that keep its schema current.

SQLite is the default. Each connection turns on WAL (readers never wait for the writer), a busy
timeout and foreign keys. SQLAlchemy, not the sqlite3 module, emits BEGIN (the recipe from the
SQLAlchemy SQLite docs), so a transaction that writes can start with ``BEGIN IMMEDIATE``: it takes
the write lock first, which makes check-then-insert atomic across processes. Other backends
(PostgreSQL) need none of this.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text

from leadferry.errors import ConfigError

if TYPE_CHECKING:
    from alembic.config import Config

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
HEAD = "0008"
"""The newest revision in ``migrations/versions`` (a test keeps this true)."""
BUSY_TIMEOUT_MS = 30_000
WRITE = "leadferry_write"
"""Execution option: on SQLite, begin the transaction with BEGIN IMMEDIATE."""


def create_store_engine(url: str) -> Engine:
    """An engine for the metadata store at ``url``, tuned for its backend."""
    engine = create_engine(url, json_deserializer=_json_loads)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def _json_loads(text: str | bytes) -> Any:
    """A JSON column's value, parsed by orjson, about seven times faster than the standard
    library for the small values the store keeps (a page of the Data Center reads hundreds);
    what orjson refuses and ``json`` accepts (NaN, integers beyond 64 bits) goes to ``json``."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Stop the sqlite3 module from emitting BEGIN itself: _sqlite_begin does it instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")  # first: WAL may wait for a lock
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable enough with WAL, much faster
    finally:
        cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    write = conn.get_execution_options().get(WRITE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, built in code: no alembic.ini is needed.

    With ``connection``, migrations run on it (inside its transaction).
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def current_revision(conn: Connection) -> str | None:
    """The schema revision of the database, None when it has no schema yet."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine) -> None:
    """Migrate the schema at ``engine`` to the newest revision, in one write transaction.

    Two processes opening a new store at once are safe: the second waits for the first's lock,
    then finds nothing left to do. When the schema is current, Alembic is not even imported.

    Raises:
        ConfigError: the database was made by a newer leadferry.
    """
    with engine.connect() as conn, conn.begin():
        if current_revision(conn) == HEAD:
            return
    from alembic import command  # only now: importing alembic takes a noticeable while
    from alembic.util import CommandError

    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        try:
            command.upgrade(alembic_config(conn), "head")
        except CommandError as exc:
            where = engine.url.render_as_string(hide_password=True)
            raise ConfigError(
                f"cannot upgrade the metadata store at {where}: {exc} "
                "(was it created by a newer leadferry?)"
            ) from None
