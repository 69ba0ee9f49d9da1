"""``pytest --cpu-report``: where a run's CPU goes, per file and per test, and each worker's start.

Wall times (``--durations``) move with the machine's load; CPU time (user + system) moves little,
so it says what a change saved. What a test's wall time has beyond its CPU is time it waited
(sleeps, polls, timeouts, a server's start): the report lists the tests that waited most. Each
test's share is its process's CPU over set-up, call and tear-down, plus that of the processes it
started and waited for (e2e). Under xdist each worker sends its figures with its reports; its
start-up (imports, collection) is what it spent before the first test.
"""

from __future__ import annotations

import resource
from collections import defaultdict

import pytest

CPU_KEY = "cpu_seconds"
TOP = 25


def cpu_seconds() -> float:
    """User + system CPU of this process and of the children it waited for."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--cpu-report",
        action="store_true",
        help="print the CPU seconds each file and the slowest tests spent, and the start-up",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--cpu-report"):
        config.pluginmanager.register(CpuReport(config), "cpu-report")


class CpuReport:
    """Measures in each process that runs tests; sums and prints in the one that reports."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.per_test: dict[str, float] = defaultdict(float)
        self.wall: dict[str, float] = defaultdict(float)
        self.start_up: dict[str, float] = {}
        self.worker = hasattr(config, "workerinput")
        self.started = 0.0

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        spent = cpu_seconds()
        if self.worker:
            self.config.workeroutput[CPU_KEY] = spent
        else:
            self.start_up["this process"] = spent

    def pytest_testnodedown(self, node, error) -> None:
        if CPU_KEY in getattr(node, "workeroutput", {}):
            self.start_up[node.gateway.id] = node.workeroutput[CPU_KEY]

    def pytest_runtest_logstart(self, nodeid: str, location) -> None:
        self.started = cpu_seconds()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call):
        report = yield
        if call.when == "teardown":  # the last report of a test, which xdist hands on too
            report.user_properties.append((CPU_KEY, cpu_seconds() - self.started))
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.wall[report.nodeid] += report.duration
        for key, value in report.user_properties:
            if key == CPU_KEY:
                self.per_test[report.nodeid] += value

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.worker:
            return
        write = terminalreporter.write_line
        per_file: dict[str, float] = defaultdict(float)
        for nodeid, spent in self.per_test.items():
            per_file[nodeid.split("::")[0]] += spent
        total = sum(self.per_test.values())
        terminalreporter.section("CPU seconds (user + system)")
        write(f"{total:8.1f}  in {len(self.per_test)} tests")
        for worker, spent in sorted(self.start_up.items()):
            write(f"{spent:8.1f}  start-up of {worker} (imports, collection)")
        write("-- per file")
        for path, spent in sorted(per_file.items(), key=lambda pair: -pair[1]):
            write(f"{spent:8.1f}  {path}")
        write(f"-- the {TOP} costliest tests")
        for nodeid, spent in sorted(self.per_test.items(), key=lambda pair: -pair[1])[:TOP]:
            write(f"{spent:8.2f}  {nodeid}")
        waited = {nodeid: self.wall[nodeid] - spent for nodeid, spent in self.per_test.items()}
        write(f"-- the {TOP} tests that waited most (wall seconds beyond their CPU seconds)")
        write(f"{sum(max(0.0, w) for w in waited.values()):8.1f}  in all tests")
        for nodeid, waiting in sorted(waited.items(), key=lambda pair: -pair[1])[:TOP]:
            write(f"{waiting:8.2f}  {nodeid}  (wall {self.wall[nodeid]:.2f})")
