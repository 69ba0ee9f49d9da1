"""Real `leadferry run` processes loading into a PostgreSQL warehouse: every update method, the
readers (query, preview, export), and kill -9 in the middle of a load leaving the dataset all as
before or all as after, with a history that says which."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections.abc import Iterator

import psycopg
import pyarrow.parquet as pq
import pytest

from leadferry.postgres import LOADING
from tests.e2e.conftest import Leadferry, add_account, load_snapshot
from tests.postgres_server import fresh_database

pytestmark = [pytest.mark.e2e, pytest.mark.services]

METHODS = ("replace", "append", "merge", "partition")


@pytest.fixture
def warehouse_url() -> Iterator[str]:
    with fresh_database() as url:
        yield url


@pytest.fixture
def team(leadferry: Leadferry, warehouse_url: str, leadexec_server) -> Leadferry:
    """leadferry with its warehouse on PostgreSQL, and a LeadExec account."""
    leadferry.env["LEADFERRY_WAREHOUSE_URL"] = warehouse_url
    add_account(leadferry, leadexec_server.url)
    return leadferry


def create(leadferry: Leadferry, name: str, method: str, days: int = 3) -> None:
    leadferry.ok("datasets", "create", name, "--account", "acme", "--report", "leads",
                 "--param", "lid=271", "--days-back", str(days), "--update", method)  # fmt: skip


def snapshot(url: str, name: str) -> dict[str, object]:
    """Rows per load id of each table of dataset *name*, and its recorded loads."""
    with psycopg.connect(url) as connection:
        tables = [
            table
            for (table,) in connection.execute(
                "select table_name from information_schema.tables where table_schema = %s",
                [name],
            ).fetchall()
        ]
        return load_snapshot(connection, name, tables)


def assert_history_agrees(leadferry: Leadferry, url: str, name: str) -> list[dict]:
    """Each run of *name* succeeded iff its load is recorded, with the rows recorded."""
    runs = json.loads(leadferry.ok("history", name, "--json", "--limit", "1000"))
    committed = {run: (load, rows) for load, (run, rows) in snapshot(url, name)["loads"].items()}
    for run in runs:
        assert run["status"] != "running", run
        if run["status"] == "success":
            assert committed[run["id"]] == (run["load_id"], run["rows"])
        else:
            assert run["id"] not in committed, run
    return runs


def test_every_update_method_loads_into_postgresql_and_reads_back(team, warehouse_url, tmp_path):
    for method in METHODS:
        create(team, f"team_{method}", method)
    for _ in range(2):
        team.ok("run", *(f"team_{method}" for method in METHODS))
    with psycopg.connect(warehouse_url) as connection:
        for method in METHODS:
            name = f"team_{method}"
            runs = assert_history_agrees(team, warehouse_url, name)
            assert [run["status"] for run in runs] == ["success", "success"]
            loaded = runs[0]["rows"]["leads"]
            assert loaded > 100
            total, distinct = connection.execute(
                f"select count(*), count(distinct uid) from {name}.leads"
            ).fetchone()
            assert (total, distinct) == (
                (2 * loaded, loaded) if method == "append" else (loaded,) * 2
            )
            indexes = {
                definition.split(" USING btree ")[1]
                for (definition,) in connection.execute(
                    "select indexdef from pg_indexes where schemaname = %s", [name]
                ).fetchall()
            }
            assert "(report_day)" in indexes
            assert "(lead_uid)" in indexes
            if method == "merge":
                assert "(uid)" in indexes
        types = dict(
            connection.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'team_merge' and table_name = 'leads'"
            ).fetchall()
        )
    assert types["uid"] == "bigint"
    assert types["date_added"] == "timestamp with time zone"
    assert types["report_day"] == "date"
    assert not (team.home / "warehouse.duckdb").exists()

    (counted,) = json.loads(
        team.ok("query", "select count(*) as n from team_merge.leads", "--json", "--timeout", "30")
    )
    assert counted["n"] == loaded
    refused = team("query", "copy team_merge.leads to '/tmp/leadferry-e2e.csv'")
    assert refused.returncode != 0
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "not COPY" in refused.stderr
    preview = json.loads(team.ok("preview", "team_merge", "--limit", "3", "--json"))
    assert len(preview) == 3
    assert {"uid", "date_added", "report_day"} <= set(preview[0])
    assert not any(column.startswith("_dlt") for column in preview[0])
    parquet_path = tmp_path / "leads.parquet"
    team.ok("export", "team_merge", "--format", "parquet", "--output", str(parquet_path))
    assert pq.read_table(parquet_path).num_rows == loaded
    csv_path = tmp_path / "sends.csv"
    team.ok("export", "team_merge", "--table", "lead_sends", "--format", "csv",
            "--output", str(csv_path))  # fmt: skip
    assert csv_path.read_text().splitlines()[0].startswith("lead_uid,")

    team.ok("datasets", "remove", "team_append", "--drop-data")
    with psycopg.connect(warehouse_url) as connection:
        schemas = {
            schema
            for (schema,) in connection.execute(
                "select nspname from pg_namespace where nspname like 'team%'"
            ).fetchall()
        }
    assert schemas == {"team_replace", "team_merge", "team_partition"}


def loading(monitor: psycopg.Connection) -> bool:
    """Whether a run's connection is inside its load's transaction."""
    return bool(
        monitor.execute(
            "select count(*) from pg_stat_activity where application_name = %s "
            "and xact_start is not null",
            [LOADING],
        ).fetchone()[0]
    )


def test_runs_killed_while_they_load_leave_all_old_or_all_new(team, warehouse_url):
    """For each method: a first run, then one killed at a random instant of its load."""
    seed = random.randrange(1 << 30)
    chance = random.Random(seed)
    hits = 0
    with psycopg.connect(warehouse_url, autocommit=True) as monitor:
        for method in METHODS:
            name = f"killed_{method}"
            create(team, name, method, days=9)
            team.ok("run", name)
            before = snapshot(warehouse_url, name)
            process = team.start("run", name)
            since = None
            delay = chance.uniform(0.0, 0.2)
            while process.poll() is None:
                if since is None and loading(monitor):
                    since = time.monotonic()
                if since is not None and time.monotonic() - since >= delay:
                    os.kill(process.pid, signal.SIGKILL)
                    hits += process.wait(timeout=60) == -signal.SIGKILL
                    break
                time.sleep(0.002)
            process.communicate(timeout=60)
            after = snapshot(warehouse_url, name)
            new = set(after["loads"]) - set(before["loads"])
            where = f"seed {seed}: {name} killed {delay:.3f}s into its load"
            if not new:
                assert after == before, where
            else:
                (load,) = new
                _run, rows = after["loads"][load]
                for table in ("leads", "lead_sends"):
                    assert after["tables"][table][load] == rows.get(table, 0), where
                for counts in after["tables"].values():
                    assert set(counts) <= set(after["loads"]), where
            # The next command settles the killed run from _leadferry_loads.
            assert_history_agrees(team, warehouse_url, name)
    assert hits, f"seed {seed}: no run was killed while it loaded"
