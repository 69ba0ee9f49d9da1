"""Login throttling: after repeated failures, a name or an address must wait, longer each time."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass

FREE_ATTEMPTS = 5
"""Failures allowed before the first wait."""
FIRST_WAIT = dt.timedelta(seconds=30)
LONGEST_WAIT = dt.timedelta(minutes=15)
FORGET_AFTER = dt.timedelta(hours=1)
"""A key with no failure for this long starts afresh."""
KEEP_AT_MOST = 10_000
"""Past this many keys (guesses at many names), stale ones are dropped: memory stays bounded
by the failures of the last hour."""


@dataclass(slots=True)
class _Record:
    failures: int
    last: dt.datetime
    locked_until: dt.datetime | None = None


class LoginThrottle:
    """Counts failed logins per key (a user name, a client address) in this process.

    Each failure beyond ``FREE_ATTEMPTS`` doubles the wait, up to ``LONGEST_WAIT``. Keys are
    kept per process: a service restart forgives, which is acceptable for a self-hosted tool
    whose passwords are argon2-hashed (each guess already costs tens of milliseconds).
    """

    def __init__(self) -> None:
        self._records: dict[str, _Record] = {}
        self._lock = threading.Lock()

    def wait(self, keys: list[str], now: dt.datetime) -> dt.timedelta | None:
        """How long any of *keys* must still wait before trying again (None: not locked)."""
        with self._lock:
            waits = [
                record.locked_until - now
                for key in keys
                if (record := self._records.get(key)) and record.locked_until
                if record.locked_until > now
            ]
        return max(waits) if waits else None

    def failed(self, keys: list[str], now: dt.datetime) -> None:
        with self._lock:
            if len(self._records) >= KEEP_AT_MOST:
                self._forget_before(now - FORGET_AFTER)
            for key in keys:
                record = self._records.get(key)
                if record is None or now - record.last > FORGET_AFTER:
                    record = self._records[key] = _Record(0, now)
                record.failures += 1
                record.last = now
                beyond = record.failures - FREE_ATTEMPTS
                if beyond >= 0:
                    record.locked_until = now + min(FIRST_WAIT * 2**beyond, LONGEST_WAIT)

    def _forget_before(self, moment: dt.datetime) -> None:
        """Drop keys whose last failure is older than *moment* and that are not locked."""
        for key, record in list(self._records.items()):
            if record.last < moment and (
                record.locked_until is None or record.locked_until < moment
            ):
                del self._records[key]

    def succeeded(self, keys: list[str]) -> None:
        with self._lock:
            for key in keys:
                self._records.pop(key, None)
