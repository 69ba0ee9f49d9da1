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

- ``warehouse``: ``--leads`` (1,000,000) LeadExec-like leads (20 columns: keys, timestamps,
  a decimal, a flag, text) as one run's normalised Parquet files, applied by
  :func:`leadferry.apply.apply_load` with the merge method into an empty dataset and then again
  over itself (every key replaced), once into a DuckDB file and once into PostgreSQL
  (``--warehouse-url``, an empty database). Each warehouse loads in a process of its own:
  rows/s and that process's peak RSS (PostgreSQL's server is not in it), and the ratio.

    uv run python bench/bench_scale.py --section warehouse --warehouse-url postgresql://...

Targets are printed as PASS/FAIL; nothing here asserts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

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


def leads_files(folder: Path, leads: int, load_id: str) -> list[str]:
    """*leads* leads in Parquet files of 100,000 rows, typed as the LeadExec connector does."""
    files = []
    for start in range(0, leads, 100_000):
        n = min(100_000, leads - start)
        uid = pa.array(range(start, start + n), pa.int64())
        added = pa.array(
            [START - dt.timedelta(minutes=i % 43_200) for i in range(start, start + n)],
            pa.timestamp("us", tz="UTC"),
        )
        columns = {
            "uid": uid,
            "date_added": added,
            "date_modified": added,
            "report_day": pa.array([a.date() for a in added.to_pylist()], pa.date32()),
            "price": pa.array([i % 9_999 for i in range(n)], pa.decimal128(18, 4)),
            "is_sold": pa.array([i % 3 == 0 for i in range(n)]),
            "score": pa.array([i / 7 for i in range(n)]),
        }
        for field in ("first_name", "last_name", "email", "phone", "address", "city", "state",
                      "zip", "source", "campaign", "status", "vertical"):  # fmt: skip
            columns[field] = pa.array([f"{field}-{i % 5_000}" for i in range(start, start + n)])
        columns["_dlt_load_id"] = pa.array([load_id] * n)
        columns["_dlt_id"] = pa.array([f"{load_id}-{i}" for i in range(start, start + n)])
        path = folder / f"leads.{start}.parquet"
        pq.write_table(pa.table(columns), path)
        files.append(str(path))
    return files


def load_twice(url: str, home: str, files: list[str], leads: int) -> tuple[float, float, int]:
    """Seconds of the first merge, of the second (every key replaced), and peak RSS in KiB."""
    from leadferry.apply import LoadSpec, apply_load
    from leadferry.connectors import get_connector
    from leadferry.warehouse import drop_schema, warehouse_writer

    settings = Settings(home=Path(home), warehouse_url=url)
    drop_schema(settings, "bench_leads")  # a dataset of its own, empty at the start
    tables = get_connector("leadexec").report("leads").tables[:1]
    seconds = []
    for run in (1, 2):
        spec = LoadSpec(schema="bench_leads", method="merge", tables=tables,
                        load_id=f"bench-{run}", run_id=run, rows={"leads": leads},
                        merge_key=("uid",))  # fmt: skip
        began = time.perf_counter()
        with warehouse_writer(settings, "the benchmark") as (connection, dialect):
            apply_load(connection, spec, {"leads": files}, dialect)
        seconds.append(time.perf_counter() - began)
    return seconds[0], seconds[1], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def warehouse_section(leads: int, warehouse_url: str) -> None:
    spawn = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="leadferry-bench-") as home:
        files = leads_files(Path(home), leads, "bench")
        results = {}
        for label, url in (("duckdb", f"duckdb://{home}/warehouse.duckdb"),
                           ("postgresql", warehouse_url)):  # fmt: skip
            with spawn.Pool(1) as pool:
                results[label] = pool.apply(load_twice, (url, home, files, leads))
    print(f"{'warehouse':<11} {'first s':>8} {'rows/s':>9} {'again s':>8} {'rows/s':>9} "
          f"{'peak RSS':>9}")  # fmt: skip
    for label, (first, again, rss) in results.items():
        print(f"{label:<11} {first:>8.1f} {leads / first:>9,.0f} {again:>8.1f} "
              f"{leads / again:>9,.0f} {rss / 1024:>6.0f} MB")  # fmt: skip
    duck, postgres = results["duckdb"], results["postgresql"]
    print(f"PostgreSQL / DuckDB time: {postgres[0] / duck[0]:.1f}x (first load), "
          f"{postgres[1] / duck[1]:.1f}x (every key replaced)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--section", choices=["tick", "warehouse"], required=True)
    parser.add_argument("--datasets", type=int, default=10_000)
    parser.add_argument("--store-url", default=None, help="Default: SQLite in a temp folder.")
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--warehouse-url", help="An empty PostgreSQL database (warehouse).")
    args = parser.parse_args()
    if args.section == "tick":
        tick_section(args.datasets, args.store_url)
    elif not args.warehouse_url:
        parser.error("--section warehouse needs --warehouse-url postgresql://...")
    else:
        warehouse_section(args.leads, args.warehouse_url)


if __name__ == "__main__":
    main()
