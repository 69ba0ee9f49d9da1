"""Real `leadferry` processes, and simulators served over loopback by `leadferry simulate`."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest

from leadferry.settings import Settings
from leadferry.store import Store, generate_key

ROOT = Path(__file__).resolve().parents[2]
LEADFERRY = shutil.which("leadferry") or str(Path(sys.executable).with_name("leadferry"))
E2E_KEY = "e2e-9f8e7d6c5b4a-key"
POLL_SECONDS = 0.05
"""How often a start is polled (an HTTP request: cheap). wait_for's predicates may open the store
(milliseconds of the CPU the processes waited for need), so they are polled half as often."""
PROBE = httpx2.Client(timeout=1, limits=httpx2.Limits(max_keepalive_connections=0))
"""Asks whether a server answers yet: one client for every poll, as each new client loads the CA
bundle (a tenth of a second of CPU); no connection is kept, servers come and go."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate, timeout=60):
    """The first true value of *predicate*, polled until *timeout* seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(2 * POLL_SECONDS)
    raise AssertionError("timed out")


@dataclass
class Simulator:
    url: str
    process: subprocess.Popen


def start_simulator(name: str, *options: str, command: Sequence[str] = (LEADFERRY,)) -> Simulator:
    """`leadferry simulate NAME` on a free port (*command* runs leadferry), once it answers."""
    port = free_port()
    process = subprocess.Popen(
        [*command, "simulate", name, "--port", str(port), *options],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            message = process.stderr.read() if process.stderr else ""
            raise RuntimeError(f"simulator {name} exited: {message}")
        try:
            if PROBE.get(url + "__health").status_code == 200:
                return Simulator(url, process)
        except httpx2.TransportError:
            time.sleep(POLL_SECONDS)
    process.kill()
    raise RuntimeError(f"simulator {name} did not answer on {url}")


def stop(simulator: Simulator) -> None:
    simulator.process.terminate()
    try:
        simulator.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        simulator.process.kill()
        simulator.process.wait()
    if simulator.process.stderr:
        simulator.process.stderr.close()


@pytest.fixture(scope="session")
def leadexec_server() -> Iterator[Simulator]:
    simulator = start_simulator(
        "leadexec",
        "--leads",
        "12000",
        "--days",
        "10",
        "--lid",
        "271",
        "--lid",
        "272",
        "--api-key",
        E2E_KEY,
    )
    yield simulator
    stop(simulator)


@pytest.fixture(scope="session")
def failing_leadexec_server() -> Iterator[Simulator]:
    simulator = start_simulator("leadexec", "--fail-rate", "1", "--api-key", E2E_KEY)
    yield simulator
    stop(simulator)


class Leadferry:
    """Runs the real `leadferry` command (or *command*) with its own home folder."""

    def __init__(self, home: Path, command: Sequence[str] = (LEADFERRY,)) -> None:
        self.home = home
        self.command = list(command)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFERRY_")} | {
            "LEADFERRY_HOME": str(home),
            "LEADFERRY_SECRET_KEY": generate_key(),
            "LEADFERRY_HTTP_RETRIES": "2",
            "LEADFERRY_HTTP_BACKOFF": "0",
            "COLUMNS": "200",
        }

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, input: str | None = None
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*self.command, *args],
            env=self.env | (env or {}),
            capture_output=True,
            text=True,
            timeout=300,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
        )

    def ok(self, *args: str, env: dict[str, str] | None = None, input: str | None = None) -> str:
        result = self(*args, env=env, input=input)
        assert result.returncode == 0, f"leadferry {' '.join(args)}: {result.stderr}"
        return result.stdout

    def copy(self, home: Path) -> Leadferry:
        """The same command and environment (its key) on a copy of this home at *home*: a
        module sets a home up once through real processes (2 to 3 s of CPU each), and each of
        its tests starts from a copy (milliseconds)."""
        shutil.copytree(self.home, home)
        copied = Leadferry(home, self.command)
        copied.env = self.env | {"LEADFERRY_HOME": str(home)}
        return copied

    @contextlib.contextmanager
    def store(self) -> Iterator[Store]:
        """This home's store, opened in the test's own process: for a set-up or a check that is
        not what the test proves, where a `leadferry` process would cost 0.5 to 1 CPU-s."""
        settings = Settings(home=self.home, secret_key=self.env["LEADFERRY_SECRET_KEY"])
        with Store.open(settings) as store:
            yield store

    def start(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [*self.command, *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


@pytest.fixture
def leadferry(tmp_path) -> Leadferry:
    return Leadferry(tmp_path / "home")


E2E_PASSWORD = "e2e-password-31"


def add_user(leadferry: Leadferry, name: str = "ada", role: str = "admin") -> None:
    """A user for `leadferry serve`, the password on standard input as a script gives it."""
    leadferry.ok("users", "add", name, "--role", role, input=f"{E2E_PASSWORD}\n")


def add_account(leadferry: Leadferry, url: str, name: str = "acme", key: str = E2E_KEY) -> None:
    """A LeadExec account at *url*, its key given the way a script would: in the environment."""
    leadferry.ok("accounts", "add", name, "--connector", "leadexec", "--set", f"base_url={url}",
                 env={"LEADFERRY_API_KEY": key})  # fmt: skip


def account_in_store(leadferry: Leadferry, url: str, name: str = "acme") -> None:
    """A LeadExec account at *url* with the simulators' key, written through the home's store:
    for a test whose subject is not adding an account (add_account proves that, through the
    CLI, in test_leadexec_e2e and where secrets are the subject)."""
    with leadferry.store() as store:
        store.create_account(name, "leadexec", {"base_url": url}, {"api_key": E2E_KEY})


@contextlib.contextmanager
def serving(leadferry: Leadferry, *options: str) -> Iterator[str]:
    """`leadferry serve` on a free loopback port with an admin (ada) and a viewer (vera), once
    it answers; yield its base URL. On the way out it must stop cleanly on SIGTERM.

    The users are added through the store: `leadferry users add` is proven by add_user's
    callers, and a browser test would pay for two more processes each."""
    with leadferry.store() as store:
        store.add_user("ada", E2E_PASSWORD, "admin")
        store.add_user("vera", E2E_PASSWORD, "viewer")
    port = free_port()
    process = leadferry.start("serve", "--port", str(port), "--tick", "0.5", *options)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise AssertionError(f"leadferry serve exited: {process.stderr.read()}")
            try:
                if PROBE.get(f"{url}/login").status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"leadferry serve did not answer on {url}")
            time.sleep(POLL_SECONDS)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err


def load_snapshot(connection: Any, name: str, tables: Sequence[str]) -> dict[str, Any]:
    """Of dataset *name*, whose schema holds *tables*: rows per load id of each user table
    (``tables``), and the loads its ``_leadferry_loads`` records (``loads``: load id -> run id
    and rows per table). *connection* is DuckDB's or psycopg's: both ``execute(sql)``."""
    counts = {
        table: Counter(
            dict(
                connection.execute(
                    f'select _dlt_load_id, count(*) from "{name}"."{table}" group by 1'
                ).fetchall()
            )
        )
        for table in tables
        if not table.startswith("_")
    }
    loads = {}
    if "_leadferry_loads" in tables:
        loads = {
            load: (run, json.loads(rows))
            for load, run, rows in connection.execute(
                f'select load_id, run_id, rows_json from "{name}"._leadferry_loads'
            ).fetchall()
        }
    return {"tables": counts, "loads": loads}


# -- the team's servers: Redis and PostgreSQL on loopback ------------------------------------------


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """LEADFERRY_TEST_REDIS_URL, else a redis-server of our own on a free loopback port."""
    url = os.environ.get("LEADFERRY_TEST_REDIS_URL")
    if url:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(
            "no Redis for the worker tests: set LEADFERRY_TEST_REDIS_URL, or install "
            "redis-server (make test and .ci/run start the test services)"
        )
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        import redis

        wait_for(lambda: _answers(redis.Redis.from_url(url)), timeout=30)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _answers(client) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """LEADFERRY_TEST_POSTGRES_URL, else a throwaway server started by .ci/postgres."""
    url = os.environ.get("LEADFERRY_TEST_POSTGRES_URL")
    if url:
        return url
    started = subprocess.run(
        ["bash", str(ROOT / ".ci" / "postgres")], capture_output=True, text=True, check=False
    )
    if started.returncode != 0:
        pytest.fail(f"no PostgreSQL for the worker tests (.ci/postgres: {started.stderr.strip()})")
    return started.stdout.strip()


@pytest.fixture
def store_url(postgres_server) -> Iterator[str]:
    """An empty PostgreSQL database of this test's own."""
    import psycopg

    admin = postgres_server.replace("postgresql+psycopg://", "postgresql://")
    name = f"lf_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    base = postgres_server.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE {name} WITH (FORCE)")
