"""Real `leadferry` processes against a real home: the query sandbox and its timeout, a run that
cancels a long query, exports that appear whole or not at all, and every failure one line
(never a traceback) with its exit status: corrupt files, a full disk, Ctrl-C."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time

import duckdb
import pytest

from tests.conftest import lock_is_held
from tests.e2e.conftest import LEADFERRY, Leadferry, account_in_store

pytestmark = pytest.mark.e2e

SLOW = "select count(*) from range(1000000000) a, range(1000000) b where a.range + b.range = -1"


def one_line(result: subprocess.CompletedProcess, status: int) -> str:
    """The single `error: ...` line of a failed command (and no traceback anywhere)."""
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture(scope="module")
def loaded_home(tmp_path_factory, leadexec_server) -> Leadferry:
    """A home with dataset acme_leads loaded once from the simulator."""
    leadferry = Leadferry(tmp_path_factory.mktemp("loaded") / "home")
    account_in_store(leadferry, leadexec_server.url)
    leadferry.ok("datasets", "create", "acme_leads", "--account", "acme", "--report", "leads",
                 "--param", "lid=271", "--days-back", "3")  # fmt: skip
    leadferry.ok("run", "acme_leads")
    return leadferry


@pytest.fixture
def loaded(loaded_home, tmp_path) -> Leadferry:
    """A copy of ``loaded_home``, this test's to break."""
    return loaded_home.copy(tmp_path / "home")


def test_query_cannot_read_the_key_or_any_file_or_write_anything(loaded, tmp_path):
    key_file = loaded.home / "secret.key"
    key_file.write_text("a-key-file-the-query-must-not-read")
    attempts = [
        f"select content from read_text('{key_file}')",
        "select * from read_csv('/etc/passwd')",
        f"copy (select * from acme_leads.leads) to '{tmp_path}/x.parquet'",
        f"export database '{tmp_path}/dump'",
        "install httpfs",
        "select 1; select 2",
    ]
    for sql in attempts:
        line = one_line(loaded("query", sql), 2)
        assert "a-key-file-the-query-must-not-read" not in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]
    counted = json.loads(loaded.ok("query", "select count(*) as n from acme_leads.leads", "--json"))
    assert counted[0]["n"] > 0


def test_query_timeout_cancels_it_with_one_line(loaded):
    line = one_line(loaded("query", "--timeout", "0.5", SLOW), 1)
    assert "ran longer than 0.5s and was cancelled" in line


def test_a_run_cancels_a_long_query_instead_of_failing_behind_it(loaded):
    query = loaded.start("query", "--timeout", "3600", SLOW)
    lock = loaded.home / "warehouse.duckdb.lock"
    while query.poll() is None and not lock_is_held(lock):
        time.sleep(0.05)
    assert query.poll() is None, query.stderr.read()
    # With a writer timeout of ten minutes the run would fail behind an hour-long query.
    assert "acme_leads: leads:" in loaded.ok("run", "acme_leads")
    _out, err = query.communicate(timeout=120)
    assert query.returncode == 1
    assert err.strip() == (
        "error: the read was cancelled: a run is loading into the warehouse; "
        "try again when it has finished"
    )
    (latest, *_older) = json.loads(loaded.ok("history", "acme_leads", "--json"))
    assert latest["status"] == "success"


def test_export_refuses_devices_pipes_folders_and_empty_names(loaded, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    folder = tmp_path / "folder"
    folder.mkdir()
    cases = [
        ("/dev/full", "exists and is not a regular file"),
        (str(fifo), "exists and is not a regular file"),
        (str(folder), "is a folder"),
        (f"{folder}/", "names a folder"),
        ("", "--output is empty"),
    ]
    for output, message in cases:
        line = one_line(loaded("export", "acme_leads", "--format", "csv", "--output", output), 2)
        assert message in line
    assert fifo.is_fifo()
    assert list(folder.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "home", "pipe"]


def test_export_of_a_dataset_that_never_ran_says_to_run_it(loaded, tmp_path):
    loaded.ok("datasets", "create", "fresh", "--account", "acme", "--report", "leads",
              "--param", "lid=272")  # fmt: skip
    line = one_line(loaded("export", "fresh", "--format", "csv", "-o", str(tmp_path / "f.csv")), 2)
    assert line == "error: fresh has not run yet: `leadferry run fresh` runs it now"
    assert not (tmp_path / "f.csv").exists()


EXPORTED_ROWS = 1_000_000
"""Seconds of CSV to write, most of it timestamps (about 3 CPU-s a million rows)."""


def test_ctrl_c_during_an_export_leaves_no_file(loaded, tmp_path):
    # The loaded dataset's table grows so that writing it takes seconds: Ctrl-C comes meanwhile.
    warehouse = duckdb.connect(str(loaded.home / "warehouse.duckdb"))
    warehouse.execute(
        "create or replace table acme_leads.leads as select range as uid, "
        f"'lead number ' || range as name, now() as date_added from range({EXPORTED_ROWS})"
    )
    warehouse.close()
    out = tmp_path / "out"
    out.mkdir()
    export = loaded.start("export", "acme_leads", "--format", "csv", "-o", str(out / "big.csv"))
    while export.poll() is None and not any(out.iterdir()):
        time.sleep(0.01)
    export.send_signal(signal.SIGINT)
    _stdout, err = export.communicate(timeout=120)
    # Stopped in time, nothing is left; too late to stop, the file is whole.
    if export.returncode == 130:
        assert err.strip() == "interrupted"
        assert list(out.iterdir()) == []
    else:
        assert export.returncode == 0, err
        assert [p.name for p in out.iterdir()] == ["big.csv"]
        with (out / "big.csv").open() as written:
            assert sum(1 for _line in written) == EXPORTED_ROWS + 1


def _on_a_small_disk(
    loaded,
    size: int,
    args: list[str],
    *,
    home_on_it: bool,
    prepare: str = "true",
    then: str = "ls -A DISK",
) -> tuple[subprocess.CompletedProcess, str]:
    """`leadferry ARGS` with a tmpfs of *size* bytes mounted on ``DISK`` (the home copied onto
    it when *home_on_it*), in a user and mount namespace of its own: no root needed where
    unprivileged user namespaces are allowed. *prepare* and *then* are shell run before and
    after, on the same disk; ``DISK`` in them and in *args* is the disk, ``LEADFERRY`` the
    command. Returns the result and, once the disk is gone, what *then* printed."""
    assert shutil.which("unshare"), "these tests need util-linux's unshare"
    disk = loaded.home.parent / "small-disk"
    disk.mkdir()
    output = loaded.home.parent / "small-disk.txt"
    home = f"{disk}/home" if home_on_it else str(loaded.home)
    copy = f"cp -r {loaded.home} {home} && " if home_on_it else ""

    def place(shell: str) -> str:
        return shell.replace("DISK", str(disk)).replace("LEADFERRY", LEADFERRY)

    command = place(" ".join(f"'{arg}'" for arg in args))
    script = (
        f"export LEADFERRY_HOME={home}; mount -t tmpfs -o size={size} tmpfs {disk} && "
        f"{copy}{place(prepare)} && {LEADFERRY} {command}; status=$?; "
        f"({place(then)}) > {output} 2>&1; exit $status"
    )
    result = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "bash", "-c", script],
        env=loaded.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result, output.read_text()


