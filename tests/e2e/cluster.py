"""A team's nodes as real processes for end-to-end tests: `leadferry serve --executor celery`
and `leadferry worker`s sharing a PostgreSQL store and a Redis queue of a test's own.

The clock runs 600 times faster than real time, read from one real instant by every process,
so schedules come due in seconds and all processes tell the same time. The servers are
tests/e2e/conftest.py's fixtures ``redis_url`` and ``store_url``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import signal
import subprocess
import uuid
from collections.abc import Iterator

from leadferry.schedule import Schedule
from leadferry.scheduler import reschedule
from leadferry.settings import Settings
from leadferry.store import DatasetSpec, Run, Store
from tests.e2e.conftest import E2E_KEY, free_port

SPEED = 600  # one real second is ten minutes


class Cluster:
    """One `leadferry` environment shared by serve, the workers, the CLI and this test's store.

    Accounts and datasets are made through the store (the CLI's start-up is slow on a busy
    machine, and the CLI is tested elsewhere); the clock starts when the first node starts.
    """

    def __init__(self, leadferry, redis_url: str, store_url: str, **env: str) -> None:
        self.leadferry = leadferry
        self.queue = f"e2e-{uuid.uuid4().hex[:8]}"
        leadferry.env |= {
            "LEADFERRY_BROKER_URL": redis_url,
            "LEADFERRY_STORE_URL": store_url,
            "LEADFERRY_QUEUE": self.queue,
            **env,
        }
        # Two minutes before the next full hour: the first slots come due right away.
        now = dt.datetime.now(dt.UTC)
        self.slot = now.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
        self.origin = self.slot - dt.timedelta(minutes=2)
        self.started: str | None = None
        self.processes: list[subprocess.Popen] = []
        self.store = Store.open(self.settings())
        self.store.add_user("ada", "e2e-password-31", "admin")

    def settings(self) -> Settings:
        return Settings(
            home=self.leadferry.home,
            broker_url=self.leadferry.env["LEADFERRY_BROKER_URL"],
            store_url=self.leadferry.env["LEADFERRY_STORE_URL"],
            secret_key=self.leadferry.env["LEADFERRY_SECRET_KEY"],
            queue=self.queue,
        )

    def account(self, url: str, name: str = "acme") -> None:
        self.store.create_account(name, "leadexec", {"base_url": url}, {"api_key": E2E_KEY})

    def datasets(self, names, account: str = "acme", **schedule: str | int) -> None:
        """Datasets of LeadExec leads; *schedule* as `datasets schedule` flags (every="1h"),
        none for Run Now only."""
        retries = {key: schedule.pop(key) for key in ("retry_every", "retries") if key in schedule}
        plan = Schedule.from_flags(**schedule).as_json() if schedule else None
        for name in names:
            dataset = self.store.create_dataset(
                DatasetSpec(
                    name=name,
                    account=account,
                    report="leads",
                    params={"lid": 271},
                    update_method="merge",
                    schedule=plan,
                    **retries,
                )  # fmt: skip
            )
            if plan is not None:
                reschedule(self.store, dataset, self.origin)

    def runs(self, name: str) -> list[Run]:
        return self.store.list_runs(name)

    def serve(self) -> subprocess.Popen:
        return self._start("serve", "--executor", "celery", "--tick", "0.2",
                           "--port", str(free_port()))  # fmt: skip

    def worker(self, name: str, concurrency: int = 2, processes: int = 1) -> subprocess.Popen:
        return self._start("worker", "--name", name, "--concurrency", str(concurrency),
                           "--processes", str(processes))  # fmt: skip

    def _start(self, *args: str) -> subprocess.Popen:
        self.started = self.started or dt.datetime.now(dt.UTC).isoformat()
        clock = ["--clock-origin", self.origin.isoformat(), "--clock-speed", str(SPEED),
                 "--clock-started", self.started]  # fmt: skip
        process = self.leadferry.start(*args, *clock)
        self.processes.append(process)
        return process

    def stop_all(self) -> list[str]:
        """SIGTERM every process still running; return their standard errors."""
        errors = []
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            _out, err = process.communicate(timeout=120)
            errors.append(err)
        return errors

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.communicate(timeout=60)
        self.store.close()


@contextlib.contextmanager
def cluster_of(leadferry, redis_url, store_url, **env: str) -> Iterator[Cluster]:
    made = Cluster(leadferry, redis_url, store_url, **env)
    try:
        yield made
    finally:
        made.close()


# -- helpers -------------------------------------------------------------------------------------


def successes(cluster, name) -> list[Run]:
    return [run for run in cluster.runs(name) if run.status == "success"]
