"""leadferry at team scale (issue 11). Sections, each run with ``--section NAME``:

- ``tick``: the scheduler's cost with ``--datasets`` (10,000) scheduled datasets in one store.
  Every dataset runs every 15 minutes, their slots spread over the quarter hour, a tenth of
  them with a stale-data alert. Three ticks are timed, each the CPU seconds of this process
  (``time.process_time``: leadferry's Python and, on SQLite, the database's work; a PostgreSQL
  server's own CPU is not in it):
  ``idle``: nothing due; ``steady``: one 5-second tick's worth of slots due (what ``serve``
  sees every tick); ``burst``: every dataset due at once (after a long stop). Claimed jobs go
  to an executor that keeps them: the tick's cost without the runs.

    uv run python bench/bench_scale.py --section tick
    uv run python bench/bench_scale.py --section tick --store-url postgresql+psycopg://...

Targets are printed as PASS/FAIL; nothing here asserts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

from leadferry.jobs import Job
from leadferry.schedule import Schedule
from leadferry.scheduler import Scheduler
from leadferry.settings import Settings
from leadferry.store import DatasetSpec, Store, generate_key

TICK_TARGET_CPU = 1.0  # seconds of CPU for one tick at 10,000 datasets
TICK_SECONDS = 5.0  # serve's default --tick
EVERY = dt.timedelta(minutes=15)
START = dt.datetime(2026, 12, 1, 6, 0, tzinfo=dt.UTC)


class KeepingExecutor:
    """Keeps the jobs it is given: the tick's own cost, without running anything."""

    def __init__(self) -> None:
        self.jobs: list[Job] = []

    def submit(self, job: Job) -> None:
        self.jobs.append(job)

    def queued(self, name: str) -> bool:
        return False

    def wait(self) -> None:
        """Nothing runs."""

    def shutdown(self) -> None:
        """Nothing runs."""


def fill(store: Store, datasets: int) -> None:
    """*datasets* datasets every 15 minutes, next runs spread evenly over the quarter hour."""
    store.create_account("acme", "leadexec", {"base_url": "http://leadexec.test/"},
                         {"api_key": "bench"})  # fmt: skip
    plan = Schedule.from_flags(every="15m", tz="UTC").as_json()
    for i in range(datasets):
        name = f"leads_{i:05d}"
        store.create_dataset(
            DatasetSpec(
                name=name,
                account="acme",
                report="leads",
                params={"lid": 1},
                schedule=plan,
                stale_after=120 if i % 10 == 0 else None,
            )  # fmt: skip
        )
        offset = EVERY * (i / datasets)
        store.set_state(name, next_run_at=START + offset, last_slot=START + offset - EVERY)


def timed_tick(
    scheduler: Scheduler, executor: KeepingExecutor, at: dt.datetime
) -> tuple[float, int]:
    scheduler.clock = lambda: at
    before = len(executor.jobs)
    cpu = time.process_time()
    scheduler.tick()
    return time.process_time() - cpu, len(executor.jobs) - before


def tick_section(datasets: int, store_url: str | None) -> None:
    with tempfile.TemporaryDirectory(prefix="leadferry-bench-") as home:
        settings = Settings(home=Path(home), secret_key=generate_key(), store_url=store_url)
        store = Store.open(settings)
        try:
            made = time.perf_counter()
            fill(store, datasets)
            print(f"{datasets:,} scheduled datasets created in {time.perf_counter() - made:.0f} s")
            executor = KeepingExecutor()
            scheduler = Scheduler(store, settings, executor=executor)
            idle = timed_tick(scheduler, executor, START - dt.timedelta(minutes=1))
            # One tick's worth of slots: those due in the 5 seconds after START.
            steady = timed_tick(scheduler, executor, START + dt.timedelta(seconds=TICK_SECONDS))
            burst = timed_tick(scheduler, executor, START + EVERY * 2)
            scheduler.shutdown()
        finally:
            store.close()
    print(f"{'tick':<8} {'due':>6} {'CPU s':>7}")
    for label, (cpu, due) in (("idle", idle), ("steady", steady), ("burst", burst)):
        print(f"{label:<8} {due:>6} {cpu:>7.3f}")
    verdict = "PASS" if steady[0] < TICK_TARGET_CPU else "FAIL"
    print(f"{verdict}: a tick at {datasets:,} datasets costs {steady[0]:.3f} s of CPU "
          f"(target < {TICK_TARGET_CPU:g} s)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--section", choices=["tick"], required=True)
    parser.add_argument("--datasets", type=int, default=10_000)
    parser.add_argument("--store-url", default=None, help="Default: SQLite in a temp folder.")
    args = parser.parse_args()
    if args.section == "tick":
        tick_section(args.datasets, args.store_url)


if __name__ == "__main__":
    main()
