"""LeadExec end to end: real `leadferry` processes, the simulator over loopback, real files."""

from __future__ import annotations

import json

import duckdb
import pyarrow.parquet as pq
import pytest

from tests.e2e.conftest import E2E_KEY, account_in_store, add_account, free_port

pytestmark = pytest.mark.e2e


def test_a_dataset_from_account_to_export(leadferry, leadexec_server, tmp_path):
    add_account(leadferry, leadexec_server.url)
    assert "accepted" in leadferry.ok("accounts", "test", "acme")
    leadferry.ok(
        "datasets",
        "create",
        "acme_leads",
        "--account",
        "acme",
        "--report",
        "leads",
        "--param",
        "lid=271",
        "--days-back",
        "7",
    )
    out = leadferry.ok("run", "acme_leads")
    assert out.startswith("acme_leads: leads: ")
    assert "(7 days, America/Los_Angeles)" in out

    (run,) = json.loads(leadferry.ok("history", "acme_leads", "--json"))
    assert run["status"] == "success"
    assert run["trigger"] == "manual"
    assert run["error"] is None
    assert run["rows"]["leads"] > 1000
    for field in ("window_start", "window_end", "started_at", "finished_at"):
        assert run[field]
    loaded = run["rows"]["leads"]

    counted = json.loads(
        leadferry.ok(
            "query",
            "select count(*) as n, count(distinct uid) as u from acme_leads.leads",
            "--json",
        )
    )
    assert counted == [{"n": loaded, "u": loaded}]
    preview = json.loads(leadferry.ok("preview", "acme_leads", "--limit", "3", "--json"))
    assert len(preview) == 3
    assert {"uid", "date_added", "report_day", "first_name"} <= set(preview[0])
    assert not any(column.startswith("_dlt") for column in preview[0])
    sends = json.loads(leadferry.ok("preview", "acme_leads", "--table", "lead_sends", "--json"))
    assert sends
    assert "lead_uid" in sends[0]

    csv_path, parquet_path = tmp_path / "leads.csv", tmp_path / "out" / "leads.parquet"
    leadferry.ok("export", "acme_leads", "--format", "csv", "--output", str(csv_path))
    leadferry.ok("export", "acme_leads", "--format", "parquet", "--output", str(parquet_path))
    assert pq.read_table(parquet_path).num_rows == loaded
    assert duckdb.sql(f"select count(*) from read_csv('{csv_path}')").fetchall() == [(loaded,)]

    # The key is nowhere in clear under the home folder: not the metadata, not the warehouse.
    for path in leadferry.home.rglob("*"):
        if path.is_file():
            assert E2E_KEY.encode() not in path.read_bytes(), path


def test_a_rejected_key_is_named_and_never_echoed(leadferry, leadexec_server):
    add_account(leadferry, leadexec_server.url, name="wrong", key="this-is-not-the-key")
    result = leadferry("accounts", "test", "wrong")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: LeadExec rejected the API key for account wrong"
    leadferry.ok(
        "datasets",
        "create",
        "wrong_leads",
        "--account",
        "wrong",
        "--report",
        "leads",
        "--param",
        "lid=271",
    )
    result = leadferry("run", "wrong_leads")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: LeadExec rejected the API key for account wrong"
    assert "this-is-not-the-key" not in result.stdout + result.stderr
    (run,) = json.loads(leadferry.ok("history", "wrong_leads", "--json"))
    assert run["status"] == "failed"
    assert run["error"] == "LeadExec rejected the API key for account wrong"


def test_a_server_that_is_down_fails_the_run_with_its_reason(leadferry):
    account_in_store(leadferry, f"http://127.0.0.1:{free_port()}/")
    leadferry.ok(
        "datasets",
        "create",
        "down_leads",
        "--account",
        "acme",
        "--report",
        "leads",
        "--param",
        "lid=1",
    )
    result = leadferry("run", "down_leads")
    assert result.returncode == 1
    (line,) = [line for line in result.stderr.splitlines() if line.strip()]
    assert line.startswith("error: LeadExec: GET http://127.0.0.1:")
    assert "ConnectError" in line
    assert "gave up after 3 attempts" in line
    (run,) = json.loads(leadferry.ok("history", "down_leads", "--json"))
    assert run["status"] == "failed"
    assert "ConnectError" in run["error"]


