"""The one place leadferry reads the time: :func:`utc_now`, and what a clock is.

Everything that needs the time takes ``now`` or a :data:`Clock` as a parameter, whose default
(in the front ends, the scheduler loop, the runner and the store) is :func:`utc_now`; tests pass
their own, to pin the time or to move it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

Clock = Callable[[], dt.datetime]
"""Tells the time: an aware datetime."""


def utc_now() -> dt.datetime:
    """The current time, aware, in UTC."""
    return dt.datetime.now(dt.UTC)


def now_or_utc(now: dt.datetime | None) -> dt.datetime:
    """*now* when given, else the current time.

    Raises:
        ValueError: *now* is naive.
    """
    if now is None:
        return utc_now()
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    return now
