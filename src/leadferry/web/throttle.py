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


BUSY_WAIT = dt.timedelta(seconds=1)
"""What a login refused because others for the same key are being checked is told to wait."""


@dataclass(slots=True)
class _Record:
    failures: int
    last: dt.datetime
    locked_until: dt.datetime | None = None
    checking: int = 0
    """Attempts reserved and not yet settled: their passwords are being checked."""

    def allows(self, now: dt.datetime) -> dt.timedelta | None:
        """None when one more attempt may be checked now, else how long to wait."""
        if self.locked_until and self.locked_until > now:
            return self.locked_until - now
        # Before the first lock, the free attempts left; after a lock has run out, one at a time.
        if self.checking >= max(1, FREE_ATTEMPTS - self.failures):
            return BUSY_WAIT
        return None


class LoginThrottle:
    """Counts failed logins per key (a user name, a client address) in this process.

    An attempt is reserved (:meth:`reserve`) before its password is checked and settled after
    (:meth:`failed` or :meth:`succeeded`): however many arrive at once, no more are checked
    than failures are left before the lock. Each failure beyond ``FREE_ATTEMPTS`` doubles the
    wait, up to ``LONGEST_WAIT``. Keys are
    kept per process: a service restart forgives, which is acceptable for a self-hosted tool
    whose passwords are argon2-hashed (each guess already costs tens of milliseconds).
    """

    def __init__(self) -> None:
        self._records: dict[str, _Record] = {}
        self._lock = threading.Lock()

    def reserve(self, keys: list[str], now: dt.datetime) -> dt.timedelta | None:
        """Reserve an attempt for *keys*: None when its password may be checked (then settle it
        with :meth:`failed` or :meth:`succeeded`), else how long to wait before trying again."""
        with self._lock:
            if len(self._records) >= KEEP_AT_MOST:
                self._forget_before(now - FORGET_AFTER)
            records = [self._record(key, now) for key in keys]
            waits = [wait for record in records if (wait := record.allows(now)) is not None]
            if waits:
                return max(waits)
            for record in records:
                record.checking += 1
                record.last = now
            return None

    def failed(self, keys: list[str], now: dt.datetime) -> None:
        """Settle a reserved attempt whose password was wrong."""
        with self._lock:
            for key in keys:
                record = self._record(key, now)
                record.checking = max(0, record.checking - 1)
                record.failures += 1
                record.last = now
                beyond = record.failures - FREE_ATTEMPTS
                if beyond >= 0:
                    record.locked_until = now + min(FIRST_WAIT * 2**beyond, LONGEST_WAIT)

    def succeeded(self, keys: list[str], forgiven: list[str]) -> None:
        """Settle a reserved attempt whose password was right; *forgiven* keys start afresh."""
        with self._lock:
            for key in keys:
                if record := self._records.get(key):
                    record.checking = max(0, record.checking - 1)
            for key in forgiven:
                self._records.pop(key, None)

    def _record(self, key: str, now: dt.datetime) -> _Record:
        record = self._records.get(key)
        if record is None or (now - record.last > FORGET_AFTER and not record.checking):
            record = self._records[key] = _Record(0, now)
        return record

    def _forget_before(self, moment: dt.datetime) -> None:
        """Drop keys whose last attempt is older than *moment*, not locked and not being
        checked."""
        for key, record in list(self._records.items()):
            if (
                record.last < moment
                and not record.checking
                and (record.locked_until is None or record.locked_until < moment)
            ):
                del self._records[key]
