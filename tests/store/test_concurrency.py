"""Two claimants of one dataset, in threads or processes: exactly one runs it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from leadferry.errors import BusyError
from leadferry.settings import Settings
from leadferry.store import STALE_RUN_ERROR, DatasetSpec, Run, Store
from leadferry.store.database import create_store_engine
from leadferry.store.orm import RunRow
from leadferry.store.queries import process_is_alive

from ._support import T0

CLAIMANTS = 6
PROCESSES = 3  # each child spends a second or two importing SQLAlchemy

# A claimant process: opens the store, says ready, waits for the start signal, claims the run.
CLAIM = """
import sys, time
from datetime import UTC, datetime
from pathlib import Path
from leadferry.errors import BusyError
from leadferry.settings import Settings
from leadferry.store import Store
home, go = Path(sys.argv[1]), Path(sys.argv[2])
with Store.open(Settings(home=home, secret_key=None)) as store:
    store.list_runs("acme_leads")  # warm up (mappers, statement cache) so the race is tight
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.002)
    try:
        run = store.start_run("acme_leads", "scheduled", None, None, datetime.now(UTC))
    except BusyError:
        print("busy", flush=True)
    else:
        print(f"won {run.id}", flush=True)  # and exit, leaving the run "running"
"""


def child_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFERRY_")}
    return env | {"LEADFERRY_HOME": str(home)}


def claim_in_processes(home: Path, count: int) -> list[str]:
    go = home / "go"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIM, str(home), str(go)],
            stdout=subprocess.PIPE,
            text=True,
            env=child_env(home),
        )
        for _ in range(count)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
        go.touch()
        outputs = [child.communicate(timeout=60)[0].strip() for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    assert [child.returncode for child in children] == [0] * count
    return outputs


@pytest.mark.parametrize("shared", [True, False], ids=["one-store", "a-store-each"])
def test_threads_racing_to_start_a_run_let_one_win(
    settings: Settings, store: Store, dataset: str, shared: bool
) -> None:
    barrier = threading.Barrier(CLAIMANTS)
    won: list[Run] = []
    busy: list[BusyError] = []

    def claim() -> None:
        own = store if shared else Store.open(settings)
        try:
            barrier.wait()
            won.append(own.start_run(dataset, "scheduled", None, None, T0))
        except BusyError as exc:
            busy.append(exc)
        finally:
            if not shared:
                own.close()

    threads = [threading.Thread(target=claim) for _ in range(CLAIMANTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (len(won), len(busy)) == (1, CLAIMANTS - 1)
    assert [r.id for r in store.list_runs(dataset)] == [won[0].id]


@pytest.mark.e2e
def test_processes_racing_to_start_a_run_let_one_win(
    settings: Settings, store: Store, dataset: str
) -> None:
    outputs = claim_in_processes(settings.home, PROCESSES)
    assert sorted(o.split()[0] for o in outputs) == ["busy"] * (PROCESSES - 1) + ["won"]
    runs = store.list_runs(dataset)
    assert len(runs) == 1
    # The winner exited without finishing its run: reading the history settles it.
    assert (runs[0].status, runs[0].error) == ("interrupted", STALE_RUN_ERROR)
    assert runs[0].pid != os.getpid()


@pytest.mark.e2e
def test_a_run_left_by_a_dead_process_is_interrupted_when_next_read(
    settings: Settings, store: Store, dataset: str
) -> None:
    (output,) = claim_in_processes(settings.home, 1)  # the child exits with its run "running"
    orphan = store.get_run(int(output.split()[1]))
    # It loaded nothing (there is no warehouse): the first read settles it as interrupted.
    assert (orphan.status, orphan.error) == ("interrupted", STALE_RUN_ERROR)
    assert orphan.pid is not None
    assert not process_is_alive(orphan.pid, orphan.host)
    now = T0 + timedelta(hours=1)
    run = store.start_run(dataset, "manual", None, None, now)
    assert run.status == "running"
    assert store.get_run(orphan.id) == orphan
    assert [r.id for r in store.list_runs(dataset)] == [run.id, orphan.id]


def test_a_run_left_by_a_dead_process_is_interrupted_when_the_next_starts(
    settings: Settings, store: Store, dataset: str
) -> None:
    (output,) = claim_in_processes(settings.home, 1)
    now = T0 + timedelta(hours=1)
    run = store.start_run(dataset, "manual", None, None, now)  # settles before it reads
    orphan = store.get_run(int(output.split()[1]))
    assert (orphan.status, orphan.finished_at) == ("interrupted", now)
    assert [r.id for r in store.list_runs(dataset)] == [run.id, orphan.id]


@pytest.mark.e2e
def test_a_sweep_interrupts_only_the_runs_of_dead_processes(
    settings: Settings, store: Store, dataset: str
) -> None:
    (output,) = claim_in_processes(settings.home, 1)
    orphan_id = int(output.split()[1])
    store.create_dataset(DatasetSpec("acme_calls", "acme", "leads", {"lid": 2}))
    alive = store.start_run("acme_calls", "manual", None, None, T0)
    now = T0 + timedelta(hours=1)
    (swept,) = store.settle_dead_runs(now)
    assert (swept.id, swept.status, swept.finished_at) == (orphan_id, "interrupted", now)
    assert store.get_run(orphan_id) == swept
    assert store.get_run(alive.id).status == "running"
    assert store.settle_dead_runs(now) == []


@pytest.mark.e2e
def test_processes_elsewhere_or_alive_are_presumed_running() -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(dead.stdout)
    here = socket.gethostname()
    assert not process_is_alive(pid, here)
    assert process_is_alive(pid, "another-host")
    assert process_is_alive(None, here)
    assert process_is_alive(os.getpid(), here)
    assert process_is_alive(1, here)  # init: alive, even if owned by another user


def test_the_database_refuses_two_running_runs_of_a_dataset(
    settings: Settings, store: Store, dataset: str
) -> None:
    ran = store.start_run(dataset, "manual", None, None, T0)
    engine = create_store_engine(settings.metadata_url)
    try:
        with Session(engine) as session:
            session.add(
                RunRow(
                    dataset_id=store.get_dataset(dataset).id,
                    trigger="manual",
                    status="running",
                    started_at=T0,
                    rows={},
                    schema_changes=[],
                )
            )
            with pytest.raises(IntegrityError):
                session.commit()
    finally:
        engine.dispose()
    assert [r.id for r in store.list_runs(dataset)] == [ran.id]
