# Developers and CI run exactly these targets. Only python3 (3.11+) is assumed: uv is
# bootstrapped into .tools/ when it is not on the PATH, and installs the locked environment.
SHELL := /bin/bash
UV_VERSION := 0.13.9
UV := $(or $(shell command -v uv 2>/dev/null),.tools/bin/uv)
PYTEST_ARGS ?=
N ?= 1000

.PHONY: demo demo-ui test check soak lint format bench screenshots clean

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --quiet
	touch $@

demo: .venv/.synced
	$(UV) run --frozen python scripts/demo.py

# The demo with its simulators kept up and the web Data Center served, until Ctrl-C.
demo-ui: .venv/.synced
	$(UV) run --frozen python scripts/demo.py --serve

# The suite starts hundreds of Python processes: they keep their bytecode (in .cache/, out of
# the tree) even where the environment says not to write any, or each would compile leadferry and
# its dependencies again (seconds of CPU per process).
PYTEST := env -u PYTHONDONTWRITEBYTECODE PYTHONPYCACHEPREFIX=$(CURDIR)/.cache/pycache \
	$(UV) run --frozen pytest

# Everything, with Chromium, PostgreSQL and Redis installed and started when missing.
# --maxschedchunk 1: each worker takes the next test when it is free. By default xdist hands each
# worker a quarter of its share at once, so the first got every slow test (they come first) and
# ran them alone while the other ran out of work.
test: .venv/.synced
	scripts/test-services $(PYTEST) -n 2 --maxschedchunk 1 $(PYTEST_ARGS)

# The inner loop: every test that runs in-process (no browser, no real processes or servers).
# loadgroup: a module marked xdist_group (schemathesis) runs on one worker, which alone pays
# for its module fixtures; every other test goes to whichever worker is free.
check: .venv/.synced
	LEADFERRY_TEST_QUICK=1 $(PYTEST) -n 2 --dist loadgroup \
		-m "not e2e and not browser and not services" $(PYTEST_ARGS)

# N random faults (kill -9 in fetch and load, vendor 5xx/429/truncation, concurrent runs) over real
# processes; the figures go to soak.json (docs/reliability.md). LEADFERRY_FAULTS_SEED repeats a run;
# RESUME=1 goes on with the soak in soak.json, stopped early.
soak: .venv/.synced
	LEADFERRY_FAULTS=$(N) LEADFERRY_FAULTS_REPORT=soak.json LEADFERRY_FAULTS_RESUME=$(RESUME) \
		$(UV) run --frozen pytest -p no:randomly tests/e2e/test_faults.py

lint: .venv/.synced
	$(UV) run --frozen ruff check src tests bench scripts examples
	$(UV) run --frozen ruff format --check src tests bench scripts examples

format: .venv/.synced
	$(UV) run --frozen ruff check --fix src tests bench scripts examples
	$(UV) run --frozen ruff format src tests bench scripts examples

screenshots: .venv/.synced
	LEADFERRY_SCREENSHOTS=docs/screenshots $(UV) run --frozen pytest -m browser -p no:randomly

bench: .venv/.synced
	$(UV) run --frozen python bench/bench_sync.py

clean:
	rm -rf .venv .tools .leadferry-demo .cache
