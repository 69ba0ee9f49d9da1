"""The login throttle's arithmetic, on an injected clock."""

from __future__ import annotations

import datetime as dt

from leadferry.web import throttle
from leadferry.web.throttle import FIRST_WAIT, FREE_ATTEMPTS, LONGEST_WAIT, LoginThrottle

T0 = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


def test_waits_double_after_the_free_attempts_up_to_the_longest():
    gate = LoginThrottle()
    waits = []
    for _ in range(FREE_ATTEMPTS + 8):
        gate.failed(["user:ada"], T0)
        waits.append(gate.wait(["user:ada"], T0))
    assert waits[: FREE_ATTEMPTS - 1] == [None] * (FREE_ATTEMPTS - 1)
    assert waits[FREE_ATTEMPTS - 1] == FIRST_WAIT
    assert waits[FREE_ATTEMPTS] == FIRST_WAIT * 2
    assert waits[-1] == LONGEST_WAIT
    assert gate.wait(["user:ada"], T0 + LONGEST_WAIT) is None


def test_a_success_forgives_the_name_only():
    gate = LoginThrottle()
    keys = ["user:ada", "address:10.0.0.1"]
    for _ in range(FREE_ATTEMPTS):
        gate.failed(keys, T0)
    gate.succeeded(keys[:1])
    assert gate.wait(["user:ada"], T0) is None
    assert gate.wait(["address:10.0.0.1"], T0) == FIRST_WAIT


def test_guessing_many_names_keeps_memory_bounded(monkeypatch):
    monkeypatch.setattr(throttle, "KEEP_AT_MOST", 100)
    gate = LoginThrottle()
    for n in range(100):
        gate.failed([f"user:{n}"], T0)
    later = T0 + throttle.FORGET_AFTER + dt.timedelta(minutes=1)
    gate.failed(["user:new"], later)
    assert gate.wait(["user:new"], later) is None
    assert len(gate._records) == 1
