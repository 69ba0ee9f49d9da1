from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text
from sqlalchemy.dialects import sqlite

from leadferry.errors import ConfigError
from leadferry.settings import Settings
from leadferry.store import Store
from leadferry.store.database import HEAD, alembic_config, create_store_engine, upgrade
from leadferry.store.orm import Base, UTCDateTime

TABLES = {"accounts", "datasets", "runs", "users", "api_tokens", "web_sessions", "alembic_version"}


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'meta.sqlite'}")
    yield engine
    engine.dispose()


def revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def test_an_empty_database_is_upgraded_to_head(engine: Engine) -> None:
    upgrade(engine)
    assert set(inspect(engine).get_table_names()) == TABLES
    assert revision(engine) == HEAD


def test_the_command_line_style_upgrade_works_from_a_url(tmp_path: Path) -> None:
    config = alembic_config()
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, "head")
    engine = create_store_engine(url)
    try:
        assert set(inspect(engine).get_table_names()) == TABLES
    finally:
        engine.dispose()


def test_the_schema_downgrades_and_upgrades_again(engine: Engine) -> None:
    upgrade(engine)
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "base")
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    assert revision(engine) is None
    upgrade(engine)
    assert revision(engine) == HEAD


def test_a_database_of_the_first_release_upgrades_with_its_data(engine: Engine) -> None:
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0001")
        conn.execute(
            text(
                "insert into accounts (id, name, connector, config, secrets, created_at, "
                "updated_at) values (1, 'acme', 'leadexec', '{}', 'token', '2026-01-01', "
                "'2026-01-01')"
            )
        )
        conn.execute(
            text(
                "insert into datasets (id, name, account_id, report, params, update_method, "
                "description, created_at, updated_at) values (1, 'acme_leads', 1, 'leads', "
                "'{\"lid\": 1}', 'replace', '', '2026-01-01', '2026-01-01')"
            )
        )
    upgrade(engine)
    assert revision(engine) == HEAD
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "select name, schedule, retries, when_failing, failing, alert_emails, alert_state "
                "from datasets"
            )
        ).one()
    assert row == ("acme_leads", None, 0, "keep", 0, "[]", "{}")


def test_datasets_of_0007_get_their_latest_run_and_last_success(engine: Engine) -> None:
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0007")
        conn.execute(
            text(
                "insert into accounts (id, name, connector, config, secrets, created_at, "
                "updated_at) values (1, 'acme', 'leadexec', '{}', 'token', '2026-01-01', "
                "'2026-01-01')"
            )
        )
        for id_, name in ((1, "ran"), (2, "idle")):
            conn.execute(
                text(
                    "insert into datasets (id, name, account_id, report, params, update_method, "
                    "description, created_at, updated_at) values (:id, :name, 1, 'leads', '{}', "
                    "'replace', '', '2026-01-01', '2026-01-01')"
                ),
                {"id": id_, "name": name},
            )
        for id_, status, finished in (
            (1, "success", "2026-01-02 00:00:00"),
            (2, "success", "2026-01-03 00:00:00"),
            (3, "failed", "2026-01-04 00:00:00"),
        ):
            conn.execute(
                text(
                    "insert into runs (id, dataset_id, trigger, status, started_at, finished_at, "
                    "rows, schema_changes) values (:id, 1, 'manual', :status, :finished, "
                    ":finished, '{}', '[]')"
                ),
                {"id": id_, "status": status, "finished": finished},
            )
    upgrade(engine)
    with engine.connect() as conn:
        found = conn.execute(
            text(
                "select name, display_name, last_run_id, last_run_status, last_run_finished_at, "
                "last_success_at, table_rows from datasets order by name"
            )
        ).all()
    assert found == [
        ("idle", "", None, None, None, None, None),
        ("ran", "", 3, "failed", "2026-01-04 00:00:00", "2026-01-03 00:00:00", None),
    ]


def test_the_models_match_the_migrations(engine: Engine) -> None:
    upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_opening_a_store_twice_keeps_its_data(settings: Settings) -> None:
    with Store.open(settings) as store:
        store.create_account("acme", "leadexec", {}, {})
    with Store.open(settings) as store:
        assert [a.name for a in store.list_accounts()] == ["acme"]


def test_sqlite_connections_use_wal_and_foreign_keys(engine: Engine) -> None:
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() > 0


def test_the_datetime_type_refuses_naive_values() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        UTCDateTime().process_bind_param(datetime(2025, 1, 1), sqlite.dialect())  # noqa: DTZ001


def test_head_names_the_newest_migration() -> None:
    assert ScriptDirectory.from_config(alembic_config()).get_heads() == [HEAD]


def test_a_store_from_a_newer_leadferry_is_refused(settings: Settings) -> None:
    Store.open(settings).close()
    engine = create_store_engine(settings.metadata_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    finally:
        engine.dispose()
    with pytest.raises(ConfigError, match="newer leadferry"):
        Store.open(settings)
