"""Randomised faults against real `leadferry run` processes and the invariants checked after each.

A :class:`FaultBench` owns a leadferry home with one dataset per update method on a well-behaved
LeadExec simulator, and one per method on a flaky one (5xx, 429 and truncated lists). Each fault is
one of:

- ``kill-fetch``: ``kill -9`` of a run at a random instant before its load starts;
- ``kill-load``: ``kill -9`` at a random instant after it took the warehouse to load;
- ``http``: a run against the flaky simulator, left to succeed or fail;
- ``concurrent``: two runs of one dataset and one of another started at once.

After each fault: every process has ended, and

- the dataset's tables are all as before or all as after: either nothing changed, or exactly one
  new load is recorded in ``_leadferry_loads`` and every table holds exactly that load's recorded
  rows (``lead_sends`` new beside old ``leads`` fails this);
- no row belongs to a load the warehouse has not recorded;
- no merge key twice (every method but append keeps ``uid`` unique);
- no load applied twice (append: each recorded load's rows are there exactly once);
- the history agrees with the warehouse (read by a real ``leadferry history``, which settles dead
  runs): no run left running, a success iff its load is recorded, with the recorded rows;
- no file under ``$LEADFERRY_HOME``, and no run's error output, holds the vendor key, in clear
  or percent-encoded.
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

from leadferry.settings import Settings
from leadferry.store import DatasetSpec, Store
from tests.e2e.conftest import LEADFERRY, Leadferry

METHODS = ("replace", "append", "merge", "partition")
KINDS = ("kill-fetch", "kill-load", "http", "concurrent")
FAULT_KEY = "fault+key/=9f8e7d6c"
"""The vendor key: a '+', '/' and '=' so that every encoding of it differs from the clear text."""
KEY_SPELLINGS = (
    FAULT_KEY,
    urllib.parse.quote(FAULT_KEY, safe=""),
    urllib.parse.quote_plus(FAULT_KEY),
)

Snapshot = dict[str, Counter[str]]


@dataclass
class Tally:
    """What a soak did: faults per kind and how their runs ended, invariants checked."""

    faults: Counter[str] = field(default_factory=Counter)
    endings: Counter[str] = field(default_factory=Counter)
    checks: int = 0
    violations: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "faults": dict(self.faults),
            "endings": dict(self.endings),
            "invariant_checks": self.checks,
            "violations": self.violations,
        }


class FaultBench:
    def __init__(self, home: Path, clean_url: str, flaky_url: str, seed: int) -> None:
        self.leadferry = Leadferry(home)
        self.leadferry.env["LEADFERRY_HTTP_MAX_WAIT"] = "2"
        self.random = random.Random(seed)
        self.settings = Settings(home=home, secret_key=self.leadferry.env["LEADFERRY_SECRET_KEY"])
        self.tally = Tally()
        self.store = Store.open(self.settings)
        for account, url in (("acme", clean_url), ("flaky", flaky_url)):
            self.store.create_account(
                account, "leadexec", {"base_url": url}, {"api_key": FAULT_KEY}
            )
            for method in METHODS:
                self.store.create_dataset(
                    DatasetSpec(
                        name=self.dataset(method, flaky=account == "flaky"),
                        account=account,
                        report="leads",
                        params={"lid": 271},
                        date_selection={"days_back": 3},
                        update_method=method,
                    )
                )

    @staticmethod
    def dataset(method: str, *, flaky: bool = False) -> str:
        return f"{'flaky' if flaky else 'clean'}_{method}"

    # -- faults ---------------------------------------------------------------------------------

    def inject(self, kind: str | None = None) -> None:
        """One fault (*kind*, else a random one), then every invariant; violations are
        collected, not raised."""
        kind = kind or self.random.choice(KINDS)
        method = self.random.choice(METHODS)
        names = [self.dataset(method, flaky=kind == "http")]
        before = {name: self.snapshot(name) for name in self.all_datasets()}
        if kind in ("kill-fetch", "kill-load"):
            kind = self.kill(names[0], during_load=kind == "kill-load")
        elif kind == "http":
            self.finish([self.start(names[0])])
        else:
            other = self.dataset(self.random.choice([m for m in METHODS if m != method]))
            names.append(other)
            self.finish([self.start(names[0]), self.start(names[0]), self.start(other)])
        self.tally.faults[kind] += 1
        for name in self.all_datasets():
            self.check(f"{kind} {'+'.join(names)}", name, before[name], changed=name in names)
        # After a kill, the next command must settle the dead run: a real one reads the history.
        for name in names:
            self.check_history(kind, name, real=kind.startswith("kill"))
        self.check_secrets()

    def all_datasets(self) -> list[str]:
        return [self.dataset(m, flaky=f) for m in METHODS for f in (False, True)]

    def start(self, name: str) -> subprocess.Popen:
        return subprocess.Popen(
            [LEADFERRY, "run", name],
            env=self.leadferry.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def finish(self, processes: list[subprocess.Popen]) -> None:
        for process in processes:
            _out, err = process.communicate(timeout=300)
            self.tally.endings["success" if process.returncode == 0 else "failed"] += 1
            if process.returncode != 0 and len(err.strip().splitlines()) != 1:
                self.violate(f"a failed run did not say why in one line: {err[-500:]!r}")
            for spelling in KEY_SPELLINGS:
                if spelling in err:
                    self.violate(f"a run printed the vendor key as {spelling!r}")

    def kill(self, name: str, *, during_load: bool) -> str:
        """Kill a run at a random instant of its fetch or of its load; return the phase hit."""
        lock = self.settings.warehouse_path.with_name(self.settings.warehouse_path.name + ".lock")
        process = self.start(name)
        started = time.monotonic()
        fetch_for = self.random.uniform(0.2, 2.5)
        load_for = self.random.uniform(0.0, 0.25)
        loading_since = None
        while process.poll() is None:
            if loading_since is None and lock.exists() and name in lock.read_text(errors="replace"):
                loading_since = time.monotonic()
            if during_load and loading_since is not None:
                if time.monotonic() - loading_since >= load_for:
                    break
            elif not during_load and time.monotonic() - started >= fetch_for:
                break
            time.sleep(0.005)
        if process.poll() is not None:
            self.finish([process])
            return "kill-late"  # the run ended first: no kill, the invariants still hold
        phase = "kill-load" if loading_since is not None else "kill-fetch"
        os.kill(process.pid, signal.SIGKILL)
        process.communicate(timeout=60)
        self.tally.endings["killed"] += 1
        return phase

    # -- invariants -----------------------------------------------------------------------------

    def snapshot(self, name: str) -> dict[str, object]:
        """Rows per load id of each table, and the loads recorded, of dataset *name*."""
        if not self.settings.warehouse_path.exists():
            return {"tables": {}, "loads": {}, "repeated_uids": 0}
        with duckdb.connect(str(self.settings.warehouse_path), read_only=True) as connection:
            tables = [
                row[0]
                for row in connection.execute(
                    "select table_name from duckdb_tables() where schema_name = ?", [name]
                ).fetchall()
            ]
            counts: Snapshot = {}
            for table in tables:
                if table.startswith("_"):
                    continue
                rows = connection.execute(
                    f'select _dlt_load_id, count(*) from "{name}"."{table}" group by 1'
                ).fetchall()
                counts[table] = Counter(dict(rows))
            loads = {}
            if "_leadferry_loads" in tables:
                loads = {
                    load: (run, json.loads(rows))
                    for load, run, rows in connection.execute(
                        f'select load_id, run_id, rows_json from "{name}"._leadferry_loads'
                    ).fetchall()
                }
            uids = 0
            if "leads" in tables:
                uids = connection.execute(
                    f'select count(*) - count(distinct uid) from "{name}".leads'
                ).fetchone()[0]
        return {"tables": counts, "loads": loads, "repeated_uids": uids}

    def check(self, fault: str, name: str, before: dict, *, changed: bool) -> None:
        self.tally.checks += 1
        after = self.snapshot(name)
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
            for table in {"leads", "lead_sends"} | set(tables):
                if tables.get(table, Counter())[load] != rows.get(table, 0):
                    self.violate(f"{where}: {table} does not hold load {load} whole")
        for table, counts in tables.items():
            if set(counts) - set(loads):
                self.violate(f"{where}: {table} has rows of a load that is not recorded")
        method = name.split("_", 1)[1]
        if method != "append" and after["repeated_uids"]:
            self.violate(f"{where}: {after['repeated_uids']} merge keys twice")
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
        loads = self.snapshot(name)["loads"]
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
        """No file under the home holds the vendor key in any spelling."""
        self.tally.checks += 1
        for path in self.settings.home.rglob("*"):
            if path.is_file():
                content = path.read_bytes()
                for spelling in KEY_SPELLINGS:
                    if spelling.encode() in content:
                        self.violate(f"{path} holds the vendor key as {spelling!r}")

    def close(self) -> None:
        self.store.close()

    def violate(self, message: str) -> None:
        self.tally.violations.append(message)
