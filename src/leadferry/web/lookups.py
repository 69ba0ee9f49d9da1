"""The values vendors offer for parameters (lookups), kept a few minutes per account.

The wizard's menu opens on every visit to the Details pane and the API may be asked as often:
each answer is kept in the process for :data:`LOOKUP_TTL`, per account and parameter, so a
vendor is asked once for all of them. An entry holds for the account as it was read: any change
to the account (rotated secrets, edited settings, a rename, a new account of the same name, in
this process or another) gives it a new ``updated_at``, and the next lookup asks the vendor
again. A failed lookup is not kept. ``refresh`` asks the vendor whatever is kept.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from leadferry.service.accounts import look_up

if TYPE_CHECKING:
    import httpx2

    from leadferry.connectors.base import Choice
    from leadferry.settings import Settings
    from leadferry.store import Store

LOOKUP_TTL = dt.timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Lookup:
    """The values read for a parameter, and when the vendor was asked."""

    choices: list[Choice]
    read_at: dt.datetime


@dataclass(frozen=True, slots=True)
class _Entry:
    account_id: int
    account_updated: dt.datetime
    lookup: Lookup


class LookupCache:
    """Lookups answered from memory for :data:`LOOKUP_TTL` (one per app: ``app.state``)."""

    def __init__(self, ttl: dt.timedelta = LOOKUP_TTL) -> None:
        self._ttl = ttl
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._lock = threading.Lock()

    def look_up(
        self,
        store: Store,
        settings: Settings,
        account: str,
        param_id: str,
        now: dt.datetime,
        client: httpx2.Client | None = None,
        *,
        refresh: bool = False,
    ) -> Lookup:
        """What :func:`leadferry.service.accounts.look_up` answers, from memory when the same
        account (unchanged since) was asked for *param_id* less than the TTL ago.

        Raises what ``look_up`` raises (nothing is kept then).
        """
        current = store.get_account(account)
        key = (account, param_id)
        with self._lock:
            entry = self._entries.get(key)
        fresh = (
            entry is not None
            and entry.account_id == current.id
            and entry.account_updated == current.updated_at
            and entry.lookup.read_at <= now < entry.lookup.read_at + self._ttl
        )
        if fresh and not refresh:
            return entry.lookup  # type: ignore[union-attr]
        found = Lookup(look_up(store, settings, account, param_id, now, client), now)
        with self._lock:
            self._forget_expired(now)
            self._entries[key] = _Entry(current.id, current.updated_at, found)
        return found

    def _forget_expired(self, now: dt.datetime) -> None:
        """Drop the entries past their time (the lock is held): memory stays bounded by the
        accounts and parameters looked up within the TTL."""
        for key in [k for k, e in self._entries.items() if now >= e.lookup.read_at + self._ttl]:
            del self._entries[key]
