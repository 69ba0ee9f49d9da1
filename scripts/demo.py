"""`make demo`: the main job on the embedded default, start to finish, with real processes.

Starts the vendor simulators on loopback, adds an account per connector, creates datasets,
runs them into the DuckDB warehouse and prints what each run loaded. Everything lives in
.leadferry-demo/ (made anew each time); every command it runs is printed, so you can replay it.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
HOME = ROOT / ".leadferry-demo"
console = Console(highlight=False, width=140)

# One simulator per connector: how to start it, and the account that reaches it.
SIMULATORS = {
    "leadexec": {
        "options": [
            "--leads",
            "60000",
            "--days",
            "30",
            "--lid",
            "271",
            "--lid",
            "272",
            "--api-key",
            "demo-key",
        ],
        "secrets": {"LEADFERRY_API_KEY": "demo-key"},
        "settings": [],
        "account": "clickpoint",
    },
    "salesexec": {
        "options": ["--leads", "20000", "--days", "30", "--users", "demo:demo-pass"],
        "secrets": {"LEADFERRY_PASSWORD": "demo-pass"},
        "settings": ["username=demo"],
        "account": "salesexec",
    },
    "avidtrak": {
        "options": [
            "--calls",
            "20000",
            "--days",
            "30",
            "--pin",
            "demo-pin",
            "--timezone",
            "America/Chicago",
        ],
        "secrets": {"LEADFERRY_PIN_CODE": "demo-pin"},
        "settings": ["timezone=America/Chicago"],
        "account": "avidtrak",
        "path": "reseller/",  # a white-label base URL with a path
    },
}
# name, connector, report, params, date flags, update method: one dataset per report.
DATASETS = [
    ("leads_last_week", "leadexec", "leads", ["lid=271"], ["--days-back", "7"], "replace"),
    (
        "leads_by_day",
        "leadexec",
        "leads",
        ["lid=272"],
        ["--from-days-back", "30", "--to-days-back", "0"],
        "partition",
    ),
    ("sales_actions", "salesexec", "all_actions", [], ["--days-back", "7"], "merge"),
    ("sales_leads", "salesexec", "all_leads", [], ["--days-back", "7"], "merge"),
    (
        "sales_branch_counts",
        "salesexec",
        "branch_lead_count",
        [],
        ["--days-back", "7"],
        "partition",
    ),
    (
        "sales_closed",
        "salesexec",
        "closed_leads",
        ["lead_type_uid=44"],
        ["--days-back", "30"],
        "replace",
    ),
    ("sales_awaiting_import", "salesexec", "leads_awaiting_import_count", [], [], "append"),
    ("sales_updated", "salesexec", "last_updated_leads", [], [], "merge"),
    ("calls_geo", "avidtrak", "geographical_data", [], ["--days-back", "7"], "partition"),
    (
        "calls_offline",
        "avidtrak",
        "offline_portal_calls",
        [],
        ["--from", "2026-11-01", "--to-days-back", "1"],
        "merge",
    ),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def leadferry(*args: str, env: dict[str, str] | None = None, capture: bool = False) -> str:
    console.print(f"[dim]$ leadferry {shlex.join(args)}[/dim]")
    result = subprocess.run(
        [shutil.which("leadferry") or "leadferry", *args],
        env=os.environ | {"COLUMNS": "140"} | (env or {}),
        text=True,
        capture_output=capture,
        check=False,
    )
    if result.returncode != 0:
        sys.exit(f"demo: `leadferry {shlex.join(args)}` failed:\n{result.stderr or ''}")
    return result.stdout or ""


def wait_until_up(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx2.get(url + "__health", timeout=1).status_code == 200:
                return
        except httpx2.TransportError:
            time.sleep(0.1)
    sys.exit(f"demo: the simulator at {url} did not start")


def main() -> None:
    shutil.rmtree(HOME, ignore_errors=True)
    os.environ["LEADFERRY_HOME"] = str(HOME)
    servers = []
    try:
        for connector, sim in SIMULATORS.items():
            port = free_port()
            root = f"http://127.0.0.1:{port}/"
            url = root + sim.get("path", "")
            command = ["simulate", connector, "--port", str(port), *sim["options"]]
            console.print(f"[dim]$ leadferry {shlex.join(command)} &[/dim]")
            executable = shutil.which("leadferry") or "leadferry"
            servers.append(subprocess.Popen([executable, *command], stdout=subprocess.DEVNULL))
            wait_until_up(root)
            fields = [f"base_url={url}", *sim["settings"]]
            flags = [arg for field in fields for arg in ("--set", field)]
            account = sim["account"]
            leadferry("accounts", "add", account, "--connector", connector, *flags,
                      env=sim["secrets"])  # fmt: skip
            leadferry("accounts", "test", sim["account"])
        for name, connector, report, params, dates, method in DATASETS:
            flags = [arg for p in params for arg in ("--param", p)]
            leadferry(
                "datasets",
                "create",
                name,
                "--account",
                SIMULATORS[connector]["account"],
                "--report",
                report,
                *flags,
                *dates,
                "--update",
                method,
            )
        for name, *_ in DATASETS:
            leadferry("run", name)
        summary = Table(title="what the demo loaded into " + str(HOME / "warehouse.duckdb"))
        for column in ("dataset", "report", "update", "window", "rows", "seconds"):
            summary.add_column(column)
        listed = {
            d["name"]: d for d in json.loads(leadferry("datasets", "list", "--json", capture=True))
        }
        for name, connector, report, _, _, method in DATASETS:
            last = listed[name]["last_run"]
            summary.add_row(
                name,
                f"{connector}/{report}",
                method,
                last["window"] or "(no dates)",
                ", ".join(f"{t}: {n:,}" for t, n in last["rows"].items()),
                f"{last['seconds']:.1f}",
            )
        console.print(summary)
        leadferry(
            "query",
            "select report_day, count(*) as leads from leads_by_day.leads "
            "group by 1 order by 1 desc limit 5",
        )
        console.print(f"\nThe warehouse is plain DuckDB: duckdb {HOME / 'warehouse.duckdb'}")
        console.print(
            f"Browse it in the web Data Center: export LEADFERRY_HOME={HOME}; "
            "uv run leadferry users add me --role admin; uv run leadferry serve",
            highlight=False,
        )
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
