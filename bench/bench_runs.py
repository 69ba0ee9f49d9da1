"""The fixed cost of a small run (issues 15 and 11): 100-lead runs, side by side in one go.

    uv run python bench/bench_runs.py
    uv run python bench/bench_runs.py --repeat 7 --runs 30 --throughput-runs 200

The LeadExec simulator (``leadferry simulate leadexec``, ``--leads`` leads) runs in its own
process on loopback. Every contender fetches the same page (all the leads, one request) and
puts it into a DuckDB file:

- (a) ``minimal script`` (``bench/minimal_run.py``): a fresh Python process that fetches the page
  with http.client, reads it with the standard library's ElementTree and inserts the leads into
  a DuckDB table of text columns. The baseline: what loading the page costs with nothing else.
- (b) ``leadferry run``: the real CLI as a fresh process (``leadferry run bench``), an account
  and a dataset made before.
- (c) ``in one process``: ``run_dataset`` over and over in one long-lived process, as ``serve``
  and ``leadferry worker`` run them; one run first to warm up.
- (d) ``runs/s``: one process running ``--throughput-runs`` runs of ``--datasets`` datasets
  through ``jobs.execute`` on a pool of ``--concurrency`` threads (``leadferry worker``'s
  default), the way a worker runs what the queue sends it (without Celery's own cost).
- (e) ``leadferry worker``: the real worker (``--concurrency`` threads in each process) with 1
  and with ``--processes`` processes, taking a batch of queued runs, one per dataset of
  ``--worker-datasets``, from a Redis broker (``LEADFERRY_TEST_REDIS_URL``, else a
  redis-server of its own on loopback): one round to warm up (and create the datasets' tables),
  then a measured round. Runs/s is the round's runs over the time from the first run's start
  to the last one's end (the store's times); CPU is every process of the worker (and Redis's,
  shown apart), from sending the round to its end.

- (f) ``fresh commands``: what a fresh ``leadferry`` process costs for the commands scripts
  and tests start most (``--help``, ``run --help``, ``datasets list``, ``history --json``,
  ``query``, ``run``). With ``--baseline-src DIR`` (the ``src`` folder of another version, e.g.
  ``git archive HEAD~1 src | tar -x -C /tmp/before``, put first on ``PYTHONPATH``) each is
  measured with that version too, alternating, so before and after share the machine's load.

(a), (b) and (f) are the user + system CPU of the child process (``getrusage``), the median of
``--repeat``; (c) is the median CPU of one run (``time.process_time``, every thread of the
process); (d) and (e) are runs per second of wall time, and the CPU per run. The simulator's CPU is
shown apart: it shares the machine's cores. Ratios are against (a); targets are printed as
PASS/FAIL, nothing asserts.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shlex
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
from bench_sync import (
    API_KEY,
    BIN,
    LID,
    Simulator,
    child_env,
    cpu_seconds,
    free_port,
    machine,
    measure,
    verdict,
    window_days,
)

TARGET_WARM = 1.0  # (c) costs no more CPU than (a)
TARGET_RUNS_PER_SECOND = 5.0  # (d) and (e), issue 11
CLI = str(BIN / "leadferry")


def page_url(base_url: str) -> str:
    """The URL leadferry asks for the first page of the dataset's window."""
    from zoneinfo import ZoneInfo

    import httpx2

    from leadferry.connectors.base import Credentials
    from leadferry.connectors.leadexec import LeadExecConnector
    from leadferry.dates import DateWindow

    first, last = window_days()
    with httpx2.Client() as client:
        connector = LeadExecConnector(
            client, Credentials("bench", {"api_key": API_KEY, "base_url": base_url})
        )
        window = DateWindow.of_days(
            first, last + dt.timedelta(days=1), ZoneInfo(connector.default_timezone())
        )
        request = connector.page_request(connector.report("leads"), {"lid": LID}, window, 0)
    return str(request.url)


