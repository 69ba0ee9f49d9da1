"""Alembic environment for the metadata store.

The store runs migrations itself (``leadferry.store.database.upgrade``), handing its connection
over in ``config.attributes["connection"]``. For one-off work (a new revision) pass a URL instead::

    from alembic import command
    from leadferry.store.database import alembic_config
    config = alembic_config()
    config.set_main_option("sqlalchemy.url", "sqlite:///dev.sqlite")
    command.revision(config, "add a column", autogenerate=True)
"""

from __future__ import annotations

from alembic import context

from leadferry.store.database import create_store_engine
from leadferry.store.orm import Base, UTCDateTime

config = context.config
target_metadata = Base.metadata


def render_item(type_: str, obj: object, _autogen_context: object) -> str | bool:
    """Write UTCDateTime columns as plain ``sa.DateTime(timezone=True)`` in new revisions."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things: autogenerate batch operations
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url or pass a connection in config.attributes")
    engine = create_store_engine(url)
    try:
        with engine.connect() as conn:
            run_migrations(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    run_online()
