"""`leadferry serve` as real processes, on a clock running 600 times faster than real time."""

from __future__ import annotations

import datetime as dt
import json
import signal
import time

import pytest
from fastapi import FastAPI, Request

from leadferry.store import Run
from tests.conftest import serve_on_loopback
from tests.e2e.conftest import (
    E2E_KEY,
    E2E_PASSWORD,
    account_in_store,
    add_user,
    free_port,
    wait_for,
)

pytestmark = pytest.mark.e2e
SPEED = 600  # one real second is ten minutes


def origin() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def serve(leadferry, start: dt.datetime):
    return leadferry.start(
        "serve",
        "--tick",
        "0.2",
        "--workers",
        "2",
        "--clock-origin",
        start.isoformat(),
        "--clock-speed",
        str(SPEED),
        "--port",
        str(free_port()),
    )


def stop(process) -> str:
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return out


def runs(leadferry, name) -> list[Run]:
    """The dataset's runs, newest first, read from the services' store: what is proven here is
    what serve ran (`leadferry history` is proven in test_leadexec_e2e), and polling through a
    process each time would take the CPU the services need."""
    with leadferry.store() as store:
        return store.list_runs(name, limit=100)


def statuses(leadferry, name) -> list[str]:
    return [run.status for run in runs(leadferry, name)]


def add_admin(leadferry) -> None:
    """The user serve needs, added through the store: `leadferry users add` is proven once
    here, by the first scheduled test."""
    with leadferry.store() as store:
        store.add_user("ada", E2E_PASSWORD, "admin")


def test_serve_refuses_to_start_without_users(leadferry):
    result = leadferry("serve", "--port", str(free_port()))
    assert result.returncode == 2
    assert "leadferry users add NAME --role admin" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_scheduled_runs_and_a_missed_slot_after_a_restart(leadferry, leadexec_server):
    add_user(leadferry)
    account_in_store(leadferry, leadexec_server.url)
    leadferry.ok(
        "datasets",
        "create",
        "hourly_leads",
        "--account",
        "acme",
        "--report",
        "leads",
        "--param",
        "lid=271",
    )
    start = origin()
    leadferry.ok(
        "datasets", "schedule", "hourly_leads", "--every", "1h", "--now", start.isoformat()
    )
    process = serve(leadferry, start)
    began = time.monotonic()
    wait_for(lambda: "success" in statuses(leadferry, "hourly_leads"))
    stopped_out = stop(process)
    first = [r for r in runs(leadferry, "hourly_leads") if r.status == "success"]
    assert "stopping (SIGTERM)" in stopped_out
    assert first[0].trigger == "scheduled"
    assert all(r.status != "running" for r in runs(leadferry, "hourly_leads"))
    # Come back twelve simulated hours later: the missed slots run once, not twelve times.
    elapsed = dt.timedelta(seconds=(time.monotonic() - began) * SPEED)
    before = len(runs(leadferry, "hourly_leads"))
    back = start + elapsed + dt.timedelta(hours=12)
    restarted = time.monotonic()
    process = serve(leadferry, back)
    wait_for(lambda: len(statuses(leadferry, "hourly_leads")) > before, timeout=30)
    stop(process)
    # serve's clock ran SPEED times faster meanwhile: a slow start-up makes its first tick later.
    served_until = back + dt.timedelta(seconds=(time.monotonic() - restarted) * SPEED)
    new = runs(leadferry, "hourly_leads")[: -before or None]
    latest_missed = back.replace(minute=0, second=0, microsecond=0)
    slots = sorted(r.slot for r in new)
    # The twelve missed slots ran once, as the latest of them at the first tick (none of the
    # eleven before it); later runs are later slots.
    assert latest_missed <= slots[0] <= served_until
    assert len(slots) == len(set(slots))
    assert all(r.trigger == "scheduled" for r in new)


def test_two_services_share_a_store_without_running_a_slot_twice(leadferry, leadexec_server):
    add_admin(leadferry)
    account_in_store(leadferry, leadexec_server.url)
    for name in ("first_leads", "second_leads"):
        leadferry.ok(
            "datasets",
            "create",
            name,
            "--account",
            "acme",
            "--report",
            "leads",
            "--param",
            "lid=272",
            "--update",
            "merge",
        )
    start = origin()
    for name in ("first_leads", "second_leads"):
        leadferry.ok("datasets", "schedule", name, "--every", "30m", "--now", start.isoformat())
    services = [serve(leadferry, start), serve(leadferry, start)]
    wait_for(
        lambda: statuses(leadferry, "first_leads").count("success") >= 3,
        timeout=90,
    )
    for process in services:
        stop(process)
    for name in ("first_leads", "second_leads"):
        history = runs(leadferry, name)
        assert len(history) >= 2
        slots = [r.slot for r in history]
        assert None not in slots
        assert len(slots) == len(set(slots)), f"{name}: a slot ran twice"
        assert {r.status for r in history} == {"success"}


def test_a_failing_run_is_retried_then_succeeds_and_alerts_are_delivered(
    leadferry, leadexec_server, failing_leadexec_server
):
    received: list[dict] = []
    app = FastAPI()

    @app.post("/alerts")
    async def hook(request: Request) -> dict:
        received.append(await request.json())
        return {}

    with serve_on_loopback(app) as hook_url:
        add_admin(leadferry)
        account_in_store(leadferry, failing_leadexec_server.url, "flaky")
        account_in_store(leadferry, failing_leadexec_server.url, "broken")
        for name, account in (("flaky_leads", "flaky"), ("broken_leads", "broken")):
            leadferry.ok(
                "datasets",
                "create",
                name,
                "--account",
                account,
                "--report",
                "leads",
                "--param",
                "lid=271",
            )
        start = origin()
        slot = (start + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0)
        common = [
            "--daily",
            "00:00",
            "--alert-webhook",
            f"{hook_url}/alerts",
            "--now",
            start.isoformat(),
        ]
        # A retry an hour (six real seconds) later leaves time to fix the account.
        leadferry.ok(
            "datasets", "schedule", "flaky_leads", *common, "--retry-every", "60", "--retries", "2"
        )
        leadferry.ok("datasets", "schedule", "broken_leads", *common, "--no-retry")
        process = serve(leadferry, slot - dt.timedelta(minutes=5))
        wait_for(lambda: statuses(leadferry, "flaky_leads"), timeout=60)
        leadferry.ok("accounts", "edit", "flaky", "--set", f"base_url={leadexec_server.url}",
                     env={"LEADFERRY_API_KEY": E2E_KEY})  # fmt: skip
        wait_for(lambda: statuses(leadferry, "flaky_leads")[0] == "success", timeout=60)
        wait_for(lambda: received, timeout=30)
        stop(process)
    flaky = runs(leadferry, "flaky_leads")
    outcomes = [(r.trigger, r.status) for r in flaky]
    # On a slow machine the account may be fixed only in time for the second retry.
    assert outcomes[0] == ("retry", "success")
    assert outcomes[-1] == ("scheduled", "failed")
    assert set(outcomes[1:-1]) <= {("retry", "failed")}
    assert len(outcomes) <= 3
    assert len({r.window_start for r in flaky}) == 1, "retries take the slot's window"
    assert [(r.trigger, r.status) for r in runs(leadferry, "broken_leads")] == [
        ("scheduled", "failed")
    ]
    (alert,) = received
    assert alert["kind"] == "failing"
    assert alert["dataset"] == "broken_leads"
    shown = json.loads(leadferry.ok("datasets", "show", "broken_leads", "--json"))
    assert shown["failing"] is True