def make_home(home: Path, sim: Simulator, datasets: int) -> dict[str, str]:
    """An account on the simulator and *datasets* datasets of its leads (bench, bench_1, ...)."""
    env = child_env(home)
    first, last = window_days()
    commands = [[CLI, "accounts", "add", "sim", "-c", "leadexec", "--set", f"base_url={sim.url}"]]
    for name in dataset_names(datasets):
        commands.append(
            [CLI, "datasets", "create", name, "-a", "sim", "-r", "leads",
             "--param", f"lid={LID}", "--from", first.isoformat(), "--to", last.isoformat()]
        )  # fmt: skip
    for command in commands:
        subprocess.run(command, env=env, check=True, capture_output=True)
    return env


def dataset_names(count: int) -> list[str]:
    return ["bench"] + [f"bench_{number}" for number in range(1, count)]


# -- the children --------------------------------------------------------------------------------


def child_in_process(runs: int) -> None:
    """(c): one warm-up run, then *runs* runs of ``bench``; CPU seconds of each."""
    from leadferry.run import run_dataset
    from leadferry.settings import Settings
    from leadferry.store import Store

    settings = Settings()
    store = Store.open(settings)
    cpu = []
    for _ in range(runs + 1):
        started = time.process_time()
        run = run_dataset(store, settings, "bench")
        cpu.append(time.process_time() - started)
        if run.rows.get("leads", 0) == 0:
            raise RuntimeError("a run loaded no leads")
    store.close()
    print(json.dumps({"cpu": cpu[1:]}))


def child_throughput(datasets: int, runs: int, concurrency: int) -> None:
    """(d): *runs* runs over *datasets* datasets through ``jobs.execute``, *concurrency* at a
    time; a dataset is given to one thread at a time, as the scheduler's claims make sure."""
    import queue

    from leadferry.jobs import Job, JobContext, execute
    from leadferry.settings import Settings
    from leadferry.store import Store

    settings = Settings()
    store = Store.open(settings)
    context = JobContext(store, settings, worker="bench")
    names = dataset_names(datasets)
    execute(Job(names[0], "manual", None, 0), context)  # warm-up
    free: queue.Queue[str] = queue.Queue()
    for name in names:
        free.put(name)
    failed = 0

    def one(_: int) -> None:
        nonlocal failed
        name = free.get()
        try:
            if execute(Job(name, "manual", None, 0), context) is None:
                failed += 1
        finally:
            free.put(name)

    cpu, wall = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(runs)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    store.close()
    print(json.dumps({"wall": wall, "cpu": cpu, "failed": failed}))


# -- (e): a real worker --------------------------------------------------------------------------


@contextlib.contextmanager
def redis_server() -> Iterator[tuple[str, int | None]]:
    """The Redis URL to use and the pid of the server if it is ours (its CPU is shown)."""
    url = os.environ.get("LEADFERRY_TEST_REDIS_URL")
    if url:
        yield url, None
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("(e) needs Redis: set LEADFERRY_TEST_REDIS_URL or install redis-server")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        yield f"redis://127.0.0.1:{port}/0", process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def add_datasets(env: dict[str, str], count: int) -> list[str]:
    """*count* more datasets like ``bench`` (made through the store: the CLI costs seconds each)."""
    import dataclasses

    from leadferry.settings import Settings
    from leadferry.store import Store

    names = [f"queued_{number}" for number in range(count)]
    with Store.open(Settings(home=env["LEADFERRY_HOME"])) as store:
        spec = store.get_dataset("bench").spec
        for name in names:
            store.create_dataset(dataclasses.replace(spec, name=name))
    return names


