"""The store on PostgreSQL: run with LEADFERRY_TEST_POSTGRES_URL set to an empty database's URL.

For example ``postgresql+psycopg://postgres@/leadferry_test?host=/tmp/pg``; every table in that
database's public schema is dropped. ``make test`` starts a server and sets the variable
(scripts/test-services); without it these tests fail saying so.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from pydantic import SecretStr
from sqlalchemy import create_engine, make_url

from leadferry.errors import BusyError, ConflictError
from leadferry.settings import Settings
from leadferry.store import DatasetSpec, Run, Store
from leadferry.store.orm import Base

from ._support import T0, check_list_statuses

URL = os.environ.get("LEADFERRY_TEST_POSTGRES_URL")
pytestmark = pytest.mark.services


@pytest.fixture(autouse=True)
def _postgres_server() -> None:
    if not URL:
        pytest.fail(
            "LEADFERRY_TEST_POSTGRES_URL is not set: run these tests with make test, or through "
            "scripts/test-services (it starts a PostgreSQL server)"
        )


def _worker_database(url: str) -> str:
    """A database of its own for each pytest-xdist worker: the tests empty theirs."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url
    base = make_url(url)
    name = f"{base.database}_{worker}"
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            exists = conn.exec_driver_sql(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).scalar()
            if not exists:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        engine.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


if URL:
    URL = _worker_database(URL)


@pytest.fixture
def pg_store(settings: Settings) -> Iterator[Store]:
    assert URL is not None
    engine = create_engine(URL)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
    finally:
        engine.dispose()
    with Store.open(settings, url=URL) as store:
        yield store


def test_the_models_match_the_migrations_on_postgres(pg_store: Store) -> None:
    assert URL is not None
    engine = create_engine(URL)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_accounts_datasets_and_runs_work_on_postgres(pg_store: Store) -> None:
    pg_store.create_account(
        "acme", "leadexec", {"base_url": "http://x/"}, {"api_key": "k3y-012345"}
    )
    with pytest.raises(ConflictError):
        pg_store.create_account("acme", "leadexec", {}, {})
    pg_store.create_dataset(DatasetSpec("acme_leads", "acme", "leads", {"lid": 271}))
    with pytest.raises(ConflictError, match="used by 1 dataset"):
        pg_store.remove_account("acme")
    assert pg_store.list_accounts()[0].masked == {"api_key": "••••2345"}
    paris = timezone(timedelta(hours=2))
    run = pg_store.start_run("acme_leads", "backfill", datetime(2025, 1, 1, tzinfo=paris), None, T0)
    with pytest.raises(BusyError, match="already running"):
        pg_store.start_run("acme_leads", "manual", None, None, T0)
    done = pg_store.finish_run(run.id, "success", T0 + timedelta(minutes=1), rows={"leads": 7})
    assert pg_store.get_dataset("acme_leads").last_run == done
    read = pg_store.get_run(run.id)
    assert read.window_start == datetime(2024, 12, 31, 22, tzinfo=UTC)
    assert read.window_start is not None
    assert read.window_start.tzinfo is UTC
    pg_store.remove_dataset("acme_leads")
    pg_store.remove_account("acme")


def test_threads_racing_on_postgres_let_one_win(pg_store: Store, settings: Settings) -> None:
    pg_store.create_account("acme", "leadexec", {}, {})
    pg_store.create_dataset(DatasetSpec("acme_leads", "acme", "leads"))
    barrier = threading.Barrier(6)
    won: list[Run] = []
    busy: list[BusyError] = []

    def claim() -> None:
        with Store.open(settings, url=URL) as own:
            barrier.wait()
            try:
                won.append(own.start_run("acme_leads", "scheduled", None, None, T0))
            except BusyError as exc:
                busy.append(exc)

    threads = [threading.Thread(target=claim) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (len(won), len(busy)) == (1, 5)


def test_the_store_url_setting_puts_the_metadata_store_on_postgres(pg_store, settings) -> None:
    assert URL is not None
    configured = settings.model_copy(update={"store_url": SecretStr(URL)})
    with Store.open(configured) as store:
        store.create_account("pg", "leadexec", {}, {"api_key": "k-123456"})
    engine = create_engine(URL)
    try:
        with engine.connect() as conn:
            names = conn.exec_driver_sql("SELECT name FROM accounts").scalars().all()
    finally:
        engine.dispose()
    assert names == ["pg"]
    assert not (settings.home / "leadferry.sqlite").exists()


def test_the_list_query_judges_filters_sorts_and_pages_on_postgres(pg_store: Store) -> None:
    check_list_statuses(pg_store, datetime.now(UTC) + timedelta(days=1))
