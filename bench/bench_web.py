"""The Data Center at 2,000 datasets (issue 12): page and API list, first page, a search, a
filter and a sort, each against the whole list unpaginated in the same run.

A temporary home gets ``--datasets`` datasets over four accounts of two connectors, each with
``--runs`` runs of history (a few failed), and a warehouse holding every dataset's tables. A real
``leadferry serve`` answers; requests go one at a time over loopback and each is timed from
send to last byte. The p50/p95 of ``--requests`` requests per case are printed against the
target (p95 < 150 ms), and each paginated case against the unpaginated list.

    uv run python bench/bench_web.py
    uv run python bench/bench_web.py --datasets 2000 --runs 10 --requests 40

``--before DIR`` also serves the same home with the code of another checkout's ``src`` (say
``git archive BASE src | tar -x -C /tmp/base``) and times each case on both servers, one right
after the other, so a before and an after share the machine's load.

Targets are printed as PASS/FAIL; nothing here asserts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import duckdb
import httpx2
from sqlalchemy import create_engine, insert, update
from sqlalchemy.orm import Session

from leadferry.schedule import Schedule
from leadferry.settings import Settings
from leadferry.store import DatasetSpec, Store, generate_key
from leadferry.store.orm import DatasetRow, RunRow

TARGET_P95_MS = 150.0
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
ACCOUNTS = (
    ("east", "leadexec", "leads", {"lid": 271}),
    ("west", "leadexec", "leads", {"lid": 314}),
    ("north", "leadexec", "leads", {"lid": 42}),
    ("calls", "avidtrak", "geographical_data", {}),
)
MAIN_TABLES = {"leads": "leads", "geographical_data": "geographical_data"}
PASSWORD = "bench-password-42"
HOURLY = Schedule.from_flags(every="1h", tz="UTC").as_json()


def fill(settings: Settings, datasets: int, runs: int) -> None:
    """*datasets* datasets spread over :data:`ACCOUNTS`, *runs* runs each, and their tables."""
    with Store.open(settings) as store:
        for account, connector, _report, _params in ACCOUNTS:
            store.create_account(account, connector, {}, {"api_key": "bench"})
        for i in range(datasets):
            account, _connector, report, params = ACCOUNTS[i % len(ACCOUNTS)]
            store.create_dataset(
                DatasetSpec(
                    name=f"{report}_{i:05d}",
                    account=account,
                    report=report,
                    params=params,
                    description=f"{account} campaign {i % 97}",
                    schedule=HOURLY if i % 3 else None,
                )
            )
            if i % 3:
                # Next runs a day away: serve must not start them while it is measured.
                later = NOW + dt.timedelta(days=1, minutes=i)
                store.set_state(f"{report}_{i:05d}", next_run_at=later)
        store.add_user("bench", PASSWORD, "viewer")
    engine = create_engine(settings.metadata_url)
    history = []
    summaries = []
    for dataset_id in range(1, datasets + 1):
        summary: dict[str, object] = {"id": dataset_id, "last_success_at": None}
        for n in range(runs):
            started = NOW - dt.timedelta(hours=runs - n, minutes=dataset_id % 60)
            failed = (dataset_id + n) % 7 == 0
            run = {
                "id": len(history) + 1,
                "dataset_id": dataset_id,
                "trigger": "scheduled" if n % 2 else "manual",
                "status": "failed" if failed else "success",
                "started_at": started,
                "finished_at": started + dt.timedelta(seconds=20),
                "rows": {} if failed else {"leads": 100 + dataset_id, "leads__sends": 5},
                "error": "the vendor answered 503" if failed else None,
                "schema_changes": [],
            }
            history.append(run)
            # What the store keeps on the dataset's row as its runs start and finish.
            summary |= {
                "last_run_id": run["id"],
                "last_run_status": run["status"],
                "last_run_finished_at": run["finished_at"],
            }
            if not failed:
                summary |= {"last_success_at": run["finished_at"], "table_rows": 99 + dataset_id}
        summaries.append({"table_rows": None} | summary)
    with Session(engine) as session, session.begin():
        session.execute(insert(RunRow), history)
        session.execute(update(DatasetRow), summaries)  # by primary key
    engine.dispose()
    with duckdb.connect(str(settings.warehouse_path)) as warehouse:
        for i in range(datasets):
            _account, _connector, report, _params = ACCOUNTS[i % len(ACCOUNTS)]
            schema = f"{report}_{i:05d}"
            warehouse.execute(f'create schema "{schema}"')
            warehouse.execute(
                f'create table "{schema}"."{MAIN_TABLES[report]}" as '
                f"select range as uid from range({100 + i})"
            )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU the process *pid* has used (Linux): what a request costs the server
    whatever else loads the machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(server: Server, path: str, requests: int) -> tuple[float, float, float, int]:
    """p50 and p95 in milliseconds of *requests* GETs of *path*, the server's CPU
    milliseconds per request, and the answer's size."""
    client = server.client
    client.get(path).raise_for_status()  # warm: templates compiled, caches filled
    times = []
    size = 0
    cpu = cpu_seconds(server.process.pid)
    for _ in range(requests):
        start = time.perf_counter()
        answer = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        answer.raise_for_status()
        size = len(answer.content)
    cpu_ms = (cpu_seconds(server.process.pid) - cpu) * 1000 / requests
    times.sort()
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    return statistics.median(times), p95, cpu_ms, size


