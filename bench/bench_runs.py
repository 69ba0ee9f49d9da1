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

(a) and (b) are the user + system CPU of the child process (``getrusage``), the median of
``--repeat``; (c) is the median CPU of one run (``time.process_time``, every thread of the
process); (d) is runs per second of wall time, and the CPU per run. The simulator's CPU is
shown apart: it shares the machine's cores. Ratios are against (a); targets are printed as
PASS/FAIL, nothing asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
from bench_sync import (
    API_KEY,
    BIN,
    LID,
    Simulator,
    child_env,
    machine,
    measure,
    verdict,
    window_days,
)

TARGET_WARM = 1.0  # (c) costs no more CPU than (a)
TARGET_RUNS_PER_SECOND = 5.0  # (d), issue 11
CLI = str(BIN / "leadferry")


def page_url(base_url: str) -> str:
    """The URL leadferry asks for the first page of the dataset's window."""
    import datetime as dt
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
    from leadferry.runner import run_dataset
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
    parser.add_argument("--concurrency", type=int, default=4, help="Threads of (d).")
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
    me = [sys.executable, __file__]
    with Simulator(args.leads) as sim:
        env = make_home(scratch / "home", sim, args.datasets)
        url = page_url(sim.url)
        database = str(scratch / "minimal.duckdb")
        minimal = [sys.executable, str(Path(__file__).with_name("minimal_run.py")), url, database]
        print("warming up (bytecode, and a check that every contender works) ...", flush=True)
        rows = last_json(measure(minimal, env, "minimal script", sim.proc.pid).stdout)["rows"]
        measure([CLI, "run", "bench"], env, "leadferry run", sim.proc.pid)
        print(f"(a) minimal script, {rows} leads, {args.repeat} times ...", flush=True)
        script_cpu, script_sim, _ = median_cpu(minimal, env, "minimal", sim, args.repeat)
        print(f"(b) leadferry run, {args.repeat} times ...", flush=True)
        cli_cpu, cli_sim, _ = median_cpu([CLI, "run", "bench"], env, "run", sim, args.repeat)
        print(f"(c) {args.runs} runs in one process ...", flush=True)
        in_process = [*me, "--child", "in-process", "--runs", str(args.runs)]
        warm = measure(in_process, env, "(c)", sim.proc.pid)
        warm_sim = warm.server_cpu / (args.runs + 1)
        warm_cpu = statistics.median(last_json(warm.stdout)["cpu"])  # type: ignore[arg-type]
        print(
            f"(d) {args.throughput_runs} runs over {args.datasets} datasets, "
            f"{args.concurrency} threads ...",
            flush=True,
        )
        throughput_command = [
            *me, "--child", "throughput", "--datasets", str(args.datasets),
            "--throughput-runs", str(args.throughput_runs),
            "--concurrency", str(args.concurrency),
        ]  # fmt: skip
        measured = measure(throughput_command, env, "(d)", sim.proc.pid)
        busy = last_json(measured.stdout)
        busy_sim = measured.server_cpu / (args.throughput_runs + 1)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    runs_per_second = args.throughput_runs / float(busy["wall"])  # type: ignore[arg-type]
    per_run = float(busy["cpu"]) / args.throughput_runs  # type: ignore[arg-type]

    print(f"\ncommand: uv run python bench/bench_runs.py {shlex.join(sys.argv[1:])}".rstrip())
    print(f"load average after: {load}; CPU {psutil.cpu_percent(interval=0.5):.0f}% busy now\n")
    print(f"{'contender':<44} {'CPU s':>7} {'/ (a)':>6} {'simulator CPU s':>16}")
    threads = f"(d) a run at {args.concurrency} threads, {runs_per_second:.2f} runs/s"
    lines = [
        ("(a) minimal script (fresh process)", script_cpu, script_sim),
        ("(b) leadferry run (fresh process)", cli_cpu, cli_sim),
        (f"(c) a run in one process (median of {args.runs})", warm_cpu, warm_sim),
        (threads, per_run, busy_sim),
    ]
    for label, cpu, server_cpu in lines:
        print(f"{label:<44} {cpu:>7.3f} {cpu / script_cpu:>6.2f} {server_cpu:>16.3f}")
    if busy["failed"]:
        print(f"warning: {busy['failed']} of the (d) runs failed")
    print()
    print(f"(c) / (a)  {warm_cpu / script_cpu:5.2f}   target <= {TARGET_WARM:.2f}   "
          f"{verdict(warm_cpu <= TARGET_WARM * script_cpu)}")  # fmt: skip
    print(f"(d) runs/s {runs_per_second:5.2f}   target >= {TARGET_RUNS_PER_SECOND:.2f}   "
          f"{verdict(runs_per_second >= TARGET_RUNS_PER_SECOND)}   "
          "(the simulator shares the 2 cores)")  # fmt: skip


if __name__ == "__main__":
    main()
