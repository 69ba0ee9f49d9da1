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
  a decimal, a flag, text) as one run's Parquet files, applied by
  :func:`leadferry.apply.apply_load` with the merge method into an empty dataset and then again
  over itself (every key replaced), once into a DuckDB file and once into PostgreSQL
  (``--warehouse-url``, an empty database). Each warehouse loads in a process of its own:
  rows/s and that process's peak RSS (PostgreSQL's server is not in it), and the ratio.

    uv run python bench/bench_scale.py --section warehouse --warehouse-url postgresql://...

- ``attach``: what a DuckDB file of ``--datasets`` (2,000) real datasets costs a load. The
  LeadExec simulator (``--leads`` 100 a page) on loopback, one dataset run through ``leadferry
  run``, its schema then copied to the others (its tables and rows, as a run leaves them). In one
  process (``time.process_time``, ``--rounds`` rounds): CPU of the attach, of a one-load write
  (the 100 leads into one dataset, and its load recorded), of the detach (its checkpoint); the
  same with ``checkpoint_on_detach`` off, and what the next attach pays to replay the log; and
  the read-only attach every read (``query``, preview, export, the pages) pays.

    uv run python bench/bench_scale.py --section attach

- ``workers``: runs of 100-lead datasets through ``leadferry worker`` (``--concurrency`` 4)
  with one process and with two, as bench_runs.py (e) measures them (Redis from
  ``LEADFERRY_TEST_REDIS_URL`` or its own): ``--datasets`` (2,000) datasets made as in
  ``attach``; a warm-up round of ``--warm-up`` runs, then a measured round of ``--runs`` runs,
  each of another dataset. Into the DuckDB file, and into PostgreSQL too with
  ``--warehouse-url`` (an empty database). With ``--before DIR`` (the ``src`` folder of another
  version, put first on the worker's ``PYTHONPATH``) each is measured with that version too,
  alternating, so before and after share the machine's load.

    uv run python bench/bench_scale.py --section workers --runs 200 --before /tmp/before/src

- ``batch``: ``leadferry run`` of ``--runs`` (20) datasets in one process, against a DuckDB file
  of ``--datasets`` (2,000) datasets made as in ``attach``: the process's user + system CPU and
  its wall time, median of ``--rounds`` (3) rounds, each of datasets no round ran before. With
  ``--before DIR`` (another version's ``src``, first on ``PYTHONPATH``) the same with that version,
  alternating: before a run of several datasets kept the file attached between its loads, each
  load attached and checkpointed it.

    uv run python bench/bench_scale.py --section batch --before /tmp/before/src

Targets are printed as PASS/FAIL; nothing here asserts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from bench_runs import CLI, add_datasets, make_home, redis_server, worker_rate
from bench_sync import Simulator, children_cpu, verdict

from leadferry.jobs import Job
from leadferry.schedule import Schedule
from leadferry.scheduler import Scheduler
from leadferry.settings import Settings
from leadferry.store import DatasetSpec, Store, generate_key

RUNS_TARGET = 5.0  # runs/s of 100-lead datasets through one 2-core worker (issue 11)
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


# -- attach and workers: a warehouse of thousands of real datasets -------------------------------


def prepared_home(
    scratch: Path, sim: Simulator, datasets: int, warehouse_url: str | None
) -> dict[str, str]:
    """A home of *datasets* datasets of the simulator's leads: ``bench``, run once through
    ``leadferry run`` into the warehouse (*warehouse_url*, else the DuckDB file), and
    ``queued_0``... whose schemas are copies of its tables and rows. Its environment."""
    env = make_home(scratch / "home", sim, 1)
    if warehouse_url:
        env["LEADFERRY_WAREHOUSE_URL"] = warehouse_url
    subprocess.run([CLI, "run", "bench"], env=env, check=True, capture_output=True)
    names = add_datasets(env, datasets - 1)
    began = time.perf_counter()
    if warehouse_url:
        copy_schema_postgres(Settings(warehouse_url=warehouse_url).warehouse_postgres_url, names)
    else:
        copy_schema_duckdb(Path(env["LEADFERRY_HOME"]) / "warehouse.duckdb", names)
    print(f"{datasets:,} datasets in the warehouse in {time.perf_counter() - began:.0f} s",
          flush=True)  # fmt: skip
    return env


def copy_schema_duckdb(path: Path, names: list[str]) -> None:
    import duckdb

    with duckdb.connect(str(path)) as connection:
        tables = connection.execute(
            "select table_name, sql from duckdb_tables() where schema_name = 'bench'"
        ).fetchall()
        for name in names:
            connection.execute("begin")
            connection.execute(f"create schema {name}")
            for table, sql in tables:
                connection.execute(sql.replace("CREATE TABLE bench.", f"CREATE TABLE {name}.", 1))
                connection.execute(f"insert into {name}.{table} from bench.{table}")
            connection.execute("commit")
    print(f"DuckDB file: {path.stat().st_size / 1e6:,.0f} MB")


def copy_schema_postgres(url: str | None, names: list[str]) -> None:
    import psycopg

    with psycopg.connect(url) as connection:
        tables = [row[0] for row in connection.execute(
            "select table_name from information_schema.tables where table_schema = 'bench'"
        )]  # fmt: skip
        for name in names:
            connection.execute(f"create schema {name}")
            for table in tables:
                connection.execute(
                    f'create table {name}."{table}" (like bench."{table}" including all)'
                )
                connection.execute(f'insert into {name}."{table}" select * from bench."{table}"')
            connection.commit()


def attach_costs(path: str, rounds: int) -> None:
    """CPU seconds of the attach, a one-load write and the detach of *path*, *rounds* times,
    with and without the detach's checkpoint, and of a read-only attach."""
    import duckdb

    def one(target: str, checkpoint: bool) -> list[float]:
        config = {"threads": 1, "preserve_insertion_order": False}
        if not checkpoint:
            config["checkpoint_on_detach"] = "DISABLED"
        instance = duckdb.connect(":memory:", config=config)
        costs = []
        started = time.process_time()
        instance.execute(f"attach '{path}' as warehouse")
        costs.append(time.process_time() - started)
        started = time.process_time()
        instance.execute("begin")
        instance.execute(f"insert into warehouse.{target}.leads from warehouse.bench.leads")
        instance.execute(
            f"insert into warehouse.{target}._leadferry_loads values "
            "(?, 0, '{}', null, '[]', now())",
            [f"bench-{time.time()}"],
        )
        instance.execute("commit")
        costs.append(time.process_time() - started)
        started = time.process_time()
        instance.execute("detach warehouse")
        costs.append(time.process_time() - started)
        instance.close()
        return costs

    def read_only() -> float:
        instance = duckdb.connect(":memory:")
        started = time.process_time()
        instance.execute(f"attach '{path}' as warehouse (read_only)")
        spent = time.process_time() - started
        instance.close()
        return spent

    lines = []
    for checkpoint in (True, False):
        costs = [one(f"queued_{number}", checkpoint) for number in range(rounds)]
        label = "checkpoint on detach" if checkpoint else "no checkpoint on detach"
        lines.append((label, [statistics.median(c[i] for c in costs) for i in range(3)]))
        replay = one("queued_0", True)[0]  # the next attach, a log of *rounds* loads behind it
        lines.append((f"  then an attach replaying {rounds} loads", [replay, 0.0, 0.0]))
    print(f"{'DuckDB file, CPU s (median)':<42} {'attach':>7} {'write':>7} {'detach':>7}")
    for label, (attach, write, detach) in lines:
        print(f"{label:<42} {attach:>7.3f} {write:>7.3f} {detach:>7.3f}")
    readers = [read_only() for _ in range(rounds)]
    print(f"{'a read-only attach (every read)':<42} {statistics.median(readers):>7.3f}")


def attach_section(datasets: int, leads: int, rounds: int) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="leadferry-bench-scale-"))
    try:
        with Simulator(leads) as sim:
            env = prepared_home(scratch, sim, datasets, None)
        attach_costs(str(Path(env["LEADFERRY_HOME"]) / "warehouse.duckdb"), rounds)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def workers_section(args: argparse.Namespace) -> None:
    warehouses = {"duckdb": None, "postgresql": args.warehouse_url}
    versions: dict[str, dict[str, str]] = {"this": {}}
    if args.before:
        versions["before"] = {"PYTHONPATH": str(args.before)}
    results = []
    scratch = Path(tempfile.mkdtemp(prefix="leadferry-bench-scale-"))
    try:
        with Simulator(args.leads) as sim, redis_server() as redis:
            for warehouse, url in warehouses.items():
                if warehouse == "postgresql" and not url:
                    continue
                env = prepared_home(scratch / warehouse, sim, args.datasets, url)
                names = [f"queued_{number}" for number in range(args.datasets - 1)]
                # Each round of every contender runs datasets none ran before it.
                rounds = iter(range(0, len(names), args.warm_up + args.runs))
                for processes in (1, 2):
                    for version, extra in versions.items():
                        first = next(rounds)
                        warm_up = names[first : first + args.warm_up]
                        measured = names[first + args.warm_up : first + args.warm_up + args.runs]
                        print(f"{warehouse}, {version}, worker --processes {processes}: "
                              f"{len(warm_up)} + {len(measured)} runs ...", flush=True)  # fmt: skip
                        got = worker_rate(env | extra, measured, processes, args.concurrency,
                                          redis, sim, warm_up)  # fmt: skip
                        results.append((warehouse, version, processes, got))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'warehouse':<11} {'code':<7} {'processes':>9} {'runs/s':>7} {'CPU s a run':>12} "
          f"{'simulator':>10} {'failed':>7}")  # fmt: skip
    for warehouse, version, processes, got in results:
        print(f"{warehouse:<11} {version:<7} {processes:>9} {got['rate']:>7.2f} "
              f"{got['cpu']:>12.3f} {got['sim']:>10.3f} {got['failed']:>7}")  # fmt: skip
    for warehouse, version, processes, got in results:
        if version == "this" and processes == 1:
            print(f"{verdict(got['rate'] >= RUNS_TARGET)}: {warehouse}, one worker process: "
                  f"{got['rate']:.2f} runs/s (target >= {RUNS_TARGET:g})")  # fmt: skip


