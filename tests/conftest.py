"""Shared fixtures: a temp leadferry home, a store, and the simulators in-process."""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import fcntl
import functools
import gc
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import hypothesis
import pytest
import typer.testing
import uvicorn
from starlette.datastructures import Headers
from starlette.testclient import TestClient

from leadferry.cli import _leave
from leadferry.scrub import SECRETS
from leadferry.settings import Settings
from leadferry.simulators import avidtrak as avidtrak_sim
from leadferry.simulators import leadexec as leadexec_sim
from leadferry.simulators import salesexec as salesexec_sim
from leadferry.store import Store, generate_key
from leadferry.store.secrets import ensure_home

pytest_plugins = ["tests.cpu_report"]  # --cpu-report

# `make check`, the inner loop, runs the property tests with a fifth of their examples (at least
# ten, unless a test says otherwise); `make test` runs them all.
EXAMPLE_SHARE = 0.2 if os.environ.get("LEADFERRY_TEST_QUICK") else 1.0


def examples(count: int, at_least: int = 10) -> int:
    """*count* property-test examples, or a fifth of them (*at_least*) under ``make check``."""
    return max(at_least, round(count * EXAMPLE_SHARE))


hypothesis.settings.register_profile("leadferry", max_examples=examples(100))
hypothesis.settings.load_profile("leadferry")

# typer's CliRunner turns the app into click commands on every invoke (reading the signature and
# type hints of every command: 0.1 s of CPU, more than most commands take); a `leadferry`
# process does it once. The tests build each app's commands once a process too.
typer.testing._get_command = functools.cache(typer.testing._get_command)

# A fixed clock: Monday 2026-11-23, 12:00 in Los Angeles (US daylight saving ended 2026-11-01).
NOW = dt.datetime(2026, 11, 23, 20, 0, tzinfo=dt.UTC)
API_KEY = "le-5f1a-9c3e-secret-key"
SALES_USER, SALES_PASSWORD = "ana.ops", "s3cret-pass-77"
PIN = "pin-4417-secret"
AVIDTRAK_ZONE = "America/New_York"


@pytest.fixture
def settings(tmp_path, monkeypatch, request) -> Settings:
    """This test's home, empty; or a copy of ``home_template``'s when the test's fixtures ask for
    one (a home a module built once: its store, warehouse and key)."""
    home = tmp_path / "home"
    monkeypatch.setenv("LEADFERRY_HOME", str(home))
    key = generate_key()
    if "home_template" in request.fixturenames:
        template: Settings = request.getfixturevalue("home_template")
        shutil.copytree(template.home, home)
        key = template.secret_key.get_secret_value()
    monkeypatch.setenv("LEADFERRY_SECRET_KEY", key)
    return Settings(home=home, secret_key=key)


@pytest.fixture(scope="session")
def migrated_home(tmp_path_factory) -> Path:
    """A home whose store Alembic migrated to head, once per test process: each test's store
    starts as a copy of it (migrating a new store costs about 80 ms of CPU, times a thousand)."""
    home = tmp_path_factory.mktemp("migrated") / "home"
    Store.open(Settings(home=home, secret_key=generate_key())).close()
    return home


def copy_migrated_store(migrated: Path, settings: Settings) -> None:
    """Give *settings*' home the migrated store, unless it has one or names a store elsewhere."""
    if settings.store_url is not None or (settings.home / "leadferry.sqlite").exists():
        return
    ensure_home(settings.home)
    for path in migrated.glob("leadferry.sqlite*"):
        shutil.copyfile(path, settings.home / path.name)


@pytest.fixture
def migrated_settings(settings, migrated_home) -> Settings:
    """This test's home with a migrated store in it, for tests whose commands open the store."""
    copy_migrated_store(migrated_home, settings)
    return settings


@pytest.fixture
def store(migrated_settings) -> Iterator[Store]:
    with Store.open(migrated_settings) as opened:
        yield opened


@contextlib.contextmanager
def building_home(tmp_path_factory, migrated_home: Path) -> Iterator[tuple[Settings, Store]]:
    """The settings and store of a new home, for a module-scoped ``home_template`` to build
    once: each test that asks for the template gets a copy (``settings``), milliseconds where
    building it again (loads through dlt: 0.4 s of CPU each) would cost seconds."""
    settings = Settings(
        home=tmp_path_factory.mktemp("template") / "home", secret_key=generate_key()
    )
    copy_migrated_store(migrated_home, settings)
    with Store.open(settings) as opened:
        yield settings, opened


