"""Sync N LeadExec leads from the simulator into DuckDB: leadferry against its limits.

    uv run python bench/bench_sync.py                          # 1,000,000 leads (a few minutes)
    uv run python bench/bench_sync.py --leads 200000 --dlt-leads 20000 --small 50000

The simulator (``leadferry simulate leadexec``) runs in its own process on loopback. Each contender
then runs in its own process, in a fresh temporary LEADFERRY_HOME, on the same pages (the
connector's own requests: skip/take 1,000, one window covering every lead):

- ``raw fetch``: httpx2 downloads every page with leadferry's concurrency (the first page alone,
  then 4 at a time) and discards the bodies: no parsing, no loading. The limit.
- ``leadferry``: the real CLI, ``leadferry accounts add`` + ``datasets create`` + ``leadferry run``;
  the warehouse must then hold exactly N leads.
- ``dlt default``: dlt's REST API source (offset paginator, records under ``Leads``, total at
  ``QueryTotal``) reading the same endpoint as JSON, dict rows through dlt's normaliser into
  DuckDB. It is slow, so it reads only the first ``--dlt-leads`` leads; rates (rows/s) are compared.

Seconds are the contender process's wall time, start-up included. Peak RSS is the process's VmHWM
(its own high-water mark, which ``ru_maxrss`` of a forked child is not), polled until it exits.
CPU seconds are the contender's and, separately, the simulator's while it served that contender:
on 2 cores they share, so a busy machine shows up there.
leadferry also runs at ``--small`` leads (its own simulator) to show that memory does not grow
with N. Targets are printed as PASS/FAIL; nothing here asserts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import httpx2
import psutil

if TYPE_CHECKING:
    from leadferry.connectors.leadexec import LeadExecConnector
    from leadferry.dates import DateWindow

API_KEY = "bench-key"
LID = 1
SIM_DAYS = 30
SIM_ZONE = "America/Los_Angeles"  # the simulator's and the connector's default zone
CONCURRENCY = 4  # leadferry's default (Settings.concurrency)
PAGE = 1000
BIN = Path(sys.executable).parent

TARGET_RAW = 0.5  # leadferry end to end >= 50% of the raw-fetch rate
TARGET_DLT = 10.0  # ... and >= 10x dlt's default path
TARGET_RSS_MB = 400.0  # peak RSS under 400 MB ...
TARGET_RSS_SPREAD = 0.2  # ... and within 20% between --small and --leads


@dataclass
class Result:
    name: str
    rows: int
    seconds: float
    peak_mb: float
    cpu: float
    """CPU seconds (user + system) of the contender's process."""
    server_cpu: float
    """CPU seconds the simulator spent meanwhile."""

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


# -- measuring a child process -------------------------------------------------------------------


def _hwm_mb(pid: int) -> float:
    """VmHWM of *pid* and its descendants, MB (0 once they are gone)."""
    total = 0.0
    try:
        family = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    for proc in family:
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
        if match:
            total += int(match.group(1)) / 1024
    return total


@dataclass
class Measured:
    seconds: float
    peak_mb: float
    cpu: float
    server_cpu: float
    stdout: str


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(cmd: list[str], env: dict[str, str], label: str, server: int) -> Measured:
    """Run *cmd* while the simulator *server* (a pid) serves it. Raise when it fails."""
    peak = 0.0
    server_before, cpu_before = cpu_seconds(server), children_cpu()
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    done = threading.Event()

    def poll() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _hwm_mb(proc.pid))
            done.wait(0.02)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - started
    cpu, server_cpu = children_cpu() - cpu_before, cpu_seconds(server) - server_before
    done.set()
    poller.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{label} failed ({proc.returncode}):\n{err.decode()[-3000:]}")
    return Measured(seconds, peak, cpu, server_cpu, out.decode())