class QueuedRounds:
    """Sends rounds of jobs (one per dataset) to a queue and waits for their runs."""

    def __init__(self, env: dict[str, str]) -> None:
        from leadferry.settings import Settings
        from leadferry.worker import celery_app

        self.settings = Settings(home=env["LEADFERRY_HOME"], broker_url=env["LEADFERRY_BROKER_URL"],
                                 queue=env["LEADFERRY_QUEUE"])  # fmt: skip
        self.app = celery_app(self.settings)
        self.database = self.settings.home / "leadferry.sqlite"

    def send(self, names: list[str]) -> int:
        """Queue one job per dataset of *names*; return the id of the last run before them."""
        from leadferry.jobs import Job
        from leadferry.worker import RUN_TASK

        before = self._query("select coalesce(max(id), 0) from runs")[0][0]
        for name in names:
            job = Job(name, "manual", None, 0)
            self.app.send_task(RUN_TASK, kwargs={"job": job.as_message()},
                               queue=self.settings.queue)  # fmt: skip
        return int(before)

    def wait(self, after: int, runs: int, worker: subprocess.Popen[bytes]) -> tuple[float, int]:
        """Wait for the *runs* runs after run *after* to end; their span in seconds and
        failures."""
        while True:
            (ended, failed, first, last), = self._query(
                "select count(*), sum(status != 'success'), min(started_at), max(finished_at) "
                f"from runs where id > {after} and status != 'running'"
            )  # fmt: skip
            if ended >= runs:
                span = _instant(last) - _instant(first)
                return span.total_seconds(), int(failed or 0)
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited ({worker.returncode})")
            time.sleep(0.25)

    def _query(self, sql: str) -> list[tuple[object, ...]]:
        with contextlib.closing(sqlite3.connect(self.database, timeout=30)) as connection:
            return connection.execute(sql).fetchall()

    def close(self) -> None:
        self.app.close()


def _instant(value: object) -> dt.datetime:
    return dt.datetime.fromisoformat(str(value))


def tree_cpu(pid: int) -> float:
    """User + system CPU of *pid* and its children so far."""
    process = psutil.Process(pid)
    return sum(cpu_seconds(p.pid) for p in [process, *process.children(recursive=True)])


def worker_rate(
    env: dict[str, str], names: list[str], processes: int, concurrency: int,
    redis: tuple[str, int | None], sim: Simulator, warm_up: list[str] | None = None,
) -> dict[str, float]:  # fmt: skip
    """(e): a measured round of *names*' runs through ``leadferry worker``, after a round of
    *warm_up*'s (default: *names*); runs/s and CPU."""
    url, redis_pid = redis
    env = env | {"LEADFERRY_BROKER_URL": url, "LEADFERRY_QUEUE": f"bench-{uuid.uuid4().hex[:8]}"}
    command = [CLI, "worker", "--processes", str(processes), "--concurrency", str(concurrency),
               "--name", f"bench{processes}@bench"]  # fmt: skip
    log = Path(env["LEADFERRY_HOME"]) / f"worker-{processes}.log"
    with log.open("wb") as stderr:  # Celery's own lines; read it when a round fails
        worker = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    rounds = QueuedRounds(env)
    warm_up = names if warm_up is None else warm_up
    try:
        rounds.wait(rounds.send(warm_up), len(warm_up), worker)  # starts, creates the tables
        cpu = [tree_cpu(worker.pid), cpu_seconds(sim.proc.pid)]
        cpu.append(cpu_seconds(redis_pid) if redis_pid else 0.0)
        span, failed = rounds.wait(rounds.send(names), len(names), worker)
        used = [tree_cpu(worker.pid), cpu_seconds(sim.proc.pid)]
        used.append(cpu_seconds(redis_pid) if redis_pid else 0.0)
    finally:
        rounds.close()
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=120)
    worker_cpu, sim_cpu, redis_cpu = (
        after - before for after, before in zip(used, cpu, strict=True)
    )
    return {"rate": len(names) / span, "cpu": worker_cpu / len(names), "failed": failed,
            "sim": sim_cpu / len(names), "redis": redis_cpu / len(names)}  # fmt: skip


# -- the parent ----------------------------------------------------------------------------------


def last_json(text: str) -> dict[str, object]:
    return json.loads(text.strip().splitlines()[-1])


