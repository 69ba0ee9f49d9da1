"""Randomised faults over real `leadferry run` processes and simulators (tests/e2e/faults.py).

`make test` runs a short slice: one fault of each kind, then LEADFERRY_FAULTS more (default 0).
`make soak N=1000` runs N; LEADFERRY_FAULTS_SEED repeats a sequence, LEADFERRY_FAULTS_REPORT
names a JSON file for the figures (docs/reliability.md).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from tests.e2e.conftest import start_simulator, stop
from tests.e2e.faults import FAULT_KEY, KINDS, FaultBench

pytestmark = pytest.mark.e2e


def test_random_faults_never_break_an_invariant(tmp_path):
    count = int(os.environ.get("LEADFERRY_FAULTS", "0"))
    seed = int(os.environ.get("LEADFERRY_FAULTS_SEED") or random.randrange(1 << 30))
    common = ("--lid", "271", "--api-key", FAULT_KEY, "--leads", "20000", "--days", "30")
    clean = start_simulator("leadexec", *common, "--latency-ms", "20")
    flaky = start_simulator(
        "leadexec", *common, "--fail-rate", "0.3", "--truncate-rate", "0.2", "--rate-limit", "30"
    )
    report = os.environ.get("LEADFERRY_FAULTS_REPORT")
    bench = None
    try:
        bench = FaultBench(tmp_path / "home", clean.url, flaky.url, seed)
        for kind in [*KINDS, *[None] * count]:
            bench.inject(kind)
            if report:  # after every fault, so that a soak stopped early has its figures
                figures = bench.tally.as_json() | {"seed": seed}
                Path(report).write_text(json.dumps(figures, indent=2) + "\n")
    finally:
        if bench is not None:
            bench.close()
        stop(clean)
        stop(flaky)
    assert bench.tally.violations == [], f"seed {seed}: " + "\n".join(bench.tally.violations)
