"""Randomised faults over real `leadferry run` processes and simulators (tests/e2e/faults.py).

`make test` runs a short slice: one fault of each kind, then LEADFERRY_FAULTS more (default 0).
`make soak N=1000` runs N; LEADFERRY_FAULTS_SEED repeats a sequence, LEADFERRY_FAULTS_REPORT
names a JSON file for the figures (docs/reliability.md). LEADFERRY_FAULTS_RESUME=1 goes on with
the soak that report describes, stopped early, to the number of faults it was started with, on
a fresh home: same seed, same commit, its figures added to.
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
from tests.e2e.faults import FAULT_KEY, FAULT_PASSWORD, FAULT_USER, FaultBench, Tally

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


def commit_under_test() -> str | None:
    """The commit of the tree being tested (None outside a git checkout), so that a resumed
    soak is known to test the same code."""
    try:
        found = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent
        )
    except FileNotFoundError:
        return None
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent,
    ).stdout.strip()
    if found.returncode != 0:
        return None
    return found.stdout.strip() + ("+changes" if dirty else "")


def earlier_segments(report: str | None) -> dict[str, object] | None:
    """The figures of the soak to go on with (LEADFERRY_FAULTS_RESUME), when there is one."""
    if not report or os.environ.get("LEADFERRY_FAULTS_RESUME") != "1" or not Path(report).exists():
        return None
    figures = json.loads(Path(report).read_text())
    assert figures.get("commit") == commit_under_test(), (
        f"{report} is a soak of {figures.get('commit')}, this tree is {commit_under_test()}: "
        "move it aside to start a new soak"
    )
    return figures


def test_random_faults_never_break_an_invariant(tmp_path):
    count = int(os.environ.get("LEADFERRY_FAULTS", "0"))
    report = os.environ.get("LEADFERRY_FAULTS_REPORT")
    earlier = earlier_segments(report)
    seed = int(
        (earlier or {}).get("seed")
        or os.environ.get("LEADFERRY_FAULTS_SEED")
        or random.randrange(1 << 30)
    )
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
    bench = None
    try:
        with disk_of_its_own(tmp_path / "home") as disk:
            urls = {account: simulator.url for account, simulator in simulators.items()}
            if earlier is None:
                bench = FaultBench(tmp_path / "home", urls, seed, disk=disk)
                faults, segments = [*bench.kinds, *[None] * count], 1
                planned = len(faults)
            else:  # the slice was run by the first segment; each segment draws its own faults
                done = sum(earlier["faults"].values())
                bench = FaultBench(tmp_path / "home", urls, seed + done * (1 << 30), disk=disk)
                tally = Tally.from_json(earlier)
                tally.not_drawn |= bench.tally.not_drawn
                bench.tally = tally
                planned = int(earlier["planned"])
                faults, segments = [None] * (planned - done), int(earlier["segments"]) + 1
            try:
                for kind in faults:
                    bench.inject(kind)
                    if report:  # after every fault, so that a soak stopped early has its figures
                        figures = bench.tally.as_json() | {
                            "seed": seed,
                            "commit": commit_under_test(),
                            "segments": segments,
                            "planned": planned,
                        }
                        Path(report).write_text(json.dumps(figures, indent=2) + "\n")
            finally:
                bench.close()
    finally:
        for simulator in simulators.values():
            stop(simulator)
    assert bench.tally.violations == [], f"seed {seed}: " + "\n".join(bench.tally.violations)
