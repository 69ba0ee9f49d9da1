"""One loopback run per simulator variant: `leadferry simulate NAME --variant V` in a process of its
own, and real `leadferry` commands testing an account, naming a refused credential and loading a
dataset. The in-process suites cover the variants in depth; this proves the whole path."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from leadferry.simulators import avidtrak as avidtrak_sim
from leadferry.simulators import leadexec as leadexec_sim
from leadferry.simulators import salesexec as salesexec_sim
from leadferry.store import Run
from tests.e2e.conftest import E2E_KEY, Leadferry, Simulator, start_simulator, stop

pytestmark = pytest.mark.e2e

PIN, USER, PASSWORD = "e2e-pin-5521", "e2e.user", "e2e-pass-88"


@contextmanager
def simulator(name: str, variant: str, *options: str) -> Iterator[Simulator]:
    started = start_simulator(name, "--variant", variant, *options)
    try:
        yield started
    finally:
        stop(started)


NOWHERE = "http://127.0.0.1:9/"
"""Where a home's accounts point until a test's simulator is up (never asked)."""


def accounts(leadferry: Leadferry, connector: str, good: str, bad: str, secret_env: str,
             *settings: str) -> None:  # fmt: skip
    """Accounts "good" and "bad" of *connector*, their secrets given in the environment."""
    flags = [part for setting in settings for part in ("--set", setting)]
    for name, secret in (("good", good), ("bad", bad)):
        leadferry.ok("accounts", "add", name, "--connector", connector, *flags,
                     env={secret_env: secret})  # fmt: skip


def leadexec_home(leadferry: Leadferry) -> None:
    accounts(leadferry, "leadexec", E2E_KEY, "not-the-key-0",
             "LEADFERRY_API_KEY", f"base_url={NOWHERE}")  # fmt: skip
    leadferry.ok("datasets", "create", "changes", "--account", "good", "--report", "leads",
                 "--param", "lid=271", "--update", "merge", "--incremental")  # fmt: skip


def salesexec_home(leadferry: Leadferry) -> None:
    for name, password in (("good", PASSWORD), ("bad", "wrong")):
        leadferry.ok("accounts", "add", name, "--connector", "salesexec",
                     "--set", f"base_url={NOWHERE}", "--set", f"username={USER}",
                     env={"LEADFERRY_PASSWORD": password})  # fmt: skip
    leadferry.ok("datasets", "create", "leads", "--account", "good", "--report", "all_leads",
                 "--days-back", "3")  # fmt: skip


def avidtrak_home(leadferry: Leadferry) -> None:
    accounts(leadferry, "avidtrak", PIN, "0000", "LEADFERRY_PIN_CODE", f"base_url={NOWHERE}")
    leadferry.ok("datasets", "create", "calls", "--account", "good", "--report",
                 "offline_portal_calls", "--days-back", "2")  # fmt: skip


SET_UPS = {"leadexec": leadexec_home, "salesexec": salesexec_home, "avidtrak": avidtrak_home}


@pytest.fixture(scope="module")
def home_of(tmp_path_factory) -> Callable[[str, Path], Leadferry]:
    """``home_of(connector, tmp_path)``: a copy of the connector's home, set up by real processes
    once a module (``SET_UPS``): the variants differ in the simulator, not in the accounts."""
    homes: dict[str, Leadferry] = {}

    def copy(connector: str, tmp_path: Path) -> Leadferry:
        if connector not in homes:
            homes[connector] = Leadferry(tmp_path_factory.mktemp(connector) / "home")
            SET_UPS[connector](homes[connector])
        return homes[connector].copy(tmp_path / "home")

    return copy


def point_at(leadferry: Leadferry, **config: str) -> None:
    """Accounts "good" and "bad" at this test's simulator, set in the home's store as `leadferry
    accounts edit --set` sets them."""
    with leadferry.store() as store:
        for name in ("good", "bad"):
            store.update_account(name, config)


def only_run(leadferry: Leadferry, name: str) -> Run:
    """Dataset *name*'s one run, read from the store (`leadferry history` is proven elsewhere:
    here the run is what the variant changes)."""
    with leadferry.store() as store:
        (run,) = store.list_runs(name)
    return run


def check_accounts(leadferry: Leadferry, label: str, refused: str) -> None:
    assert "accepted" in leadferry.ok("accounts", "test", "good")
    result = leadferry("accounts", "test", "bad")
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: {label} rejected {refused} for account bad"


@pytest.mark.parametrize("variant", [v.value for v in leadexec_sim.Variant])
def test_leadexec_variant_end_to_end(home_of, tmp_path, variant):
    leadferry = home_of("leadexec", tmp_path)
    with simulator("leadexec", variant, "--leads", "3000", "--days", "5", "--lid", "271",
                   "--api-key", E2E_KEY) as server:  # fmt: skip
        point_at(leadferry, base_url=server.url)
        check_accounts(leadferry, "LeadExec", "the API key")
        leadferry.ok("run", "changes")
    run = only_run(leadferry, "changes")
    assert run.status == "success"
    assert run.rows["leads"] > 0
    if variant in ("xml-without-lastupdated", "query-dates-as-text"):
        assert run.rows["leads"] == 3000
        assert run.error.endswith("was loaded, not only the changes")
    else:
        assert run.error is None


@pytest.mark.parametrize("variant", [v.value for v in salesexec_sim.Variant])
def test_salesexec_variant_end_to_end(home_of, tmp_path, variant):
    leadferry = home_of("salesexec", tmp_path)
    with simulator("salesexec", variant, "--leads", "500", "--days", "5",
                   "--users", f"{USER}:{PASSWORD}") as server:  # fmt: skip
        point_at(leadferry, base_url=server.url.rstrip("/"))
        check_accounts(leadferry, "SalesExec", "the username or password")
        leadferry.ok("run", "leads")
    run = only_run(leadferry, "leads")
    assert run.status == "success"
    assert run.rows["all_leads"] > 0


@pytest.mark.parametrize("variant", [v.value for v in avidtrak_sim.Variant])
def test_avidtrak_variant_end_to_end(home_of, tmp_path, variant):
    fmt = "json" if variant in ("documented-codes", "typed-json") else "xml"
    leadferry = home_of("avidtrak", tmp_path)
    with simulator("avidtrak", variant, "--calls", "2000", "--days", "5", "--pin", PIN) as server:
        point_at(leadferry, base_url=server.url, format=fmt)
        check_accounts(leadferry, "AvidTrak", "the pin code")
        leadferry.ok("run", "calls")
    run = only_run(leadferry, "calls")
    assert run.status == "success"
    assert run.rows["offline_portal_calls"] > 0