def batch_section(args: argparse.Namespace) -> None:
    versions: dict[str, dict[str, str]] = {"this": {}}
    if args.before:
        versions["before"] = {"PYTHONPATH": str(args.before)}
    measured: dict[str, list[tuple[float, float]]] = {version: [] for version in versions}
    scratch = Path(tempfile.mkdtemp(prefix="leadferry-bench-scale-"))
    try:
        with Simulator(args.leads) as sim:
            env = prepared_home(scratch, sim, args.datasets, None)
            names = iter(f"queued_{number}" for number in range(args.datasets - 1))
            for round_ in range(args.rounds):
                for version, extra in versions.items():
                    batch = [next(names) for _ in range(args.runs)]
                    print(f"round {round_ + 1}, {version}: leadferry run of {len(batch)} "
                          "datasets ...", flush=True)  # fmt: skip
                    cpu_before, began = children_cpu(), time.perf_counter()
                    subprocess.run([CLI, "run", *batch], env=env | extra, check=True,
                                   capture_output=True)  # fmt: skip
                    wall = time.perf_counter() - began
                    measured[version].append((children_cpu() - cpu_before, wall))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"leadferry run of {args.runs} datasets, a DuckDB file of {args.datasets:,} datasets "
          f"(median of {args.rounds})")  # fmt: skip
    print(f"{'code':<7} {'CPU s':>7} {'wall s':>7} {'CPU s a dataset':>16}")
    medians = {}
    for version, rounds in measured.items():
        cpu = statistics.median(c for c, _ in rounds)
        wall = statistics.median(w for _, w in rounds)
        medians[version] = cpu
        print(f"{version:<7} {cpu:>7.2f} {wall:>7.2f} {cpu / args.runs:>16.3f}")
    if "before" in medians:
        print(f"this / before CPU: {medians['this'] / medians['before']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--section", choices=["tick", "warehouse", "attach", "workers", "batch"],
                        required=True)  # fmt: skip
    parser.add_argument("--datasets", type=int,
                        help="Default: 10,000 (tick), 2,000 (attach, workers, batch).")  # fmt: skip
    parser.add_argument("--store-url", default=None, help="Default: SQLite in a temp folder.")
    parser.add_argument("--leads", type=int,
                        help="Default: 1,000,000 (warehouse), 100 (the others).")  # fmt: skip
    parser.add_argument("--warehouse-url", help="An empty PostgreSQL database (warehouse).")
    parser.add_argument("--rounds", type=int, default=3, help="attach, batch: rounds, the median.")
    parser.add_argument("--runs", type=int, help="workers: runs measured (200); batch: datasets a "
                        "run (20).")  # fmt: skip
    parser.add_argument("--warm-up", type=int, default=20, help="workers: runs before.")
    parser.add_argument("--concurrency", type=int, default=4, help="workers: threads each.")
    parser.add_argument("--before", type=Path,
                        help="workers, batch: also the leadferry of this src.")  # fmt: skip
    args = parser.parse_args()
    small = args.section in ("attach", "workers", "batch")
    args.runs = args.runs or (20 if args.section == "batch" else 200)
    args.datasets = args.datasets or (2_000 if small else 10_000)
    args.leads = args.leads or (100 if small else 1_000_000)
    if args.section == "tick":
        tick_section(args.datasets, args.store_url)
    elif args.section == "attach":
        attach_section(args.datasets, args.leads, args.rounds)
    elif args.section == "workers":
        if args.datasets - 1 < 2 * (args.warm_up + args.runs) * (1 + bool(args.before)):
            parser.error("--datasets must leave each round datasets of its own: raise it")
        workers_section(args)
    elif args.section == "batch":
        if args.datasets - 1 < args.rounds * args.runs * (1 + bool(args.before)):
            parser.error("--datasets must leave each round datasets of its own: raise it")
        batch_section(args)
    elif not args.warehouse_url:
        parser.error("--section warehouse needs --warehouse-url postgresql://...")
    else:
        warehouse_section(args.leads, args.warehouse_url)


if __name__ == "__main__":
    main()
