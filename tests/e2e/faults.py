"""Randomised faults against real `leadferry run` processes and the invariants checked after each.

A :class:`FaultBench` owns a leadferry home with one dataset per update method on a well-behaved
LeadExec simulator, one per method on a flaky one (5xx, 429 and truncated lists), and one per
method on a SalesExec simulator that drops tokens before their lifetime. Each fault is one of:

- ``kill-fetch``: ``kill -9`` of a run at a random instant before its load starts;
- ``kill-load``: ``kill -9`` at a random instant after it took the warehouse to load;
- ``kill-batch``: ``kill -9`` of a ``leadferry run A B``, two datasets in one process, at a random
  instant of one's fetch or load: the process keeps the warehouse attached between its loads,
  so the first load may be committed but not yet checkpointed when it dies;
- ``http``: a run against the flaky simulator, left to succeed or fail;
- ``latency``: a run whose vendor answers slower than the run waits (a timeout of 30-300 ms),
  so that requests time out and are retried, until success or a failure;
- ``token``: a run against the SalesExec simulator, whose tokens expire early at random;
- ``concurrent``: two runs of one dataset and one of another started at once;
- ``disk-full``: a run on a disk with 0-3 MB left (the home is a tmpfs of its own; where the
  machine cannot mount one, this kind is not drawn and the tally says so).

After each fault: every process has ended, and

- the dataset's tables are all as before or all as after: either nothing changed, or exactly one
  new load is recorded in ``_leadferry_loads`` and every table holds exactly that load's recorded
  rows (``lead_sends`` new beside old ``leads`` fails this);
- no row belongs to a load the warehouse has not recorded;
- no merge key twice (every method but append keeps ``uid`` unique);
- no load applied twice (append: each recorded load's rows are there exactly once);
- the history agrees with the warehouse (read by a real ``leadferry history``, which settles dead
  runs): no run left running, a success iff its load is recorded, with the recorded rows;
- no file under ``$LEADFERRY_HOME``, and no run's error output, holds a vendor secret (the
  LeadExec key, the SalesExec password), in clear or percent-encoded.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from leadferry.dates import DateSelection
from leadferry.settings import Settings
from leadferry.store import DatasetSpec, Store
from tests.e2e.conftest import LEADFERRY, Leadferry, load_snapshot

METHODS = ("replace", "append", "merge", "partition")
KINDS = (
    "kill-fetch",
    "kill-load",
    "kill-batch",
    "http",
    "latency",
    "token",
    "concurrent",
    "disk-full",
)
FAULT_KEY = "fault+key/=9f8e7d6c"
"""The vendor key: a '+', '/' and '=' so that every encoding of it differs from the clear text."""
FAULT_USER, FAULT_PASSWORD = "faults", "tok+pass/=5e4d3c2b"
"""The SalesExec login, its password spelled to differ in every encoding too."""
KEY_SPELLINGS = tuple(
    spelling(secret)
    for secret in (FAULT_KEY, FAULT_PASSWORD)
    for spelling in (str, lambda s: urllib.parse.quote(s, safe=""), urllib.parse.quote_plus)
)
ACCOUNTS = ("clean", "flaky", "token")
MAIN_TABLE = {
    "clean": ("leads", "uid"),
    "flaky": ("leads", "uid"),
    "token": ("all_actions", "action_uid"),
}
"""Per account, the main table of its datasets and its key (unique but in append datasets)."""
DISK_SLACK = 3 * 2**20


@dataclass
class Tally:
    """What a soak did: faults per kind and how their runs ended, invariants checked."""

    faults: Counter[str] = field(default_factory=Counter)
    endings: Counter[str] = field(default_factory=Counter)
    checks: int = 0
    violations: list[str] = field(default_factory=list)
    not_drawn: dict[str, str] = field(default_factory=dict)
    """Kinds this machine cannot inject, and why."""

    @classmethod
    def from_json(cls, figures: dict) -> Tally:
        """The tally :meth:`as_json` wrote, to go on counting."""
        return cls(
            faults=Counter(figures["faults"]),
            endings=Counter(figures["endings"]),
            checks=figures["invariant_checks"],
            violations=list(figures["violations"]),
            not_drawn=dict(figures["not_drawn"]),
        )

    def as_json(self) -> dict[str, object]:
        return {
            "faults": dict(self.faults),
            "endings": dict(self.endings),
            "invariant_checks": self.checks,
            "violations": self.violations,
            "not_drawn": self.not_drawn,
        }


class FaultBench:
    """*urls* are the base URLs of the simulators of each account in :data:`ACCOUNTS`; *disk*,
    when the home is a tmpfs of its own, lets ``disk-full`` fill it."""

    def __init__(self, home: Path, urls: dict[str, str], seed: int, *, disk: bool) -> None:
        self.leadferry = Leadferry(home)
        self.leadferry.env["LEADFERRY_HTTP_MAX_WAIT"] = "2"
        self.random = random.Random(seed)
        self.settings = Settings(home=home, secret_key=self.leadferry.env["LEADFERRY_SECRET_KEY"])
        self.tally = Tally()
        self.kinds = KINDS
        if not disk:
            self.kinds = tuple(kind for kind in KINDS if kind != "disk-full")
            self.tally.not_drawn["disk-full"] = "the home could not be a tmpfs of its own"
        self.store = Store.open(self.settings)
        for account in ACCOUNTS:
            if account == "token":
                self.store.create_account(
                    account,
                    "salesexec",
                    {"base_url": urls[account], "username": FAULT_USER},
                    {"password": FAULT_PASSWORD},
                )
            else:
                self.store.create_account(
                    account, "leadexec", {"base_url": urls[account]}, {"api_key": FAULT_KEY}
                )
            report, _key = MAIN_TABLE[account]
            for method in METHODS:
                self.store.create_dataset(
                    DatasetSpec(
                        name=self.dataset(method, account),
                        account=account,
                        report=report,
                        params={"lid": 271} if report == "leads" else {},
                        date_selection=DateSelection(days_back=3),
                        update_method=method,
                    )
                )

    @staticmethod
    def dataset(method: str, account: str = "clean") -> str:
        return f"{account}_{method}"

    # -- faults ---------------------------------------------------------------------------------

    def inject(self, kind: str | None = None) -> None:
        """One fault (*kind*, else a random one), then every invariant; violations are
        collected, not raised."""
        kind = kind or self.random.choice(self.kinds)
        method = self.random.choice(METHODS)
        account = {"http": "flaky", "token": "token"}.get(kind, "clean")
        names = [self.dataset(method, account)]
        if kind == "kill-batch":
            names.append(self.dataset(self.random.choice([m for m in METHODS if m != method])))
        before = self.snapshot()
        if kind in ("kill-fetch", "kill-load"):
            kind = "kill-" + self.kill(names, during_load=kind == "kill-load")
        elif kind == "kill-batch":
            kind = "kill-batch-" + self.kill(names, during_load=self.random.random() < 0.5)
        elif kind in ("http", "token"):
            self.finish([self.start(names[0])])
        elif kind == "latency":
            timeout = f"{self.random.uniform(0.03, 0.3):.3f}"
            self.finish([self.start(names[0], LEADFERRY_HTTP_TIMEOUT=timeout)])
        elif kind == "disk-full":
            self.on_a_full_disk(names[0])
        else:
            other = self.dataset(self.random.choice([m for m in METHODS if m != method]))
            names.append(other)
            self.finish([self.start(names[0]), self.start(names[0]), self.start(other)])
        self.tally.faults[kind] += 1
        after = self.snapshot()
        for name in self.all_datasets():
            where = f"{kind} {'+'.join(names)}"
            self.check(where, name, before[name], after[name], changed=name in names)
        # After a kill or a full disk, the next command must settle the run its process could
        # not: a real one reads the history.
        for name in names:
            self.check_history(kind, name, real=kind.startswith("kill") or kind == "disk-full")
        self.check_secrets()

    def all_datasets(self) -> list[str]:
        return [self.dataset(m, account) for m in METHODS for account in ACCOUNTS]

    def on_a_full_disk(self, name: str) -> None:
        """Run *name* with 0 to DISK_SLACK bytes left on the home's disk, then free it."""
        filler = self.settings.home / "filler"
        stats = os.statvfs(self.settings.home)
        left = self.random.randrange(DISK_SLACK)
        size = stats.f_bavail * stats.f_frsize - left
        with filler.open("wb") as handle:
            if size > 0:
                os.posix_fallocate(handle.fileno(), 0, size)
        try:
            self.finish([self.start(name)])
        finally:
            filler.unlink()

    def start(self, *names: str, **env: str) -> subprocess.Popen:
        return subprocess.Popen(
            [LEADFERRY, "run", *names],
            env=self.leadferry.env | env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def finish(self, processes: list[subprocess.Popen], *, datasets: int = 1) -> None:
        """Wait for *processes*, each a run of *datasets* datasets: one that failed must have
        said why in one line for each dataset that failed, at most *datasets* lines."""
        for process in processes:
            _out, err = process.communicate(timeout=300)
            self.tally.endings["success" if process.returncode == 0 else "failed"] += 1
            if process.returncode != 0 and not 1 <= len(err.strip().splitlines()) <= datasets:
                self.violate(f"a failed run did not say why in one line: {err[-500:]!r}")
            for spelling in KEY_SPELLINGS:
                if spelling in err:
                    self.violate(f"a run printed a vendor secret as {spelling!r}")

    def kill(self, names: list[str], *, during_load: bool) -> str:
        """Kill a run of *names* at a random instant of its fetches or of one of its loads (of a
        dataset drawn among them); return the phase hit: fetch, load, or late (it ended first)."""
        lock = self.settings.warehouse_path.with_name(self.settings.warehouse_path.name + ".lock")
        process = self.start(*names)
        started = time.monotonic()
        fetch_for = self.random.uniform(0.2, 2.5 * len(names))
        load_for = self.random.uniform(0.0, 0.25)
        loaded = self.random.choice(names)
        loading_since = None

        def loads() -> bool:
            return lock.exists() and loaded in lock.read_text(errors="replace")

        while process.poll() is None:
            if loading_since is None and loads():
                loading_since = time.monotonic()
            if during_load and loading_since is not None:
                if time.monotonic() - loading_since >= load_for:
                    break
            elif not during_load and time.monotonic() - started >= fetch_for:
                break
            time.sleep(0.005)
        if process.poll() is not None:
            self.finish([process], datasets=len(names))
            return "late"  # no kill: the invariants still hold
        phase = "load" if loading_since is not None else "fetch"
        os.kill(process.pid, signal.SIGKILL)
        process.communicate(timeout=60)
        self.tally.endings["killed"] += 1
        return phase

    # -- invariants -----------------------------------------------------------------------------

    def snapshot(self) -> dict[str, dict[str, object]]:
        """Per dataset: rows per load id of each table, the loads recorded, and how many
        main-table keys are there more than once."""
        empty = {"tables": {}, "loads": {}, "repeated_keys": 0}
        if not self.settings.warehouse_path.exists():
            return dict.fromkeys(self.all_datasets(), empty)
        with duckdb.connect(str(self.settings.warehouse_path), read_only=True) as connection:
            return {name: self.snapshot_of(connection, name) for name in self.all_datasets()}

    @staticmethod
    def snapshot_of(connection: duckdb.DuckDBPyConnection, name: str) -> dict[str, object]:
        tables = [
            row[0]
            for row in connection.execute(
                "select table_name from duckdb_tables() where schema_name = ?", [name]
            ).fetchall()
        ]
        main, key = MAIN_TABLE[name.split("_", 1)[0]]
        repeated = 0
        if main in tables:
            repeated = connection.execute(
                f'select count(*) - count(distinct "{key}") from "{name}"."{main}"'
            ).fetchone()[0]
        return load_snapshot(connection, name, tables) | {"repeated_keys": repeated}

    def check(self, fault: str, name: str, before: dict, after: dict, *, changed: bool) -> None:
        self.tally.checks += 1
        if not changed:
            if after != before:
                self.violate(f"{fault}: {name} changed though no run of it took place")
            return
        where = f"{fault}: {name}"
        tables, loads = after["tables"], after["loads"]
        new = set(loads) - set(before["loads"])
        if len(new) > 1:
            self.violate(f"{where}: {len(new)} loads committed by one fault")
        if not new and tables != before["tables"]:
            self.violate(f"{where}: tables changed but no load was recorded")
        for load in new:
            _run, rows = loads[load]
            for table in set(rows) | set(tables):
                if tables.get(table, Counter())[load] != rows.get(table, 0):
                    self.violate(f"{where}: {table} does not hold load {load} whole")
        for table, counts in tables.items():
            if set(counts) - set(loads):
                self.violate(f"{where}: {table} has rows of a load that is not recorded")
        method = name.split("_", 1)[1]
        if method != "append" and after["repeated_keys"]:
            self.violate(f"{where}: {after['repeated_keys']} merge keys twice")
        if method == "append":
            for load, (_run, rows) in loads.items():
                for table, count in rows.items():
                    if tables.get(table, Counter())[load] != count:
                        self.violate(f"{where}: load {load} is not in {table} exactly once")

    def check_history(self, where: str, name: str, *, real: bool) -> None:
        """The history of *name* (settled by a real `leadferry history` when *real*, else by
        this process's store) agrees with the warehouse's record of loads."""
        self.tally.checks += 1
        if real:
            runs = json.loads(self.leadferry.ok("history", name, "--json", "--limit", "100000"))
        else:
            runs = [
                {"id": r.id, "status": r.status, "load_id": r.load_id, "rows": r.rows}
                for r in self.store.list_runs(name)
            ]
        loads = self.snapshot()[name]["loads"]
        committed = {run: (load, rows) for load, (run, rows) in loads.items()}
        for run in runs:
            recorded = committed.get(run["id"])
            if run["status"] == "running":
                self.violate(f"{where}: run {run['id']} is still running after its process died")
            elif run["status"] == "success" and recorded != (run["load_id"], run["rows"]):
                self.violate(
                    f"{where}: run {run['id']} succeeded but the warehouse says {recorded}"
                )
            elif run["status"] != "success" and recorded is not None:
                self.violate(f"{where}: run {run['id']} is {run['status']} but committed")

    def check_secrets(self) -> None:
        """No file under the home holds a vendor secret in any spelling."""
        self.tally.checks += 1
        for path in self.settings.home.rglob("*"):
            if path.is_file():
                content = path.read_bytes()
                for spelling in KEY_SPELLINGS:
                    if spelling.encode() in content:
                        self.violate(f"{path} holds a vendor secret as {spelling!r}")

    def close(self) -> None:
        self.store.close()

    def violate(self, message: str) -> None:
        self.tally.violations.append(message)