def test_several_datasets_run_in_turn_and_one_that_fails_is_named(leadferry, leadexec_server):
    account_in_store(leadferry, leadexec_server.url)
    account_in_store(leadferry, f"http://127.0.0.1:{free_port()}/", name="down")
    for name, account in (("first_leads", "acme"), ("down_leads", "down"), ("last_leads", "acme")):
        leadferry.ok("datasets", "create", name, "--account", account, "--report", "leads",
                     "--param", "lid=271")  # fmt: skip

    unknown = leadferry("run", "first_leads", "no_such_leads")
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == "error: no dataset named 'no_such_leads'"
    with leadferry.store() as store:  # `leadferry history` is proven by the tests above
        assert store.list_runs("first_leads") == []  # nothing ran

    result = leadferry("run", "first_leads", "down_leads", "last_leads")
    assert result.returncode == 1
    (line,) = [line for line in result.stderr.splitlines() if line.strip()]
    assert line.startswith("error: down_leads: LeadExec: GET http://127.0.0.1:")
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == [
        "first_leads",
        "last_leads",
    ]
    with leadferry.store() as store:
        outcomes = {
            name: [run.status for run in store.list_runs(name)]
            for name in ("first_leads", "down_leads", "last_leads")
        }
    assert outcomes == {
        "first_leads": ["success"],
        "down_leads": ["failed"],
        "last_leads": ["success"],
    }


def test_500s_after_retries_leave_the_warehouse_as_it_was(
    leadferry, leadexec_server, failing_leadexec_server
):
    account_in_store(leadferry, leadexec_server.url)
    leadferry.ok(
        "datasets",
        "create",
        "acme_leads",
        "--account",
        "acme",
        "--report",
        "leads",
        "--param",
        "lid=272",
        "--days-back",
        "3",
    )
    leadferry.ok("run", "acme_leads")
    query = "select count(*) as n, max(_dlt_load_id) as load from acme_leads.leads"
    before = leadferry.ok("query", query, "--json")
    # A new base URL takes the key again (it would be sent there).
    leadferry.ok("accounts", "edit", "acme", "--set", f"base_url={failing_leadexec_server.url}",
                 env={"LEADFERRY_API_KEY": E2E_KEY})  # fmt: skip
    result = leadferry("run", "acme_leads")
    assert result.returncode == 1
    assert "answered HTTP 5" in result.stderr
    assert leadferry.ok("query", query, "--json") == before
    statuses = [r["status"] for r in json.loads(leadferry.ok("history", "acme_leads", "--json"))]
    assert statuses == ["failed", "success"]


def test_two_datasets_run_at_once_and_readers_are_never_stuck(leadferry, leadexec_server):
    account_in_store(leadferry, leadexec_server.url)
    for name, lid in (("first_leads", "271"), ("second_leads", "272")):
        leadferry.ok(
            "datasets",
            "create",
            name,
            "--account",
            "acme",
            "--report",
            "leads",
            "--param",
            f"lid={lid}",
            "--days-back",
            "9",
            "--update",
            "merge",
        )
    leadferry.ok("run", "first_leads")
    runs = [leadferry.start("run", name) for name in ("first_leads", "second_leads")]
    # A reader during the runs either reads or says the warehouse is busy: never hangs.
    reader = leadferry("query", "select count(*) as n from first_leads.leads", "--json")
    assert reader.returncode == 0 or "the warehouse is busy" in reader.stderr
    for process in runs:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
    for name in ("first_leads", "second_leads"):
        (row,) = json.loads(
            leadferry.ok(
                "query",
                f"select count(*) as n, count(distinct uid) as u from {name}.leads",
                "--json",
            )
        )
        assert row["n"] > 0
        assert row["n"] == row["u"]


def test_the_same_dataset_cannot_run_twice_at_once(leadferry, leadexec_server):
    account_in_store(leadferry, leadexec_server.url)
    leadferry.ok(
        "datasets",
        "create",
        "acme_leads",
        "--account",
        "acme",
        "--report",
        "leads",
        "--param",
        "lid=271",
        "--days-back",
        "9",
    )
    processes = [leadferry.start("run", "acme_leads") for _ in range(3)]
    outcomes = [(p.wait(timeout=300), p.communicate()[1]) for p in processes]
    assert any(code == 0 for code, _ in outcomes)
    for code, err in outcomes:
        if code != 0:
            assert code == 1
            assert "already running" in err
    runs = json.loads(leadferry.ok("history", "acme_leads", "--json"))
    done = sorted((r["started_at"], r["finished_at"]) for r in runs if r["status"] == "success")
    for (_, first_end), (second_start, _) in zip(done, done[1:], strict=False):
        assert first_end <= second_start, "two runs of one dataset overlapped"
