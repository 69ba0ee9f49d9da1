"""The REST API over real HTTP: a `leadferry serve` process driven with httpx2 on loopback, with
a token made by `leadferry tokens create`, against `leadferry simulate leadexec`.

(That serve refuses to start without users is tested in test_serve_e2e.py.)
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx2
import pytest

from tests.e2e.conftest import E2E_KEY, serving

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(leadferry) -> Iterator[str]:
    """`leadferry serve` on a free loopback port, with an admin and a viewer; its base URL."""
    with serving(leadferry) as url:
        yield url


def token(leadferry, user: str) -> str:
    return leadferry.ok("tokens", "create", "e2e", "--user", user).strip()


def wait_for_run(api: httpx2.Client, name: str, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        history = api.get(f"/datasets/{name}/runs").raise_for_status().json()
        if history["data"] and history["data"][0]["status"] != "running":
            return history
        time.sleep(0.3)
    raise AssertionError(f"{name} did not finish its run in {timeout}s")


def test_accounts_datasets_runs_history_and_previews_over_http(leadferry, server, leadexec_server):
    headers = {"Authorization": f"Bearer {token(leadferry, 'ada')}"}
    responses: list[httpx2.Response] = []
    with httpx2.Client(
        base_url=f"{server}/api/v1",
        headers=headers,
        timeout=30,
        event_hooks={"response": [responses.append]},
    ) as api:
        account = api.post(
            "/accounts",
            json={
                "name": "acme",
                "connector": "leadexec",
                "fields": {"api_key": E2E_KEY, "base_url": leadexec_server.url},
            },
        )
        assert account.status_code == 201, account.text
        assert account.json()["secrets"] == {"api_key": "••••-key"}
        assert api.post("/accounts/acme/test").json()["ok"] is True

        created = api.post(
            "/datasets",
            json={
                "name": "acme_leads",
                "account": "acme",
                "report": "leads",
                "params": {"lid": 271},
                "date_selection": {"from_days_back": 5, "to_days_back": 1},
                "update_method": "merge",
                "schedule": {"kind": "daily", "at": "06:00", "timezone": "America/Chicago"},
            },
        )
        assert created.status_code == 201, created.text
        assert len(created.json()["next_runs"]) == 5
        assert created.json()["next_window"] is not None

        assert api.post("/datasets/acme_leads/runs").status_code == 202
        history = wait_for_run(api, "acme_leads")
        (run,) = history["data"]
        assert run["status"] == "success", run["error"]
        assert run["rows"]["leads"] > 0
        assert history["summary"] == {
            "runs": 1,
            "success_rate": 1.0,
            "average_seconds": run["seconds"],
        }
        assert api.get(f"/runs/{run['id']}").json()["window_start"] == run["window_start"]

        preview = api.get("/datasets/acme_leads/preview", params={"limit": 3}).json()
        assert len(preview["rows"]) == 3
        assert "uid" in preview["columns"]
        unsaved = api.post(
            "/preview",
            json={"account": "acme", "report": "leads", "params": {"lid": 272}, "limit": 2},
        )
        assert unsaved.status_code == 200, unsaved.text
        assert len(unsaved.json()["rows"]) == 2

    viewer = {"Authorization": f"Bearer {token(leadferry, 'vera')}"}
    refused = httpx2.post(f"{server}/api/v1/datasets/acme_leads/runs", headers=viewer)
    assert refused.status_code == 403
    assert httpx2.get(f"{server}/api/v1/datasets", headers=viewer).json()["count"] == 1
    assert httpx2.get(f"{server}/api/v1/datasets").status_code == 401
    for response in responses:
        assert E2E_KEY not in response.text, response.request.url