# -- the simulator -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Simulator:
    """``leadferry simulate leadexec`` in a subprocess, until the block ends."""

    def __init__(self, leads: int) -> None:
        self.leads = leads
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"

    def __enter__(self) -> Simulator:
        cmd = [
            str(BIN / "leadferry"), "simulate", "leadexec", "--port", str(self.port),
            "--leads", str(self.leads), "--days", str(SIM_DAYS), "--seed", "1",
            "--api-key", API_KEY,
        ]  # fmt: skip
        env = child_env(Path(tempfile.gettempdir()))
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 60
        with httpx2.Client(timeout=5) as client:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the simulator exited: {self.proc.stderr.read().decode()}")
                try:
                    if client.get(self.url + "__health").status_code == 200:
                        break
                except httpx2.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the simulator did not answer within 60 s")
                time.sleep(0.1)
            # Warm its window cache the same way for every contender: one lead, whole window.
            client.get(self.url, params={"key": API_KEY, "lid": LID, "take": 1})
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def window_days() -> tuple[dt.date, dt.date]:
    """First and last day (included) of a window holding every simulated lead."""
    today = dt.datetime.now(ZoneInfo(SIM_ZONE)).date()
    return today - dt.timedelta(days=SIM_DAYS + 1), today


PYCACHE = Path(tempfile.gettempdir()) / "leadferry-bench-pycache"


def child_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of every child: its own home, and a bytecode cache.

    An installed package has compiled bytecode; a sandbox with PYTHONDONTWRITEBYTECODE=1 and no
    caches recompiles every module in every process (seconds per start). The children keep their
    bytecode under a temporary prefix instead, warmed up before anything is measured.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LEADFERRY_", "DLT_")) and k != "PYTHONDONTWRITEBYTECODE"
    }
    env |= {
        "LEADFERRY_HOME": str(home),
        "LEADFERRY_API_KEY": API_KEY,
        "RUNTIME__DLTHUB_TELEMETRY": "false",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPYCACHEPREFIX": str(PYCACHE),
    }
    return env | (extra or {})


# -- contenders ----------------------------------------------------------------------------------


def run_raw(sim: Simulator, rows: int, home: Path) -> Result:
    cmd = [sys.executable, __file__, "--child", "raw", "--url", sim.url, "--leads", str(rows)]
    run = measure(cmd, child_env(home), "raw fetch", sim.proc.pid)
    got = json.loads(run.stdout.strip().splitlines()[-1])["rows"]
    if got != rows:
        raise RuntimeError(f"raw fetch got {got:,} leads, expected {rows:,}")
    return Result("raw fetch", rows, run.seconds, run.peak_mb, run.cpu, run.server_cpu)


def run_leadferry(
    sim: Simulator, rows: int, home: Path, extra_env: dict[str, str], label: str = "leadferry"
) -> Result:
    env = child_env(home, extra_env)
    first, last = window_days()
    cli = str(BIN / "leadferry")
    setup = [
        [cli, "accounts", "add", "sim", "-c", "leadexec", "--set", f"base_url={sim.url}"],
        [cli, "datasets", "create", "bench", "-a", "sim", "-r", "leads", "--param", f"lid={LID}",
         "--from", first.isoformat(), "--to", last.isoformat()],
    ]  # fmt: skip
    for cmd in setup:
        subprocess.run(cmd, env=env, check=True, capture_output=True)
    run = measure([cli, "run", "bench"], env, label, sim.proc.pid)
    loaded = warehouse_rows(home)
    if loaded != rows:
        raise RuntimeError(f"{label}: the warehouse holds {loaded:,} leads, expected {rows:,}")
    return Result(label, rows, run.seconds, run.peak_mb, run.cpu, run.server_cpu)


