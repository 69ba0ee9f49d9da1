"""Runs through the REST API: a dataset made through the API runs against the in-process LeadExec
simulator; its history, its runs and its data come back; Load Preview saves nothing."""

from __future__ import annotations

import csv
import io
import time

import pyarrow.parquet as pq
import pytest
from pydantic import SecretStr

from leadferry.warehouse import open_warehouse
from tests.conftest import API_KEY, leadexec_app
from tests.postgres_server import fresh_database
from tests.web.conftest import api_client

RANGE = {"from_date": "2026-11-16", "to_date": "2026-11-20"}


@pytest.fixture
def editor_api(app, store, acme_account):
    with api_client(app, store, "eddie") as client:
        yield client


def wait_for_run(client, name: str, timeout: float = 60) -> dict:
    """Poll the history until the newest run has finished; return the history."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        history = client.get(f"/api/v1/datasets/{name}/runs").json()
        if history["data"] and history["data"][0]["status"] != "running":
            return history
        time.sleep(0.1)
    raise AssertionError(f"{name} did not finish its run in {timeout}s")


@pytest.fixture
def settings(settings, request, monkeypatch):
    """The settings, with the warehouse a test asks for (``indirect`` "duckdb" or "postgresql")."""
    if getattr(request, "param", "duckdb") == "duckdb":
        yield settings
        return
    with fresh_database() as url:
        monkeypatch.setenv("LEADFERRY_WAREHOUSE_URL", url)
        yield settings.model_copy(update={"warehouse_url": SecretStr(url)})


@pytest.mark.parametrize(
    "settings", ["duckdb", pytest.param("postgresql", marks=pytest.mark.services)], indirect=True
)
def test_a_dataset_made_through_the_api_runs_and_shows_its_history_and_data(editor_api, settings):
    made = editor_api.post(
        "/api/v1/datasets",
        json={
            "name": "leads",
            "account": "acme",
            "report": "leads",
            "params": {"lid": 271},
            "date_selection": RANGE,
        },
    )
    assert made.status_code == 201, made.text
    queued = editor_api.post("/api/v1/datasets/leads/runs")
    assert queued.status_code == 202
    assert queued.json() == {
        "dataset": "leads",
        "trigger": "manual",
        "status": "queued",
        "history": "/api/v1/datasets/leads/runs",
    }
    assert queued.headers["location"] == "/api/v1/datasets/leads/runs"
    history = wait_for_run(editor_api, "leads")
    (run,) = history["data"]
    assert run["status"] == "success", run["error"]
    assert run["trigger"] == "manual"
    assert run["window_start"] == "2026-11-16T00:00:00-08:00"
    assert run["window_end"] == "2026-11-21T00:00:00-08:00"
    assert run["rows"]["leads"] > 0
    assert run["seconds"] >= 0
    assert history["summary"]["runs"] == 1
    assert history["summary"]["success_rate"] == 1.0
    assert editor_api.get(f"/api/v1/runs/{run['id']}").json() == run

    preview = editor_api.get("/api/v1/datasets/leads/preview", params={"limit": 5}).json()
    assert "uid" in preview["columns"]
    assert not any(column.startswith("_dlt") for column in preview["columns"])
    assert len(preview["rows"]) == 5
    assert all(len(row) == len(preview["columns"]) for row in preview["rows"])
    sends = editor_api.get("/api/v1/datasets/leads/preview", params={"table": "lead_sends"})
    assert sends.status_code == 200
    assert "lead_uid" in sends.json()["columns"]
    unknown = editor_api.get("/api/v1/datasets/leads/preview", params={"table": "calls"})
    assert unknown.status_code == 422
    assert "has no table 'calls'" in unknown.json()["detail"]

    shown = editor_api.get("/api/v1/datasets/leads").json()
    assert (shown["status"], shown["attention"]) == ("success", [])
    assert shown["last_success"] == run["finished_at"]
    assert shown["last_run"]["status"] == "success"
    assert shown["last_run"]["rows"] == run["rows"]

    exported = editor_api.get("/api/v1/datasets/leads/export", params={"format": "csv"})
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert 'filename="leads_leads.csv"' in exported.headers["content-disposition"]
    header, *rows = csv.reader(io.StringIO(exported.text))
    assert header[0] == "uid"
    assert len(rows) == run["rows"]["leads"]
    parquet = editor_api.get("/api/v1/datasets/leads/export?format=parquet&table=lead_sends")
    assert parquet.status_code == 200
    assert pq.read_table(io.BytesIO(parquet.content)).num_rows == run["rows"]["lead_sends"]
    assert editor_api.get("/api/v1/datasets/leads/export?format=xlsx").status_code == 422

    # The rows went where LEADFERRY_WAREHOUSE_URL says, and only there.
    assert settings.warehouse_path.exists() == (settings.warehouse_postgres_url is None)
    removed = editor_api.delete("/api/v1/datasets/leads", params={"drop_data": "true"})
    assert removed.status_code == 204
    assert open_warehouse(settings).tables("leads") == []
    assert editor_api.get(f"/api/v1/runs/{run['id']}").status_code == 404


def test_a_failed_run_is_in_the_history_with_its_error(editor_api, store, leadexec_url):
    store.create_account(
        "broken", "leadexec", {"base_url": f"{leadexec_url}/"}, {"api_key": "le-revoked-0000"}
    )
    editor_api.post(
        "/api/v1/datasets",
        json={"name": "broken_leads", "account": "broken", "report": "leads", "params": {"lid": 1}},
    )
    assert editor_api.post("/api/v1/datasets/broken_leads/runs").status_code == 202
    history = wait_for_run(editor_api, "broken_leads")
    (run,) = history["data"]
    assert run["status"] == "failed"
    assert run["error"] == "LeadExec rejected the API key for account broken"
    assert history["summary"]["success_rate"] == 0.0
    assert API_KEY not in str(history)
    needing = editor_api.get("/api/v1/datasets", params={"attention": "true"}).json()
    assert [(d["name"], d["status"]) for d in needing["data"]] == [("broken_leads", "failed")]
    assert needing["data"][0]["attention"] == ["its last run failed", "never succeeded"]


@pytest.fixture
def slow_account(store, vendors):
    """A LeadExec account on a simulator that takes a second to answer each request."""
    _, simulator = leadexec_app(latency_ms=1000)
    url = vendors.add("slow.test", simulator)
    return store.create_account("slow", "leadexec", {"base_url": f"{url}/"}, {"api_key": API_KEY})


def test_run_now_is_refused_while_the_dataset_runs(editor_api, slow_account):
    editor_api.post(
        "/api/v1/datasets",
        json={"name": "slow_leads", "account": "slow", "report": "leads", "params": {"lid": 271}},
    )
    assert editor_api.post("/api/v1/datasets/slow_leads/runs").status_code == 202
    again = editor_api.post("/api/v1/datasets/slow_leads/runs")
    assert again.status_code == 409
    assert again.json() == {"detail": "dataset slow_leads is already running"}
    assert wait_for_run(editor_api, "slow_leads")["data"][0]["status"] == "success"


def test_runs_of_unknown_datasets_are_404(editor_api):
    assert editor_api.post("/api/v1/datasets/nope/runs").status_code == 404
    assert editor_api.get("/api/v1/datasets/nope/runs").status_code == 404
    assert editor_api.get("/api/v1/runs/12345").json() == {"detail": "no run with id 12345"}
    assert editor_api.get("/api/v1/runs/0").status_code == 422


def test_the_data_of_a_dataset_that_never_ran_is_404(editor_api, settings):
    editor_api.post(
        "/api/v1/datasets",
        json={"name": "leads", "account": "acme", "report": "leads", "params": {"lid": 271}},
    )
    assert editor_api.get("/api/v1/datasets/leads/preview").status_code == 404
    assert editor_api.get("/api/v1/datasets/leads/export").status_code == 404
    assert not settings.warehouse_path.exists()


def test_load_preview_fetches_first_rows_without_saving_anything(editor_api, store, settings):
    answer = editor_api.post(
        "/api/v1/preview",
        json={
            "account": "acme",
            "report": "leads",
            "params": {"lid": 272},
            "date_selection": RANGE,
            "limit": 3,
        },
    )
    assert answer.status_code == 200, answer.text
    preview = answer.json()
    assert len(preview["rows"]) == 3
    assert preview["columns"][:3] == ["uid", "lead_source", "date_added"]
    assert store.list_datasets() == []
    assert not settings.warehouse_path.exists()


def test_load_preview_answers_502_when_the_vendor_refuses(editor_api, store, leadexec_url):
    store.create_account(
        "wrong", "leadexec", {"base_url": f"{leadexec_url}/"}, {"api_key": "le-wrong-key-0000"}
    )
    answer = editor_api.post(
        "/api/v1/preview", json={"account": "wrong", "report": "leads", "params": {"lid": 271}}
    )
    assert answer.status_code == 502
    assert answer.json() == {"detail": "LeadExec rejected the API key for account wrong"}