@pytest.mark.parametrize(
    "room",
    [pytest.param(400_000, id="the warehouse fills it"), pytest.param(150_000, id="dlt fills it")],
)
def test_a_full_disk_during_a_run_is_one_line_and_the_history_says_the_same(loaded, room):
    (loaded.home / "warehouse.duckdb").unlink()
    shutil.rmtree(loaded.home / "pipelines")
    size = (loaded.home / "leadferry.sqlite").stat().st_size + room
    result, history = _on_a_small_disk(
        loaded,
        size,
        ["run", "acme_leads"],
        home_on_it=True,
        then="rm -rf $LEADFERRY_HOME/pipelines; LEADFERRY history acme_leads --json 2>/dev/null",
    )
    line = one_line(result, 1)
    assert "space" in line or "full" in line
    latest = json.loads(history)[0]
    assert latest["status"] == "failed"
    assert latest["error"] in line


def test_a_full_disk_during_an_export_leaves_the_old_file_and_no_other(loaded):
    result, listing = _on_a_small_disk(
        loaded,
        100_000,
        ["export", "acme_leads", "--format", "csv", "-o", "DISK/old.csv"],
        home_on_it=False,
        prepare="echo 'the old export' > DISK/old.csv",
        then="ls -A DISK; cat DISK/old.csv",
    )
    line = one_line(result, 1)
    assert line.endswith("old.csv: No space left on device; nothing was written")
    assert listing == "old.csv\nthe old export\n"


def test_a_corrupt_warehouse_is_one_line_everywhere_and_the_run_keeps_its_reason(loaded, tmp_path):
    warehouse = loaded.home / "warehouse.duckdb"
    warehouse.write_bytes(os.urandom(300_000))
    for args in (
        ["query", "select 1"],
        ["preview", "acme_leads"],
        ["export", "acme_leads", "--format", "parquet", "-o", str(tmp_path / "x.parquet")],
    ):
        line = one_line(loaded(*args), 1)
        assert f"cannot open the warehouse {warehouse}" in line
        assert "restore it from a backup" in line
    line = one_line(loaded("run", "acme_leads"), 1)
    assert line.startswith("error: loading into the warehouse failed: ")
    assert "with exception:" not in line
    assert "not a valid DuckDB database file" in line
    (latest, *_older) = json.loads(loaded.ok("history", "acme_leads", "--json"))
    assert "not a valid DuckDB database file" in latest["error"]


def test_a_corrupt_store_is_one_line_for_every_command_and_serve(loaded):
    store = loaded.home / "leadferry.sqlite"
    store.write_bytes(os.urandom(100_000))
    expected = (
        f"error: the metadata store {store} is unreadable (file is not a database): "
        "restore it from a backup, or move it aside to start afresh"
    )
    for args in (["datasets", "list"], ["history", "acme_leads"], ["serve", "--port", "9"]):
        assert one_line(loaded(*args), 1) == expected
    # What needs no store still works.
    assert json.loads(loaded.ok("query", "select 42 as n", "--json")) == [{"n": 42}]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["window", "--date", "9999-12-31"], "the window starts in the future (9999-12-31;"),
        (["window", "--days-back", "99999999999999999999"], "is more than a century back"),
        (["window", "--from", "2026-01-01", "--to", "9999-12-31"], "the calendar ends on"),
        (["tokens", "revoke", "99999999999999999999"], "no API token with id 99999999999999999999"),
        (["window", "--days-back", "many"], "Invalid value for '--days-back'"),
        (["query", "--timeout", "0", "select 1"], "Invalid value for '--timeout'"),
    ],
)
def test_bad_input_is_one_line_with_exit_2(leadferry, args, message):
    assert message in one_line(leadferry(*args), 2)


def test_a_bad_setting_in_the_environment_is_one_line(leadferry):
    line = one_line(leadferry("datasets", "list", env={"LEADFERRY_CONCURRENCY": "lots"}), 2)
    assert line.startswith("error: LEADFERRY_CONCURRENCY in the environment: ")