def warehouse_rows(home: Path) -> int:
    code = (
        "import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=True); "
        "print(con.execute('select count(*) from bench.leads').fetchone()[0])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(home / "warehouse.duckdb")],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(out.stdout.strip())


def run_dlt_default(sim: Simulator, rows: int, home: Path) -> Result:
    cmd = [sys.executable, __file__, "--child", "dlt", "--url", sim.url, "--leads", str(rows)]
    run = measure(cmd, child_env(home), "dlt default", sim.proc.pid)
    got = json.loads(run.stdout.strip().splitlines()[-1])["rows"]
    if got != rows:
        raise RuntimeError(f"dlt default loaded {got:,} leads, expected {rows:,}")
    return Result("dlt default", rows, run.seconds, run.peak_mb, run.cpu, run.server_cpu)


# -- the children --------------------------------------------------------------------------------


def leadexec_connector(url: str) -> LeadExecConnector:
    """leadferry's LeadExec connector for the simulator at *url*, with the HTTP client runs
    make (:func:`leadferry.run.client.new_client`)."""
    from leadferry.connectors.base import Credentials
    from leadferry.connectors.leadexec import LeadExecConnector
    from leadferry.run.client import new_client
    from leadferry.settings import Settings

    client = new_client(Settings(concurrency=CONCURRENCY))
    return LeadExecConnector(client, Credentials("bench", {"api_key": API_KEY, "base_url": url}))


def simulator_window() -> DateWindow:
    """The window of :func:`window_days`, as a connector takes it."""
    from leadferry.dates import DateWindow

    first, last = window_days()
    return DateWindow.of_days(first, last + dt.timedelta(days=1), ZoneInfo(SIM_ZONE))


def _requests(url: str) -> tuple[httpx2.Client, object]:
    """An HTTP client and a function page -> the very request leadferry sends for that page."""
    connector = leadexec_connector(url)
    report, window = connector.report("leads"), simulator_window()
    return connector.client, lambda page: connector.page_request(report, {"lid": LID}, window, page)


def child_raw(url: str, limit: int) -> None:
    """Download every page as leadferry would, read the bodies and drop them."""
    client, request = _requests(url)
    sent = re.compile(rb'sentcount="(\d+)"')
    total_re = re.compile(rb'querytotal="(\d+)"')

    def fetch(page: int) -> tuple[int, int]:
        response = client.send(request(page), stream=True)
        response.raise_for_status()
        head, total = b"", 0
        for chunk in response.iter_bytes():
            if len(head) < 200:
                head += chunk[:200]
            total += len(chunk)
        response.close()
        found = total_re.search(head)
        return int(sent.search(head).group(1)), int(found.group(1)) if found else 0

    rows, total = fetch(0)
    pages = -(-min(total, limit) // PAGE)
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        rows += sum(sent for sent, _ in pool.map(fetch, range(1, pages)))
    print(json.dumps({"rows": rows}))


def child_dlt(url: str, limit: int, home: Path) -> None:
    """dlt's default path: its REST API source, JSON dict rows, its normaliser, DuckDB."""
    import dlt
    from dlt.sources.rest_api import rest_api_source

    _, request = _requests(url)
    params = {k: v for k, v in request(0).url.params.items() if k.lower() not in ("skip", "take")}
    source = rest_api_source(
        {
            "client": {"base_url": url, "headers": {"Accept": "application/json"}},
            "resource_defaults": {"write_disposition": "replace"},
            "resources": [
                {
                    "name": "leads",
                    "endpoint": {
                        "path": "",
                        "params": params,
                        "data_selector": "Leads",
                        "paginator": {
                            "type": "offset",
                            "limit": PAGE,
                            "offset_param": "skip",
                            "limit_param": "take",
                            "total_path": "QueryTotal",
                            "maximum_offset": limit,
                        },
                    },
                }
            ],
        }
    )
    pipeline = dlt.pipeline(
        pipeline_name="dlt_default",
        destination=dlt.destinations.duckdb(str(home / "dlt.duckdb")),
        dataset_name="dlt_default",
        pipelines_dir=str(home / "pipelines"),
    )
    pipeline.run(source).raise_on_failed_jobs()
    rows = pipeline.last_trace.last_normalize_info.row_counts.get("leads", 0)
    print(json.dumps({"rows": rows}))


# -- the report ----------------------------------------------------------------------------------


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    ram = psutil.virtual_memory().total / 2**30
    return (
        f"{os.cpu_count()} cores ({model}), {ram:.1f} GiB RAM, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report(big: Result, raw: Result, dlt_default: Result | None, small: Result | None) -> None:
    print()
    print(
        f"{'contender':<20} {'rows':>10} {'seconds':>8} {'rows/s':>9} {'peak RSS MB':>12} "
        f"{'CPU s':>7} {'simulator CPU s':>16}"
    )
    for r in [raw, big, *(r for r in (small, dlt_default) if r)]:
        print(
            f"{r.name:<20} {r.rows:>10,} {r.seconds:>8.1f} {r.rate:>9,.0f} {r.peak_mb:>12.0f} "
            f"{r.cpu:>7.1f} {r.server_cpu:>16.1f}"
        )
    print()
    share = big.rate / raw.rate
    print(f"leadferry / raw fetch    {share:6.2f}   target >= {TARGET_RAW:.2f}   "
          f"{verdict(share >= TARGET_RAW)}")  # fmt: skip
    if dlt_default:
        speedup = big.rate / dlt_default.rate
        note = f"(rows/s: dlt ran {dlt_default.rows:,} leads)"
        print(f"leadferry / dlt default  {speedup:6.1f}x  target >= {TARGET_DLT:.0f}x    "
              f"{verdict(speedup >= TARGET_DLT)}   {note}")  # fmt: skip
    print(f"leadferry peak RSS       {big.peak_mb:6.0f} MB  target < {TARGET_RSS_MB:.0f} MB  "
          f"{verdict(big.peak_mb < TARGET_RSS_MB)}   (at {big.rows:,} leads)")  # fmt: skip
    if small:
        ratio = big.peak_mb / small.peak_mb
        ok = abs(ratio - 1) <= TARGET_RSS_SPREAD
        print(f"peak RSS {big.rows:,} / {small.rows:,}   {ratio:6.2f}   "
              f"target within {TARGET_RSS_SPREAD:.0%}   {verdict(ok)}   "
              f"({small.peak_mb:.0f} MB -> {big.peak_mb:.0f} MB)")  # fmt: skip


def parse_env(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--env wants KEY=VALUE, got {pair!r}")
        env[key] = value
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1_000_000, help="N, leads to sync.")
    parser.add_argument("--dlt-leads", type=int, default=50_000, help="Leads for dlt's path.")
    parser.add_argument(
        "--small", type=int, default=100_000, help="Second leadferry size, for memory (0: skip)."
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="Runs of raw and of leadferry; the best counts."
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE",
        help="Extra environment for the leadferry runs (to try settings; shown in the output).",
    )  # fmt: skip
    parser.add_argument("--child", choices=("raw", "dlt"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child == "raw":
        child_raw(args.url, args.leads)
        return
    if args.child == "dlt":
        child_dlt(args.url, args.leads, Path(os.environ["LEADFERRY_HOME"]))
        return

    extra = parse_env(args.env)
    print(f"machine: {machine()}")
    busy = psutil.cpu_percent(interval=1.0)
    if busy > 10:
        print(f"warning: the CPU is {busy:.0f}% busy before the benchmark; figures will be low")
    print(f"simulator: {args.leads:,} leads over {SIM_DAYS} days; pages of {PAGE}, "
          f"{CONCURRENCY} at a time")  # fmt: skip
    if extra:
        print(f"leadferry runs with extra environment: {extra}")
    scratch = Path(tempfile.mkdtemp(prefix="leadferry-bench-"))
    homes = (scratch / f"home{i}" for i in range(1_000))

    def best_of(run: object) -> Result:
        results = [run(next(homes)) for _ in range(args.repeat)]  # type: ignore[operator]
        best = min(results, key=lambda r: r.seconds)
        if len(results) > 1:
            rates = ", ".join(f"{r.rate:,.0f}" for r in results)
            print(f"  {best.name}: rows/s over {len(results)} runs: {rates} (the best counts)")
        return best

    try:
        print("warming up (bytecode, and a check that every contender works) ...", flush=True)
        with Simulator(2 * PAGE) as sim:
            run_raw(sim, 2 * PAGE, next(homes))
            run_leadferry(sim, 2 * PAGE, next(homes), extra)
            run_dlt_default(sim, PAGE, next(homes))
        small = None
        if args.small:
            with Simulator(args.small) as sim:
                print(f"leadferry at {args.small:,} leads ...", flush=True)
                small = run_leadferry(sim, args.small, next(homes), extra, "leadferry (small N)")
        with Simulator(args.leads) as sim:
            print(f"raw fetch of {args.leads:,} leads ...", flush=True)
            raw = best_of(lambda home: run_raw(sim, args.leads, home))
            print(f"leadferry, {args.leads:,} leads ...", flush=True)
            big = best_of(lambda home: run_leadferry(sim, args.leads, home, extra))
            dlt_default = None
            if args.dlt_leads:
                rows = min(args.dlt_leads, args.leads)
                print(f"dlt default path, {rows:,} leads ...", flush=True)
                dlt_default = run_dlt_default(sim, rows, next(homes))
        print(f"\ncommand: uv run python bench/bench_sync.py {shlex.join(sys.argv[1:])}".rstrip())
        report(big, raw, dlt_default, small)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
