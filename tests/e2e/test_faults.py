"""Randomised faults over real `leadferry run` processes and simulators (tests/e2e/faults.py).

`make test` runs a short slice: one fault of each kind, then LEADFERRY_FAULTS more (default 0).
`make soak N=1000` runs N; LEADFERRY_FAULTS_SEED repeats a sequence, LEADFERRY_FAULTS_REPORT
names a JSON file for the figures (docs/reliability.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import start_simulator, stop
from tests.e2e.faults import FAULT_KEY, FAULT_PASSWORD, FAULT_USER, FaultBench

pytestmark = pytest.mark.e2e

DISK_SIZE = "512m"


@contextlib.contextmanager
def disk_of_its_own(folder: Path) -> Iterator[bool]:
    """Mount a tmpfs of DISK_SIZE on *folder*, so that a fault can fill it; yield whether the
    machine allowed it (mounting needs root, or CAP_SYS_ADMIN)."""
    folder.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs", str(folder)]
    try:
        mounted = subprocess.run(mount, capture_output=True).returncode == 0
    except FileNotFoundError:
        mounted = False
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "--lazy", str(folder)], check=True)


def test_random_faults_never_break_an_invariant(tmp_path):
    count = int(os.environ.get("LEADFERRY_FAULTS", "0"))
    seed = int(os.environ.get("LEADFERRY_FAULTS_SEED") or random.randrange(1 << 30))
    common = ("--lid", "271", "--api-key", FAULT_KEY, "--leads", "20000", "--days", "30")
    simulators = {
        "clean": start_simulator("leadexec", *common, "--latency-ms", "20"),
        "flaky": start_simulator(
            "leadexec",
            *common,
            *("--fail-rate", "0.3", "--truncate-rate", "0.2"),
            *("--rate-limit", "30"),
        ),  # fmt: skip
        "token": start_simulator(
            "salesexec",
            *("--users", f"{FAULT_USER}:{FAULT_PASSWORD}", "--leads", "20000", "--days", "30"),
            *("--revoke-rate", "0.1", "--latency-ms", "20"),
        ),
    }
    report = os.environ.get("LEADFERRY_FAULTS_REPORT")
    bench = None
    try:
        with disk_of_its_own(tmp_path / "home") as disk:
            urls = {account: simulator.url for account, simulator in simulators.items()}
            bench = FaultBench(tmp_path / "home", urls, seed, disk=disk)
            try:
                for kind in [*bench.kinds, *[None] * count]:
                    bench.inject(kind)
                    if report:  # after every fault, so that a soak stopped early has its figures
                        figures = bench.tally.as_json() | {"seed": seed}
                        Path(report).write_text(json.dumps(figures, indent=2) + "\n")
            finally:
                bench.close()
    finally:
        for simulator in simulators.values():
            stop(simulator)
    assert bench.tally.violations == [], f"seed {seed}: " + "\n".join(bench.tally.violations)