CASES = (
    ("first page", ""),
    ("search", "q=campaign+5"),
    ("filter: account", "account=west"),
    ("filter: failed", "status=failed"),
    ("sort: last success", "sort=-last_success"),
    ("sort: rows", "sort=-rows"),
)


def serve(settings: Settings, port: int, source: Path | None = None) -> subprocess.Popen[bytes]:
    """`leadferry serve` on *port* for the home of *settings*, once it answers; with
    *source*, the leadferry package of that ``src`` folder instead of this checkout's."""
    env = os.environ | {
        "LEADFERRY_HOME": str(settings.home),
        "LEADFERRY_SECRET_KEY": settings.secret_key.get_secret_value(),  # type: ignore[union-attr]
    }
    if source is not None:
        env["PYTHONPATH"] = str(source.resolve())
    leadferry = Path(sys.executable).with_name("leadferry")
    process = subprocess.Popen(
        [str(leadferry), "serve", "--port", str(port), "--tick", "60"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx2.get(f"http://127.0.0.1:{port}/login", timeout=1)
            return process
        except httpx2.TransportError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit("leadferry serve did not answer within 60 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=10, help="Runs of history per dataset.")
    parser.add_argument("--requests", type=int, default=40, help="Timed requests per case.")
    parser.add_argument(
        "--before", type=Path, help="Another checkout's src folder, timed beside this one."
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="leadferry-bench-web-") as folder:
        settings = Settings(home=Path(folder), secret_key=generate_key())
        started = time.perf_counter()
        fill(settings, args.datasets, args.runs)
        print(f"{args.datasets:,} datasets, {args.datasets * args.runs:,} runs, their tables: "
              f"{time.perf_counter() - started:.0f} s to make")  # fmt: skip
        with Store.open(settings) as store:
            _token, plain = store.create_token("bench", "bench")
        sources = {"this": None} | ({"before": args.before} if args.before else {})
        servers: dict[str, Server] = {}
        try:
            for code, source in sources.items():
                port = free_port()
                process = serve(settings, port, source)
                client = httpx2.Client(
                    base_url=f"http://127.0.0.1:{port}",
                    headers={"Authorization": f"Bearer {plain}"},
                    timeout=120,
                )
                servers[code] = Server(client, process)
            report(servers, args.datasets, args.requests)
        finally:
            for server in servers.values():
                server.client.close()
                server.process.terminate()
                server.process.wait(timeout=30)


class Server(NamedTuple):
    """A `leadferry serve` being measured and the client that asks it."""

    client: httpx2.Client
    process: subprocess.Popen[bytes]


def report(servers: dict[str, Server], datasets: int, requests: int) -> None:
    """Time every case in the page and the API, and the unpaginated lists, on each server
    (one after the other for each case), and print them with the server's CPU per request
    and the load average."""
    for code, server in servers.items():
        start = time.perf_counter()
        server.client.get("/").raise_for_status()
        print(f"{code}: first page view after start (row counts not read yet): "
              f"{(time.perf_counter() - start) * 1000:.0f} ms")  # fmt: skip
    print(f"load average before: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    print(f"\n{'case':<22} {'where':<5} {'code':<6} {'p50 ms':>8} {'p95 ms':>8} {'CPU ms':>8} "
          f"{'KB':>7}  target p95 < 150 ms")  # fmt: skip
    whole = []
    unpaged = (("page", f"/?size={datasets}"), ("API", f"/api/v1/datasets?limit={datasets}"))
    for where, path in unpaged:
        for code, server in servers.items():
            whole.append((where, code, timed(server, path, max(3, requests // 8))))
    verdicts: dict[str, list[str]] = {code: [] for code in servers}
    for name, query in CASES:
        for where, path in (("page", f"/?{query}"), ("API", f"/api/v1/datasets?limit=50&{query}")):
            for code, server in servers.items():
                p50, p95, cpu, size = timed(server, path, requests)
                verdict = "PASS" if p95 < TARGET_P95_MS else "FAIL"
                verdicts[code].append(verdict)
                print(f"{name:<22} {where:<5} {code:<6} {p50:8.1f} {p95:8.1f} {cpu:8.1f} "
                      f"{size / 1024:7.1f}  {verdict}")  # fmt: skip
    print()
    for where, code, (p50, p95, cpu, size) in whole:
        print(f"{'baseline: all on one':<22} {where:<5} {code:<6} {p50:8.1f} {p95:8.1f} {cpu:8.1f} "
              f"{size / 1024:7.1f}")  # fmt: skip
    print(f"load average after: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    for code, found in verdicts.items():
        print(f"{code}: {found.count('PASS')} of {len(found)} cases meet the target")


if __name__ == "__main__":
    main()
