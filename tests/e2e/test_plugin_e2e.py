"""A connector package installed next to leadferry works end to end with no edit to leadferry.

examples/leadferry-acme (a connector module, a simulator module and the entry points in its
pyproject.toml) is installed into a virtual environment of its own that sees this one's
packages (a ``.pth`` file), so no other test sees a fourth connector. Its ``leadferry`` then
lists the report, serves the simulator, offers the connector in the web form with its own date
labels, and runs a dataset of it into the warehouse.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import httpx2
import lxml.html
import pytest

from tests.e2e.conftest import (
    E2E_PASSWORD,
    Leadferry,
    Simulator,
    serving,
    start_simulator,
    stop,
)

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "leadferry-acme"
TOKEN = "acme-e2e-token-8841"


def uv() -> str:
    return os.environ.get("UV") or shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")


@pytest.fixture(scope="module")
def acme_python(tmp_path_factory) -> str:
    """The Python of a virtual environment with this one's packages and the example installed."""
    venv = tmp_path_factory.mktemp("acme") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    ours = sysconfig.get_path("purelib")
    Path(purelib, "leadferry-project.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    subprocess.run(
        [uv(), "pip", "install", "--quiet", "--python", python, "--no-deps", str(EXAMPLE)],
        check=True,
    )
    return python


@pytest.fixture(scope="module")
def acme_server(acme_python) -> Iterator[Simulator]:
    command = (acme_python, "-m", "leadferry")
    simulator = start_simulator("acme", "--contacts", "3000", "--token", TOKEN, command=command)
    yield simulator
    stop(simulator)


@pytest.fixture
def acme_cli(tmp_path, acme_python) -> Leadferry:
    return Leadferry(tmp_path / "home", command=(acme_python, "-m", "leadferry"))


def add_shop(cli: Leadferry, server: Simulator) -> None:
    """An Acme account on the simulator, its token given in the environment."""
    cli.ok("accounts", "add", "shop", "--connector", "acme", "--set", f"base_url={server.url}",
           env={"LEADFERRY_API_TOKEN": TOKEN})  # fmt: skip


def test_the_package_adds_a_connector_a_simulator_and_a_report(acme_cli):
    (acme,) = json.loads(acme_cli.ok("reports", "--connector", "acme", "--json"))
    assert acme["label"] == "Acme CRM"
    assert [report["slug"] for report in acme["reports"]] == ["contacts"]
    assert "acme" in acme_cli.ok("simulate", "--help")


def test_a_dataset_of_the_new_connector_runs_into_the_warehouse(acme_cli, acme_server):
    add_shop(acme_cli, acme_server)
    assert "Acme CRM" in acme_cli.ok("accounts", "test", "shop")
    acme_cli.ok("datasets", "create", "contacts_week", "--account", "shop",
                "--report", "contacts", "--days-back", "7", "--update", "merge")  # fmt: skip

    acme_cli.ok("run", "contacts_week")

    (run,) = json.loads(acme_cli.ok("history", "contacts_week", "--json"))
    assert run["status"] == "success"
    loaded = run["rows"]["contacts"]
    assert loaded > 0
    sql = "select count(*) as n, count(distinct id) as ids from contacts_week.contacts"
    counted = json.loads(acme_cli.ok("query", sql, "--json"))
    assert counted == [{"n": loaded, "ids": loaded}]


def test_the_web_form_offers_the_connector_with_its_own_date_labels(acme_cli, acme_server):
    add_shop(acme_cli, acme_server)
    with serving(acme_cli) as url, httpx2.Client(base_url=url) as web:
        login = web.get("/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', login).group(1)
        web.post("/login", data={"username": "ada", "password": E2E_PASSWORD, "csrf_token": token})

        accounts = web.get("/accounts").text
        assert "Acme CRM" in accounts
        fields = web.get("/accounts/new/fields", params={"connector": "acme"}).text
        assert 'name="api_token"' in fields

        wizard = web.get("/datasets/new").text
        details = web.post("/datasets/new", data=form_values(wizard) | {
            "account": "shop", "action": "next"}).text  # fmt: skip
        assert ">Contacts<" in details
        single = web.post("/wizard/part/single", headers={"HX-Request": "true"},
                          data=form_values(details) | {"duration": "date",
                                                       "report_date": "relative"}).text  # fmt: skip
        assert "Days Ago" in single
        assert "Days Back" not in single


def form_values(page: str) -> dict[str, str]:
    """The wizard form's fields, as a browser would send them."""
    form = lxml.html.fromstring(page).get_element_by_id("wizard")
    return dict(form.form_values())
