"""A run whose process died is settled by the next read, as the warehouse tells: a process that
committed its load and died before recording it is a success with its rows, one that died before
committing is interrupted, and the dataset's incremental cursor follows what committed."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

from leadferry.store import DatasetSpec

# A run's process: claims the run, commits one lead into the warehouse as that run (or not),
# and exits without recording the end of its run, as a process killed there would.
DIES = """
import datetime as dt, sys
from pathlib import Path
import pyarrow as pa, pyarrow.parquet as pq
from leadferry.apply import LoadSpec, apply_load
from leadferry.connectors.base import Table
from leadferry.settings import Settings
from leadferry.store import Store
from leadferry.warehouse import warehouse_writer
home, commit = Path(sys.argv[1]), sys.argv[2] == "commit"
settings = Settings(home=home)
with Store.open(settings) as store:
    run = store.start_run("acme_leads", "manual", None, None, dt.datetime.now(dt.UTC))
    cursor = dt.datetime(2026, 11, 23, 19, 0, tzinfo=dt.UTC)
    rows = pa.table({"uid": [7], "updated": [cursor], "_dlt_load_id": ["load-7"]})
    pq.write_table(rows, home / "leads.parquet")
    spec = LoadSpec(
        schema="acme_leads", method="append", tables=(Table("leads"),),
        load_id="load-7", run_id=run.id, rows={"leads": 1}, cursor=cursor,
    )
    with warehouse_writer(settings, "a test") as (connection, dialect):
        if commit:
            apply_load(connection, spec, {"leads": [str(home / "leads.parquet")]}, dialect)
        else:  # killed inside the transaction
            connection.execute("begin transaction")
            connection.execute("create schema acme_leads")
    print(run.id)
"""


def die_in_a_process(home: Path, *, commit: bool) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFERRY_")}
    done = subprocess.run(
        [sys.executable, "-c", DIES, str(home), "commit" if commit else "no"],
        capture_output=True,
        text=True,
        env=env | {"LEADFERRY_HOME": str(home)},
        timeout=120,
        check=True,
    )
    return int(done.stdout.split()[-1])


def make_dataset(store):
    store.create_account(
        "acme", "leadexec", {"base_url": "http://leadexec.test/"}, {"api_key": "k"}
    )
    store.create_dataset(
        DatasetSpec(
            name="acme_leads",
            account="acme",
            report="leads",
            params={"lid": 271},
            update_method="merge",
            incremental={"lookback_minutes": 0},
        )
    )


def test_a_run_that_committed_before_dying_is_a_success_with_its_rows(store, settings):
    make_dataset(store)
    run_id = die_in_a_process(settings.home, commit=True)
    # Any read settles it: here the dataset's page or `datasets show`.
    dataset = store.get_dataset("acme_leads")
    assert dataset.last_run is not None
    assert dataset.last_run.id == run_id
    assert (dataset.last_run.status, dataset.last_run.rows) == ("success", {"leads": 1})
    assert dataset.last_run.load_id == "load-7"
    assert dataset.state.cursor == dt.datetime(2026, 11, 23, 19, 0, tzinfo=dt.UTC)
    assert dataset.last_run.finished_at is not None
    assert dataset.last_run.finished_at <= dt.datetime.now(dt.UTC)


def test_a_run_that_died_before_committing_is_interrupted_and_moves_no_cursor(store, settings):
    make_dataset(store)
    run_id = die_in_a_process(settings.home, commit=False)
    (run,) = store.list_runs("acme_leads")
    assert (run.id, run.status, run.rows) == (run_id, "interrupted", {})
    assert store.get_dataset("acme_leads").state.cursor is None
