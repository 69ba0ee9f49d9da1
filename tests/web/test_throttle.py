"""The login throttle's arithmetic, on an injected clock."""

from __future__ import annotations

import datetime as dt

from leadferry.web import throttle
from leadferry.web.throttle import (
    BUSY_WAIT,
    FIRST_WAIT,
    FREE_ATTEMPTS,
    LONGEST_WAIT,
    LoginThrottle,
)

T0 = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


def fail(gate: LoginThrottle, keys: list[str], now: dt.datetime = T0) -> None:
    """One wrong password: reserved, then settled."""
    assert gate.reserve(keys, now) is None
    gate.failed(keys, now)


def test_waits_double_after_the_free_attempts_up_to_the_longest():
    gate = LoginThrottle()
    keys = ["user:ada"]
    waits = []
    moment = T0
    for _ in range(FREE_ATTEMPTS + 8):
        assert gate.reserve(keys, moment) is None
        gate.failed(keys, moment)
        waits.append(gate.reserve(keys, moment))
        if waits[-1] is None:
            gate.succeeded(keys, forgiven=[])  # that probe was not an attempt: give it back
        else:
            moment += waits[-1]
    assert waits[: FREE_ATTEMPTS - 1] == [None] * (FREE_ATTEMPTS - 1)
    assert waits[FREE_ATTEMPTS - 1] == FIRST_WAIT
    assert waits[FREE_ATTEMPTS] == FIRST_WAIT * 2
    assert waits[-1] == LONGEST_WAIT


def test_no_more_attempts_are_checked_at_once_than_failures_are_left():
    gate = LoginThrottle()
    keys = ["user:ada", "address:10.0.0.1"]
    assert gate.reserve(keys, T0) is None
    gate.failed(keys, T0)
    reserved = [gate.reserve(keys, T0) for _ in range(40)]
    assert reserved.count(None) == FREE_ATTEMPTS - 1
    assert set(reserved) - {None} == {BUSY_WAIT}
    for _ in range(FREE_ATTEMPTS - 1):
        gate.failed(keys, T0)
    assert gate.reserve(keys, T0) == FIRST_WAIT
    # Once the wait is over, one attempt at a time.
    later = T0 + FIRST_WAIT
    assert gate.reserve(keys, later) is None
    assert gate.reserve(keys, later) == BUSY_WAIT


def test_a_success_forgives_the_name_only_and_gives_the_attempt_back():
    gate = LoginThrottle()
    keys = ["user:ada", "address:10.0.0.1"]
    for _ in range(FREE_ATTEMPTS - 1):
        assert gate.reserve(keys, T0) is None
        gate.failed(keys, T0)
    assert gate.reserve(keys, T0) is None
    gate.succeeded(keys, forgiven=keys[:1])
    assert gate.reserve(["user:ada"], T0) is None
    # The address keeps its failures, not the successful attempt: one more may be checked.
    assert gate.reserve(["address:10.0.0.1"], T0) is None
    gate.failed(["address:10.0.0.1"], T0)
    assert gate.reserve(["address:10.0.0.1"], T0) == FIRST_WAIT


def test_guessing_many_names_keeps_memory_bounded(monkeypatch):
    monkeypatch.setattr(throttle, "KEEP_AT_MOST", 100)
    gate = LoginThrottle()
    for n in range(100):
        fail(gate, [f"user:{n}"])
    later = T0 + throttle.FORGET_AFTER + dt.timedelta(minutes=1)
    assert gate.reserve(["user:new"], later) is None
    assert len(gate._records) == 1
