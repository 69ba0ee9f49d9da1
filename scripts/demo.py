"""`make demo` and `make demo-ui`: the main job on the embedded default, start to finish.

Starts every installed vendor simulator on loopback (the plugin registry's, so a connector
package brings its own), adds an account per simulator, creates a dataset for every report,
runs them into the DuckDB warehouse and prints what each run loaded. Everything lives in
.leadferry-demo/ (made anew each time; ``LEADFERRY_DEMO_HOME`` puts it elsewhere).

Every command is printed before it runs, and what is printed is what runs (through bash, with
.venv/bin on the PATH and LEADFERRY_HOME exported, as after the two setup lines it prints first):
pasted into a shell, each works. With ``--serve`` (``make demo-ui``) the simulators stay up, a
demo admin is added with a random password, and ``leadferry serve`` runs until Ctrl-C.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2
from rich.console import Console
from rich.table import Table

from leadferry.connectors import get_connector
from leadferry.simulators import SIMULATORS

ROOT = Path(__file__).resolve().parent.parent
HOME = Path(os.environ.get("LEADFERRY_DEMO_HOME") or ROOT / ".leadferry-demo").resolve()
# Commands are printed whole on one line (soft wrap), however narrow the terminal: a command
# that wrapped mid-flag would not paste.
console = Console(highlight=False, soft_wrap=True)
SHELL_ENV = os.environ | {
    "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
    "LEADFERRY_HOME": str(HOME),
}
WAREHOUSE = (HOME.relative_to(ROOT) if HOME.is_relative_to(ROOT) else HOME) / "warehouse.duckdb"
SETUP = (
    "source .venv/bin/activate",
    "export LEADFERRY_HOME="
    + (f"$PWD/{HOME.relative_to(ROOT)}" if HOME.is_relative_to(ROOT) else shlex.quote(str(HOME))),
)
DATED_METHODS = ("replace", "merge", "partition")
"""Dated reports take these in turn, so the demo shows each; undated counts are appended."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def shell(command: str, *, capture: bool = False) -> str:
    """Print *command* as a user would type it, then run exactly that through bash."""
    console.print(f"[dim]$ {command}[/dim]")
    result = subprocess.run(
        ["bash", "-c", command],
        cwd=ROOT,
        env=SHELL_ENV | {"COLUMNS": "140"},
        text=True,
        capture_output=capture,
        check=False,
    )
    if result.returncode != 0:
        sys.exit(f"demo: `{command}` failed:\n{result.stderr or ''}")
    return result.stdout or ""


def wait_until_up(url: str) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx2.get(url + "/__health", timeout=1).status_code == 200:
                return
        except httpx2.TransportError:
            time.sleep(0.1)
    sys.exit(f"demo: the simulator at {url} did not start")


def start_simulator(name: str) -> tuple[subprocess.Popen[bytes], str]:
    """``leadferry simulate NAME`` with its default settings on a free port, and its URL."""
    port = free_port()
    command = f"leadferry simulate {name} --port {port}"
    console.print(f"[dim]$ {command} &[/dim]")
    server = subprocess.Popen(
        ["bash", "-c", f"exec {command}"], cwd=ROOT, env=SHELL_ENV, stdout=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url)
    except SystemExit:
        server.terminate()
        raise
    return server, url


def add_account(name: str, url: str) -> dict[str, dict[str, str]]:
    """Add the account that reads simulator *name* at *url*; its secrets go through stdin."""
    module = SIMULATORS[name]
    simulated = module.account(module.Settings(), url)
    connector = get_connector(name)
    secret_ids = [f.id for f in connector.fields if f.secret and f.id in simulated.fields]
    flags = " ".join(
        f"--set {shlex.quote(f'{key}={value}')}"
        for key, value in simulated.fields.items()
        if key not in secret_ids
    )
    secrets_in = " ".join(shlex.quote(simulated.fields[key]) for key in secret_ids)
    feed = f"printf '%s\\n' {secrets_in} | " if len(secret_ids) > 1 else f"echo {secrets_in} | "
    shell(f"{feed if secret_ids else ''}leadferry accounts add {name} --connector {name} {flags}")
    shell(f"leadferry accounts test {name}")
    return simulated.params


def create_datasets(name: str, params: dict[str, dict[str, str]]) -> list[str]:
    """One dataset per report of connector *name*; their names."""
    created = []
    dated = 0
    for report in get_connector(name).reports:
        dataset = f"{name}_{report.slug}"
        flags = [f"--param {key}={value}" for key, value in params.get(report.slug, {}).items()]
        if report.dated:
            method = DATED_METHODS[dated % len(DATED_METHODS)]
            dated += 1
            flags.append("--days-back 7")
        else:
            method = "append"
        shell(
            f"leadferry datasets create {dataset} --account {name} --report {report.slug} "
            + " ".join([*flags, f"--update {method}"])
        )
        created.append(dataset)
    return created


def summarize(datasets: list[str]) -> None:
    printed = shell("leadferry datasets list --json", capture=True)
    listed = {dataset["name"]: dataset for dataset in json.loads(printed)}
    summary = Table(title=f"what the demo loaded into {WAREHOUSE}")
    for column in ("dataset (connector_report)", "update", "window", "rows loaded", "seconds"):
        summary.add_column(column)
    for name in datasets:
        dataset, last = listed[name], listed[name]["last_run"]
        summary.add_row(
            name,
            dataset["update_method"],
            last["window"] or "(no dates)",
            ", ".join(f"{table}: {count:,}" for table, count in last["rows"].items()),
            f"{last['seconds']:.1f}",
        )
    # A table folds its cells to fit; at least 140 columns keep each row on one line.
    Console(highlight=False, width=max(140, console.width)).print(summary)


def serve_until_interrupted() -> None:
    """Add a demo admin with a random password and run ``leadferry serve`` until Ctrl-C."""
    password = secrets.token_hex(8)
    shell(f"echo {password} | leadferry users add demo --role admin")
    port = free_port()
    console.print(
        f"\nThe web Data Center: http://127.0.0.1:{port}/ (user demo, password {password}).\n"
        "The simulators stay up while it runs, so Run Now works. Ctrl-C stops everything."
    )
    command = f"leadferry serve --port {port}"
    console.print(f"[dim]$ {command}[/dim]")
    server = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=ROOT, env=SHELL_ENV)
    try:
        server.wait()
    except KeyboardInterrupt:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    keep_serving = "--serve" in sys.argv[1:]
    # Ctrl-C ends the demo even when started from a shell that ignores it for background jobs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    shutil.rmtree(HOME, ignore_errors=True)
    console.print("Every command below works pasted into a shell at the top of the clone, after:")
    for line in SETUP:
        console.print(f"[dim]$ {line}[/dim]")
    servers = []
    try:
        datasets = []
        for name in SIMULATORS:
            server, url = start_simulator(name)
            servers.append(server)
            datasets += create_datasets(name, add_account(name, url))
        shell("leadferry run --all")
        summarize(datasets)
        shell(
            'leadferry query "select report_day, count(*) as leads from leadexec_leads.leads '
            'group by 1 order by 1 desc limit 3"'
        )
        console.print(f"\nThe warehouse is plain DuckDB: {WAREHOUSE}")
        if keep_serving:
            serve_until_interrupted()
            return
        console.print(
            "The simulators have stopped, so these datasets cannot run again: `make demo-ui` "
            "runs the demo with them kept up, and the web Data Center. To look around here:"
        )
        for line in (*SETUP, "leadferry datasets list", f"leadferry history {datasets[0]}"):
            console.print(f"[dim]$ {line}[/dim]")
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
