"""A `leadferry` process loads what its command uses: the help lists commands without importing
them, a run loads no web server, task queue or template engine, and a command that prints JSON,
or plain lines to a pipe, loads no rich; one that reads loads no dlt."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.e2e.conftest import account_in_store

pytestmark = pytest.mark.e2e

EXITING = """
import atexit, json, sys
def report():
    arrow = sys.modules.get("pyarrow")
    mimalloc = arrow.mimalloc_memory_pool().max_memory() if arrow else None
    print(json.dumps({"modules": sorted(sys.modules), "mimalloc": mimalloc}), file=sys.stderr)
atexit.register(report)
sys.argv = ["leadferry", *sys.argv[1:]]
from leadferry.cli import main
main()
"""


def exiting(leadferry, *args: str) -> dict:
    """What `leadferry ARGS` had when it exited (it must succeed): its modules, and the most
    Arrow's mimalloc pool ever held (None without pyarrow)."""
    done = subprocess.run([sys.executable, "-c", EXITING, *args], env=leadferry.env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stderr.strip().splitlines()[-1])


def loaded_modules(leadferry, *args: str) -> set[str]:
    """The modules `leadferry ARGS` had loaded when it exited (it must succeed)."""
    return set(exiting(leadferry, *args)["modules"])


def test_the_help_loads_no_command_and_no_settings(leadferry):
    loaded = loaded_modules(leadferry, "--help")
    assert not {name for name in loaded if name.startswith("leadferry.cli.")} - {
        "leadferry.cli.root", "leadferry.cli.state", "leadferry.cli.helptext"
    }  # fmt: skip
    assert not {"pydantic", "leadferry.settings", "sqlalchemy", "dlt"} & loaded


def test_a_command_s_help_loads_that_command_only(leadferry):
    loaded = loaded_modules(leadferry, "accounts", "--help")
    assert "leadferry.cli.accounts" in loaded
    assert not {"leadferry.cli.data", "leadferry.cli.serve", "leadferry.cli.worker"} & loaded


@pytest.mark.parametrize("command", ["run", "query", "datasets"])
def test_a_command_s_help_reads_no_settings(leadferry, command):
    loaded = loaded_modules(leadferry, command, "--help")
    assert not {"leadferry.settings", "pydantic_settings", "dlt", "sqlalchemy"} & loaded


def test_a_run_loads_no_web_server_task_queue_or_templates(leadferry, leadexec_server):
    account_in_store(leadferry, leadexec_server.url)
    leadferry.ok("datasets", "create", "leads", "--account", "acme", "--report", "leads",
                 "--param", "lid=271", "--days-back", "2")  # fmt: skip
    state = exiting(leadferry, "run", "leads")
    loaded = {name.split(".")[0] for name in state["modules"]}
    assert {"dlt", "duckdb"} <= loaded
    # Arrow's C++ code allocated nothing from mimalloc, which keeps what is freed.
    assert state["mimalloc"] == 0
    assert not {"fastapi", "starlette", "uvicorn", "celery", "kombu", "jinja2", "redis"} & loaded
    # Its bar and its line to a pipe need no rich: no bar is drawn there, the line is plain.
    assert "rich" not in loaded


def test_json_answers_load_no_rich_and_no_dlt(leadferry, leadexec_server):
    account_in_store(leadferry, leadexec_server.url)
    leadferry.ok("datasets", "create", "leads", "--account", "acme", "--report", "leads",
                 "--param", "lid=271", "--days-back", "2")  # fmt: skip
    leadferry.ok("run", "leads")
    for command in (["history", "leads", "--json"], ["datasets", "list", "--json"],
                    ["query", "select 1 as one", "--json"]):  # fmt: skip
        loaded = {name.split(".")[0] for name in loaded_modules(leadferry, *command)}
        assert not {"rich", "dlt"} & loaded, command
    # A dataset's zone is read without decrypting its account's secrets, and, when the dataset
    # or its account names one, without importing its connector (HTTP, Arrow, XML).
    history = ("history", "leads", "--json")
    loaded = {name.split(".")[0] for name in loaded_modules(leadferry, *history)}
    assert "cryptography" not in loaded
    leadferry.ok("datasets", "edit", "leads", "--tz", "America/Chicago")
    loaded = {name.split(".")[0] for name in loaded_modules(leadferry, *history)}
    assert not {"cryptography", "httpx2", "pyarrow", "lxml"} & loaded
    # Nor does a read that needs no account's secrets decrypt any.
    loaded = {
        name.split(".")[0] for name in loaded_modules(leadferry, "preview", "leads", "--json")
    }
    assert not {"rich", "dlt", "cryptography"} & loaded
