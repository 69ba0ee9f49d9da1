"""How many leads per second the LeadExec simulator serves, side by side with rendering alone.

    uv run python bench/bench_simulator.py                 # 1,000,000 leads, XML, all three ways
    uv run python bench/bench_simulator.py --leads 200000 --format json --only loopback

Three rows: ``render`` (the generator alone, the ceiling), ``in-process`` (through starlette's
TestClient) and ``loopback`` (uvicorn in a subprocess on 127.0.0.1, one httpx2 client fetching
pages of 1,000 one after another). Each row prints leads/s and its ratio to ``render``.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime

import httpx2
from starlette.testclient import TestClient

from leadferry.simulators import leadexec

NOW = datetime(2026, 1, 31, 12, tzinfo=UTC)
PAGE = 1000

SERVER = """
import sys
from datetime import datetime
import uvicorn
from leadferry.simulators import leadexec
settings = leadexec.Settings(leads=int(sys.argv[1]), api_key=["bench"])
app = leadexec.create_app(settings, datetime.fromisoformat(sys.argv[3]))
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
"""


def fetch_all(client: httpx2.Client, leads: int, fmt: str) -> int:
    """Fetch every lead in pages of 1,000; return how many came back."""
    headers = {"Accept": "application/json"} if fmt == "json" else {}
    got = 0
    for skip in range(0, leads, PAGE):
        response = client.get(
            "/", params={"key": "bench", "lid": 1, "skip": skip, "take": PAGE}, headers=headers
        )
        response.raise_for_status()
        body = response.content
        got += body.count(b"<Lead>") if fmt == "xml" else body.count(b'{"UID":')
    return got


def bench_render(leads: int, fmt: str) -> float:
    sim = leadexec.Simulation(leadexec.Settings(leads=leads), NOW)
    started = time.perf_counter()
    for _ in sim.render(1, range(leads), fmt):
        pass
    return leads / (time.perf_counter() - started)


def bench_in_process(leads: int, fmt: str) -> float:
    app = leadexec.create_app(leadexec.Settings(leads=leads, api_key=["bench"]), NOW)
    with TestClient(app) as client:
        started = time.perf_counter()
        got = fetch_all(client, leads, fmt)
    assert got == leads, got
    return leads / (time.perf_counter() - started)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bench_loopback(leads: int, fmt: str) -> float:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(leads), str(port), NOW.isoformat()]
    )
    try:
        with httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if client.get("/__health").status_code == 200:
                        break
                except httpx2.TransportError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            started = time.perf_counter()
            got = fetch_all(client, leads, fmt)
            elapsed = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(10)
    assert got == leads, got
    return leads / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--format", choices=("xml", "json"), default="xml")
    parser.add_argument("--only", choices=("render", "in-process", "loopback"))
    parser.add_argument("--repeat", type=int, default=1, help="Runs per row; the best one counts.")
    args = parser.parse_args()
    runs = {"render": bench_render, "in-process": bench_in_process, "loopback": bench_loopback}
    print(f"{args.leads:,} leads as {args.format}, pages of {PAGE}, best of {args.repeat}")
    baseline = None
    for name, run in runs.items():
        if args.only and name != args.only:
            continue
        rate = max(run(args.leads, args.format) for _ in range(args.repeat))
        ratio = f"  ({rate / baseline:.2f}x render)" if baseline else ""
        baseline = baseline or (rate if name == "render" else None)
        print(f"{name:>11}: {rate:>9,.0f} leads/s{ratio}")


if __name__ == "__main__":
    main()
