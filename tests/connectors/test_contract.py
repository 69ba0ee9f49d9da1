"""Every report of every installed connector, against its simulator: the contract all keep.

The cases come from the registries (entry points), so a connector package's reports are checked
as soon as it is installed next to leadferry.

Rows arrive, primary keys are unique, dated rows fall inside the window, and paging ends; against
the simulator as specified and against each variant it plays of a reconstructed behaviour (and
AvidTrak in both of its formats).
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

import pyarrow as pa
import pytest
from starlette.testclient import TestClient

from leadferry.connectors import CONNECTORS
from leadferry.connectors.base import Credentials, RetryPolicy
from leadferry.dates import DateSelection, today_in
from leadferry.simulators import SIMULATORS
from tests.conftest import NOW

FORMATS = {"avidtrak": ({"format": "json"}, {"format": "xml"})}
"""Account settings each case is also run with (AvidTrak answers JSON or XML)."""


def _cases(dated_only: bool) -> list[Any]:
    cases = []
    for name, connector in CONNECTORS.items():
        variants = [None, *getattr(SIMULATORS[name], "Variant", ())]
        for report in connector.reports:
            if dated_only and not report.dated:
                continue
            for variant in variants:
                for extra in FORMATS.get(name, ({},)):
                    label = "-".join(
                        [name, report.slug, variant or "as-specified", *extra.values()]
                    )
                    cases.append(pytest.param(name, report.slug, variant, extra, id=label))
    return cases


CASES = _cases(dated_only=False)
DATED_CASES = _cases(dated_only=True)


def test_every_connector_has_a_simulator():
    assert set(SIMULATORS) == set(CONNECTORS)


@functools.cache
def simulated(connector_name: str, variant: str | None) -> tuple[Any, Any]:
    """The simulator's settings and app (its default settings, playing *variant*), made once a
    process: generating a simulator's data costs up to a quarter of a second of CPU, and the
    cases only read it (no fault is played by default)."""
    simulator = SIMULATORS[connector_name]
    config = simulator.Settings(**({"variant": [variant]} if variant else {}))
    return config, simulator.create_app(config, now=NOW)


def fetch(connector_name, slug, variant=None, extra=None, selection=None):
    """Every row of report *slug* from the connector's simulator (its default settings, playing
    *variant*), read with the account's fields and *extra*."""
    simulator = SIMULATORS[connector_name]
    config, app = simulated(connector_name, variant)
    account = simulator.account(config, "http://vendor.test")
    connector_cls = CONNECTORS[connector_name]
    report = connector_cls.report(slug)
    credentials = Credentials("acme", account.fields | (extra or {}))
    with TestClient(app, base_url="http://vendor.test") as client:
        connector = connector_cls(
            client, credentials, retry=RetryPolicy(attempts=2, base_delay=0, max_delay=0)
        )
        timezone = connector.timezone
        window = None
        if report.dated:
            window = DateSelection.parse(selection or {"days_back": 7}).resolve(
                timezone, today_in(timezone, NOW)
            )
        tables: dict[str, list[pa.Table]] = {}
        for item in connector.fetch(report, account.params.get(slug, {}), window):
            tables.setdefault(item.table, []).append(pa.Table.from_batches([item.batch]))
    merged = {
        name: pa.concat_tables(parts, promote_options="default") for name, parts in tables.items()
    }
    return report, window, merged


@pytest.mark.parametrize(("connector_name", "slug", "variant", "extra"), CASES)
def test_rows_arrive_with_unique_keys_inside_the_window(connector_name, slug, variant, extra):
    report, window, tables = fetch(connector_name, slug, variant, extra)
    main = tables[report.main_table.name]
    assert main.num_rows > 0
    keys = list(zip(*(main.column(k).to_pylist() for k in report.merge_key), strict=True))
    assert len(set(keys)) == len(keys), "primary keys must be unique"
    for column, data_type in report.main_table.columns.items():
        assert main.schema.field(column).type == data_type, column
    if window is not None and report.day_column:
        values = main.column(report.day_column).to_pylist()
        if isinstance(values[0], dt.datetime):
            assert min(values) >= window.start
            assert max(values) < window.end
        else:
            assert min(values) >= window.first_day
            assert max(values) < window.end_day
    for child in report.tables[1:]:
        if child.name in tables and child.parent_key:
            parents = set(main.column(report.merge_key[0]).to_pylist())
            assert set(tables[child.name].column(child.parent_key).to_pylist()) <= parents


@pytest.mark.parametrize(("connector_name", "slug", "variant", "extra"), DATED_CASES)
def test_a_window_before_any_data_is_empty_not_an_error(connector_name, slug, variant, extra):
    _, _, tables = fetch(connector_name, slug, variant, extra, {"date": "2026-01-05"})
    assert tables == {}