def leadexec_app(**options):
    config = leadexec_sim.Settings(
        **{"leads": 6_000, "days": 10, "api_key": [API_KEY], "lid": [271, 272]} | options
    )
    return config, leadexec_sim.create_app(config, now=NOW)


@pytest.fixture
def leadexec_api() -> Iterator[TestClient]:
    """The LeadExec simulator in-process: 6,000 leads (3,000 per lid) over 10 days before NOW."""
    _, app = leadexec_app()
    with TestClient(app, base_url="http://leadexec.test") as client:
        yield client


@pytest.fixture
def leadexec_truth():
    config, _ = leadexec_app()
    return leadexec_sim.Simulation(config, now=NOW)


@pytest.fixture
def acme(store):
    """A LeadExec account pointing at the in-process simulator."""
    return store.create_account(
        "acme", "leadexec", {"base_url": "http://leadexec.test/"}, {"api_key": API_KEY}
    )


def salesexec_app(clock=None, **options):
    config = salesexec_sim.Settings(
        **{"leads": 3_000, "days": 10, "users": [f"{SALES_USER}:{SALES_PASSWORD}"]} | options
    )
    return config, salesexec_sim.create_app(config, now=NOW, clock=clock)


def avidtrak_app(**options):
    config = avidtrak_sim.Settings(
        **{"calls": 3_000, "days": 10, "pin": [PIN], "timezone": AVIDTRAK_ZONE} | options
    )
    return config, avidtrak_sim.create_app(config, now=NOW)


class Vendors:
    """Simulators in-process, each at a host name of its own: one HTTP client reaches them all.

    ``vendors.add("leadexec.test", app)`` answers ``http://leadexec.test/...`` with *app*; a host
    nobody added fails to connect, like an address where nothing listens.
    """

    def __init__(self) -> None:
        self.apps: dict[str, Any] = {}

    def add(self, host: str, app: Any) -> str:
        self.apps[host] = app
        return f"http://{host}"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":  # the simulators do nothing at start-up or shutdown
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        host = Headers(scope=scope).get("host", "").split(":")[0]
        if host not in self.apps:
            raise httpx2.ConnectError(f"nothing listens at {host}")
        await self.apps[host](scope, receive, send)

    def client(self) -> TestClient:
        """The client leadferry's vendor calls go through (runs, Test connection, Preview)."""
        return TestClient(self)


@pytest.fixture
def vendors() -> Vendors:
    """No simulator yet: tests add theirs (the web tests' app sends vendor calls here)."""
    return Vendors()


@contextlib.contextmanager
def serve_on_loopback(app) -> Iterator[str]:
    """Serve *app* with uvicorn on a free 127.0.0.1 port in a thread; yield its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the simulator did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def lock_is_held(lock: Path) -> bool:
    """Whether someone holds the lock file *lock* (a reader of the warehouse, say)."""
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


SLOW_MARKS = ("e2e", "browser")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The modules of real processes and browsers first, each kept in one piece, then the
    modules that run on one worker (``xdist_group``): on two workers their long tests (or
    ``make check``'s one indivisible share, schemathesis) start at once, and the short
    in-process tests even out the end."""
    slow = {item.path for item in items if any(item.get_closest_marker(m) for m in SLOW_MARKS)}
    grouped = {item.path for item in items if item.get_closest_marker("xdist_group")}
    items.sort(key=lambda item: (item.path not in slow, item.path not in grouped))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Garbage collection set for a test process: what collection imported is frozen (never
    walked again), and collections run less often. With the defaults, the objects each test
    keeps for a while (apps, stores, simulators) set off a full collection every few tests,
    walking the whole heap (0.2 s each): 10% of the CPU of the web and load tests."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 50)


def pytest_unconfigure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):  # an xdist worker, whose end the whole run waits for
        atexit.register(_end_without_teardown)  # registered last: the first exit handler to run
    else:
        gc.unfreeze()  # so that the interpreter's last collection frees them (DuckDB's objects too)


def _end_without_teardown() -> None:
    """Run the other exit handlers and end the process, as a ``leadferry`` command does
    (``leadferry.cli._leave``): the interpreter's teardown of a worker's heap (dlt, SQLAlchemy,
    DuckDB, every test's leftovers) took 2 to 7 s of wall after its last test, which the run
    waited for."""
    atexit.unregister(_end_without_teardown)
    _leave(0)


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    """Each test starts with the scrubber knowing no secret, as a new process does: a short
    secret of one test must not mask another test's text."""
    yield
    SECRETS.clear()