def median_cpu(
    command: list[str], env: dict[str, str], label: str, sim: Simulator, repeat: int
) -> tuple[float, float, str]:
    """Median CPU of *command* over *repeat* runs, and the simulator's median CPU meanwhile."""
    measured = [measure(command, env, label, sim.proc.pid) for _ in range(repeat)]
    return (
        statistics.median(m.cpu for m in measured),
        statistics.median(m.server_cpu for m in measured),
        measured[-1].stdout,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=100, help="Leads of the simulator (a page).")
    parser.add_argument("--repeat", type=int, default=5, help="Runs of (a) and (b); the median.")
    parser.add_argument("--runs", type=int, default=20, help="Runs of (c) in one process.")
    parser.add_argument("--throughput-runs", type=int, default=100, help="Runs of (d).")
    parser.add_argument("--datasets", type=int, default=8, help="Datasets (d) spreads over.")
    parser.add_argument("--concurrency", type=int, default=4, help="Threads of (d) and (e).")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1,
                        help="Processes of (e)'s second worker (default: the cores).")  # fmt: skip
    parser.add_argument("--worker-datasets", type=int, default=40,
                        help="Datasets (e) queues a run of, in each round.")  # fmt: skip
    parser.add_argument("--skip", default="", help="Contenders to leave out, e.g. 'abcde'.")
    parser.add_argument("--baseline-src", type=Path,
                        help="(f): also measure the leadferry of this src folder.")  # fmt: skip
    parser.add_argument("--child", choices=("in-process", "throughput"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child == "in-process":
        child_in_process(args.runs)
        return
    if args.child == "throughput":
        child_throughput(args.datasets, args.throughput_runs, args.concurrency)
        return

    print(f"machine: {machine()}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    scratch = Path(tempfile.mkdtemp(prefix="leadferry-bench-runs-"))
    with Simulator(args.leads) as sim:
        env = make_home(scratch / "home", sim, args.datasets)
        lines, rates = contenders(args, sim, env, scratch)
        fresh = [] if "f" in args.skip else fresh_commands(env, sim, args.repeat, args.baseline_src)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())

    print(f"\ncommand: uv run python bench/bench_runs.py {shlex.join(sys.argv[1:])}".rstrip())
    print(f"load average after: {load}; CPU {psutil.cpu_percent(interval=0.5):.0f}% busy now\n")
    script_cpu = lines[0][1]
    print(f"{'contender':<48} {'CPU s':>7} {'/ (a)':>6} {'simulator CPU s':>16}")
    for label, cpu, server_cpu in lines:
        print(f"{label:<48} {cpu:>7.3f} {cpu / script_cpu:>6.2f} {server_cpu:>16.3f}")
    print()
    if fresh:
        print_fresh(fresh, args.baseline_src)
    warm = [cpu for label, cpu, _ in lines if label.startswith("(c)")]
    if warm:
        print(f"(c) / (a)  {warm[0] / script_cpu:5.2f}   target <= {TARGET_WARM:.2f}   "
              f"{verdict(warm[0] <= TARGET_WARM * script_cpu)}")  # fmt: skip
    for label, rate in rates:
        print(f"{label:<28} {rate:5.2f} runs/s   / target {rate / TARGET_RUNS_PER_SECOND:4.2f}   "
              f"{verdict(rate >= TARGET_RUNS_PER_SECOND)}")  # fmt: skip
    if rates:
        print("(the simulator, and Redis for (e), share the machine's cores)")


Line = tuple[str, float, float]

FRESH = (("--help",), ("run", "--help"), ("datasets", "list"), ("history", "bench", "--json"),
         ("query", "select 1"), ("run", "bench"))  # fmt: skip
"""(f): the commands whose fresh-process cost is measured."""


def fresh_commands(
    env: dict[str, str], sim: Simulator, repeat: int, baseline: Path | None
) -> list[tuple[str, float, float | None]]:
    """(f): the median CPU of each of FRESH, and of the *baseline* version's (None without)."""
    versions = {"this": env}
    if baseline:
        versions["baseline"] = env | {"PYTHONPATH": str(baseline)}
    print(f"(f) {len(FRESH)} fresh commands, {repeat} times each"
          f"{', alternating with the baseline' if baseline else ''} ...", flush=True)  # fmt: skip
    results = []
    for command in FRESH:
        cpu: dict[str, list[float]] = {version: [] for version in versions}
        for _ in range(repeat + 1):  # the first round warms up the bytecode caches
            for version, version_env in versions.items():
                measured = measure([CLI, *command], version_env, "(f)", sim.proc.pid)
                cpu[version].append(measured.cpu)
        median = {version: statistics.median(times[1:]) for version, times in cpu.items()}
        label = shlex.join(["leadferry", *command])
        results.append((label, median["this"], median.get("baseline")))
    return results


def print_fresh(results: list[tuple[str, float, float | None]], baseline: Path | None) -> None:
    compared = f" {'baseline':>9} {'/ base':>6}" if baseline else ""
    print(f"{'(f) fresh process':<48} {'CPU s':>7}{compared}")
    for command, cpu, before in results:
        compared = f" {before:>9.3f} {cpu / before:>6.2f}" if before else ""
        print(f"{command:<48} {cpu:>7.3f}{compared}")
    if baseline:
        print(f"(baseline: {baseline})")
    print()


def contenders(
    args: argparse.Namespace, sim: Simulator, env: dict[str, str], scratch: Path
) -> tuple[list[Line], list[tuple[str, float]]]:
    """Measure (a) and the contenders not skipped: their CPU lines, and the runs/s of (d), (e)."""
    me = [sys.executable, __file__]
    database = str(scratch / "minimal.duckdb")
    minimal = [sys.executable, str(Path(__file__).with_name("minimal_run.py")), page_url(sim.url),
               database]  # fmt: skip
    print("warming up (bytecode, and a check that every contender works) ...", flush=True)
    rows = last_json(measure(minimal, env, "minimal script", sim.proc.pid).stdout)["rows"]
    measure([CLI, "run", "bench"], env, "leadferry run", sim.proc.pid)
    print(f"(a) minimal script, {rows} leads, {args.repeat} times ...", flush=True)
    script_cpu, script_sim, _ = median_cpu(minimal, env, "minimal", sim, args.repeat)
    lines: list[Line] = [("(a) minimal script (fresh process)", script_cpu, script_sim)]
    rates: list[tuple[str, float]] = []
    if "b" not in args.skip:
        print(f"(b) leadferry run, {args.repeat} times ...", flush=True)
        cli_cpu, cli_sim, _ = median_cpu([CLI, "run", "bench"], env, "run", sim, args.repeat)
        lines.append(("(b) leadferry run (fresh process)", cli_cpu, cli_sim))
    if "c" not in args.skip:
        print(f"(c) {args.runs} runs in one process ...", flush=True)
        in_process = [*me, "--child", "in-process", "--runs", str(args.runs)]
        warm = measure(in_process, env, "(c)", sim.proc.pid)
        warm_cpu = statistics.median(last_json(warm.stdout)["cpu"])  # type: ignore[arg-type]
        label = f"(c) a run in one process (median of {args.runs})"
        lines.append((label, warm_cpu, warm.server_cpu / (args.runs + 1)))
    if "d" not in args.skip:
        print(f"(d) {args.throughput_runs} runs over {args.datasets} datasets, "
              f"{args.concurrency} threads ...", flush=True)  # fmt: skip
        throughput_command = [
            *me, "--child", "throughput", "--datasets", str(args.datasets),
            "--throughput-runs", str(args.throughput_runs),
            "--concurrency", str(args.concurrency),
        ]  # fmt: skip
        measured = measure(throughput_command, env, "(d)", sim.proc.pid)
        busy = last_json(measured.stdout)
        rate = args.throughput_runs / float(busy["wall"])  # type: ignore[arg-type]
        label = f"(d) a run at {args.concurrency} threads, {rate:.2f} runs/s"
        per_run = float(busy["cpu"]) / args.throughput_runs  # type: ignore[arg-type]
        lines.append((label, per_run, measured.server_cpu / (args.throughput_runs + 1)))
        rates.append((f"(d) {args.concurrency} threads", rate))
        if busy["failed"]:
            print(f"warning: {busy['failed']} of the (d) runs failed")
    if "e" not in args.skip:
        names = add_datasets(env, args.worker_datasets)
        with redis_server() as redis:
            for processes in sorted({1, args.processes}):
                print(f"(e) leadferry worker --processes {processes} --concurrency "
                      f"{args.concurrency}: 2 rounds of {len(names)} queued runs ...",
                      flush=True)  # fmt: skip
                got = worker_rate(env, names, processes, args.concurrency, redis, sim)
                label = f"(e) worker, {processes} process(es), {got['rate']:.2f} runs/s"
                lines.append((label, got["cpu"], got["sim"]))
                rates.append((f"(e) worker, {processes} process(es)", got["rate"]))
                if got["redis"]:
                    print(f"    Redis: {got['redis']:.3f} CPU s a run")
                if got["failed"]:
                    print(f"warning: {got['failed']} of the (e) runs failed")
    return lines, rates


if __name__ == "__main__":
    main()
