"""One loopback run per simulator variant: `leadferry simulate NAME --variant V` in a process of its
own, and real `leadferry` commands testing an account, naming a refused credential and loading a
dataset. The in-process suites cover the variants in depth; this proves the whole path."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from leadferry.simulators import avidtrak as avidtrak_sim
from leadferry.simulators import leadexec as leadexec_sim
from leadferry.simulators import salesexec as salesexec_sim
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


def accounts(leadferry: Leadferry, connector: str, good: str, bad: str, secret_env: str,
             *settings: str) -> None:  # fmt: skip
    """Accounts "good" and "bad" of *connector*, their secrets given in the environment."""
    flags = [part for setting in settings for part in ("--set", setting)]
    for name, secret in (("good", good), ("bad", bad)):
        leadferry.ok("accounts", "add", name, "--connector", connector, *flags,
                     env={secret_env: secret})  # fmt: skip


def check_accounts(leadferry: Leadferry, label: str, refused: str) -> None:
    assert "accepted" in leadferry.ok("accounts", "test", "good")
    result = leadferry("accounts", "test", "bad")
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: {label} rejected {refused} for account bad"


@pytest.mark.parametrize("variant", [v.value for v in leadexec_sim.Variant])
def test_leadexec_variant_end_to_end(leadferry, variant):
    with simulator("leadexec", variant, "--leads", "3000", "--days", "5", "--lid", "271",
                   "--api-key", E2E_KEY) as server:  # fmt: skip
        accounts(leadferry, "leadexec", E2E_KEY, "not-the-key-0",
                 "LEADFERRY_API_KEY", f"base_url={server.url}")  # fmt: skip
        check_accounts(leadferry, "LeadExec", "the API key")
        leadferry.ok("datasets", "create", "changes", "--account", "good", "--report", "leads",
                     "--param", "lid=271", "--update", "merge", "--incremental")  # fmt: skip
        leadferry.ok("run", "changes")
    (run,) = json.loads(leadferry.ok("history", "changes", "--json"))
    assert run["status"] == "success"
    assert run["rows"]["leads"] > 0
    if variant in ("xml-without-lastupdated", "query-dates-as-text"):
        assert run["rows"]["leads"] == 3000
        assert run["error"].endswith("was loaded, not only the changes")
    else:
        assert run["error"] is None


@pytest.mark.parametrize("variant", [v.value for v in salesexec_sim.Variant])
def test_salesexec_variant_end_to_end(leadferry, variant):
    with simulator("salesexec", variant, "--leads", "500", "--days", "5",
                   "--users", f"{USER}:{PASSWORD}") as server:  # fmt: skip
        url = server.url.rstrip("/")
        for name, password in (("good", PASSWORD), ("bad", "wrong")):
            leadferry.ok("accounts", "add", name, "--connector", "salesexec",
                         "--set", f"base_url={url}", "--set", f"username={USER}",
                         env={"LEADFERRY_PASSWORD": password})  # fmt: skip
        check_accounts(leadferry, "SalesExec", "the username or password")
        leadferry.ok("datasets", "create", "leads", "--account", "good", "--report", "all_leads",
                     "--days-back", "3")  # fmt: skip
        leadferry.ok("run", "leads")
    (run,) = json.loads(leadferry.ok("history", "leads", "--json"))
    assert run["status"] == "success"
    assert run["rows"]["all_leads"] > 0


@pytest.mark.parametrize("variant", [v.value for v in avidtrak_sim.Variant])
def test_avidtrak_variant_end_to_end(leadferry, variant):
    fmt = "json" if variant in ("documented-codes", "typed-json") else "xml"
    with simulator("avidtrak", variant, "--calls", "2000", "--days", "5", "--pin", PIN) as server:
        accounts(leadferry, "avidtrak", PIN, "0000",
                 "LEADFERRY_PIN_CODE", f"base_url={server.url}", f"format={fmt}")  # fmt: skip
        check_accounts(leadferry, "AvidTrak", "the pin code")
        leadferry.ok("datasets", "create", "calls", "--account", "good", "--report",
                     "offline_portal_calls", "--days-back", "2")  # fmt: skip
        leadferry.ok("run", "calls")
    (run,) = json.loads(leadferry.ok("history", "calls", "--json"))
    assert run["status"] == "success"
    assert run["rows"]["offline_portal_calls"] > 0
