"""The simulated SalesExec account: who works there, which leads and actions exist, and the rows.

Nothing here knows about HTTP (:mod:`leadferry.simulators.salesexec` serves it). How it stays fast:

- Lead ``i`` (0-based, in creation order) is made of the 64 bytes of ``blake2b(seed, i)``. At start
  the simulation reads from them only what orders and filters rows (created, closed and updated
  times, lead type, assigned user, action times), into flat arrays: O(n) for n leads.
- Every dated report has a precomputed index per lead type (and one for all): its rows in report
  order with their timestamps, so a window is two bisections and a page is a slice.
- The other columns (names, address, notes, ...) are looked up from the digest when a row is
  rendered, so only the rows of a page cost anything.

Times are integer ticks of 100 ns since 1970-01-01 UTC, as .NET stamps them (7 fractional digits).
"""

from __future__ import annotations

import hashlib
import random
import sys
import unicodedata
import uuid
from array import array
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from leadferry.clock import now_or_utc

if TYPE_CHECKING:
    from leadferry.simulators.salesexec import Settings

TICKS_PER_SECOND = 10_000_000
LEAD_UID_BASE = 1_048_577
ACTION_UID_BASE = 30_000_001

# The reports and their columns, in answer order (vendor-apis.md section 2, reconstructed).
LEAD_FIELDS = (
    "LeadUID", "LeadGuid", "LeadTypeUID", "LeadTypeName", "LeadSourceName", "CampaignName",
    "FirstName", "LastName", "Email", "Phone", "Address", "City", "State", "Zip",
    "LifeCycleStageName", "LeadStatusName", "AssignedUserName", "BranchName", "CreatedUtc",
    "LastUpdatedUtc",
)  # fmt: skip
CLOSED_FIELDS = (*LEAD_FIELDS, "ClosedUtc", "CloseReason")
ACTION_FIELDS = (
    "ActionUID", "LeadUID", "LeadTypeUID", "ActionTypeName", "DispositionName", "UserAccountUID",
    "UserName", "BranchUID", "BranchName", "Notes", "ActionDateUtc",
)  # fmt: skip
BRANCH_COUNT_FIELDS = ("BranchUID", "BranchName", "LeadCount")
AWAITING_FIELDS = ("LeadTypeUID", "Count")

# report -> the column its window filters on (None: no window)
REPORT_DATE_FIELDS: dict[str, str | None] = {
    "actions": "ActionDateUtc",
    "leads": "CreatedUtc",
    "branch_lead_count": "CreatedUtc",
    "closed_leads": "ClosedUtc",
    "awaiting_import_count": None,
    "last_updated_leads": "LastUpdatedUtc",
}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MINUTE = 60 * TICKS_PER_SECOND
_DAY = 86_400 * TICKS_PER_SECOND
_NO_TYPE = -1  # the position of a lead type the account lacks


def to_ticks(value: datetime) -> int:
    """A datetime as ticks (a naive one is read as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * TICKS_PER_SECOND + delta.microseconds * 10


@cache
def _day(days: int) -> str:
    return f"{_EPOCH + timedelta(days=days):%Y-%m-%d}T"


def format_ticks(ticks: int) -> str:
    """``2017-12-29T21:03:56.2061577Z``: UTC with 7 fractional digits, as SalesExec writes."""
    seconds, fraction = divmod(ticks, TICKS_PER_SECOND)
    days, seconds = divmod(seconds, 86_400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return f"{_day(days)}{hours:02d}:{minutes:02d}:{seconds:02d}.{fraction:07d}Z"


# ---------------------------------------------------------------------------------------------
# Value pools

_BRANCHES = (
    "Headquarters", "Phoenix", "Dallas", "Tampa Bay", "San Diego", "Denver", "Charlotte",
    "Boise", "Salt Lake City", "Atlanta",
)  # fmt: skip
_LEAD_TYPES = (
    "Mortgage Refinance", "Home Purchase", "Auto Insurance", "Solar", "Debt Settlement",
    "Medicare Supplement", "Home Equity",
)  # fmt: skip
_SOURCES = (
    "Web Form", "Web Form", "Web Form", "Inbound Call", "Partner Post", "Referral", "Import",
    "Live Transfer",
)  # fmt: skip
_CAMPAIGNS = (
    "Google Search", "Facebook Lead Ads", "Bing Ads", "Email Blast", "Spring Promo",
    "Retargeting", "Direct Mail", None,
)  # fmt: skip
_FIRST = (
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Charles", "Karen", "Daniel", "Lisa", "Matthew", "Nancy", "José", "Zoë", "Renée", "André",
)  # fmt: skip
_LAST = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Wilson", "Anderson", "Taylor", "Moore", "Jackson",
    "Martin", "Lee", "Thompson", "White", "Harris", "Clark", "O'Brien", "Núñez", "Müller",
    "D'Angelo", "Nguyễn",
)  # fmt: skip
_DOMAINS = ("example.com", "mail.test", "inbox.example", "example.net")
_STREETS = (
    "Oak St", "Maple Ave", "Cedar Ln", "Main St", "Park Blvd", "Elm Dr", "Washington Ave",
    "Lakeview Rd", "Sunset Blvd", "Hillcrest Ct", "Ridge Rd", "Camino del Río",
)  # fmt: skip
_PLACES = (  # (city, state, zip prefix, area code)
    ("Phoenix", "AZ", "850", 602), ("Mesa", "AZ", "852", 480), ("Dallas", "TX", "752", 214),
    ("Austin", "TX", "787", 512), ("Tampa", "FL", "336", 813), ("Miami", "FL", "331", 305),
    ("San Diego", "CA", "921", 619), ("Sacramento", "CA", "958", 916),
    ("Denver", "CO", "802", 303), ("Charlotte", "NC", "282", 704), ("Boise", "ID", "837", 208),
    ("Salt Lake City", "UT", "841", 801), ("Atlanta", "GA", "303", 404),
    ("Coeur d'Alene", "ID", "838", 208), ("Cañon City", "CO", "812", 719),
)  # fmt: skip
_OPEN_STAGES = ("Working", "Working", "Nurturing", "Qualified", "Application")
_OPEN_STATUSES = (
    "Attempted Contact", "Contacted", "Appointment Set", "Callback Scheduled", "Follow Up",
)  # fmt: skip
_CLOSE_REASONS = (  # (reason, status)
    ("Sold", "Won"), ("Funded", "Won"), ("Not Interested", "Lost"),
    ("Went With Competitor", "Lost"), ("Bad Contact Info", "Lost"), ("Duplicate", "Lost"),
    ("Do Not Contact", "Lost"), ("Unresponsive", "Lost"),
)  # fmt: skip
_ACTION_TYPES = ("Call", "Call", "Call", "Email", "Text Message", "Note", "Appointment", "Call")
_DISPOSITIONS = (
    "No Answer", "Left Voicemail", "Contacted", "Appointment Set", "Not Interested",
    "Wrong Number", "Callback Requested", "Busy",
)  # fmt: skip
_NOTES = (
    "Call after 5pm & before 8pm", "Rate < 5% please", "Prefers e-mail — not phone",
    "Spanish speaker: habla español", "Asked about refinancing", '"Urgent" callback',
    "Spouse is co-borrower", "Interested in 30yr fixed", "Sent rate sheet",
)  # fmt: skip
# How many actions a lead gets, by one digest byte: 0..4, about 1.6 on average.
_ACTION_COUNTS = bytes(n for n, weight in enumerate((64, 64, 56, 40, 32)) for _ in range(weight))


def _ascii(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in plain.lower() if c.isalnum())


_FIRST_ASCII = tuple(_ascii(name) for name in _FIRST)  # for e-mail addresses
_LAST_ASCII = tuple(_ascii(name) for name in _LAST)


# ---------------------------------------------------------------------------------------------
# The account's people and lead types


@dataclass(frozen=True)
class Branch:
    uid: int
    name: str


@dataclass(frozen=True)
class User:
    uid: int
    name: str
    branch: Branch


@dataclass(frozen=True)
class LeadType:
    uid: int
    name: str


def _catalog(seed: int) -> tuple[tuple[Branch, ...], tuple[User, ...], tuple[LeadType, ...]]:
    """4 to 6 branches of 2 to 5 users each, and 3 or 4 lead types, all drawn from the seed."""
    rng = random.Random(f"salesexec-catalog:{seed}")
    names = rng.sample(_BRANCHES, rng.randint(4, 6))
    uids = sorted(rng.sample(range(100, 1000), len(names)))
    branches = tuple(Branch(uid, name) for uid, name in zip(uids, names, strict=True))
    users: list[User] = []
    taken: set[str] = set()
    uid = rng.randrange(4000, 5000)
    for branch in branches:
        for _ in range(rng.randint(2, 5)):
            while True:
                name = f"{_ascii(rng.choice(_FIRST))[0]}{_ascii(rng.choice(_LAST))}"
                if name not in taken:
                    break
            taken.add(name)
            uid += rng.randint(1, 9)
            users.append(User(uid, name, branch))
    count = rng.randint(3, 4)
    type_uids = sorted(rng.sample(range(1, 60), count))
    types = tuple(
        LeadType(uid, name)
        for uid, name in zip(type_uids, rng.sample(_LEAD_TYPES, count), strict=True)
    )
    return branches, tuple(users), types


def _split(total: int, parts: int, rng: random.Random) -> list[int]:
    """``total`` spread over ``parts`` at random cut points (O(parts))."""
    cuts = sorted(rng.randint(0, total) for _ in range(parts - 1))
    edges = [0, *cuts, total]
    return [b - a for a, b in zip(edges, edges[1:], strict=False)]


# ---------------------------------------------------------------------------------------------
# Indexes


class _Index:
    """Row numbers in report order, with their timestamps (ascending), for bisecting a window."""

    def __init__(self, rows: array[int], times: array[int]) -> None:
        self.rows, self.times = rows, times

    def window(self, start: int | None, end: int | None) -> Sequence[int]:
        """The rows with ``start <= time < end`` (None: open), in order."""
        lo = 0 if start is None else bisect_left(self.times, start)
        hi = len(self.times) if end is None else bisect_left(self.times, end)
        return memoryview(self.rows)[lo : max(lo, hi)]  # a view: no copy of the window


def _index(rows: Sequence[int], times: Sequence[int], in_order: bool) -> _Index:
    """Index ``rows`` (ascending numbers) by ``times[row]``, ties by row number.

    ``in_order``: the rows are already in time order (else they are sorted).
    """
    ordered = list(rows) if in_order else sorted(rows, key=lambda r: (times[r], r))
    return _Index(array("q", ordered), array("q", (times[r] for r in ordered)))


# ---------------------------------------------------------------------------------------------
# The simulation


class Simulation:
    """The leads and actions of a simulated SalesExec account.

    ``settings.leads`` leads are created over the ``settings.days`` days that end at ``now``, lead
    ``i`` at ``start + (i + u) * span / n`` for a jitter ``0 <= u < 1``, so ``LeadUID =
    1048577 + i`` grows with ``CreatedUtc``. Each lead has a lead type and an assigned user (whose
    branch is the lead's); about a fifth are closed (``CreatedUtc <= ClosedUtc``); each has 0 to 4
    actions after it was created, ``ActionUID`` numbering all actions in time order.
    ``LastUpdatedUtc`` is the latest of its creation, actions, closing and a field edit. Every
    time is before ``now``. :meth:`page`, :meth:`leads` and the other report methods give rows
    exactly as the API answers them.

    Window arguments (``start`` inclusive, ``end`` exclusive) are aware datetimes (naive ones are
    read as UTC) or None for an open side.
    """

    def __init__(self, settings: Settings, now: datetime | None = None) -> None:
        now = now_or_utc(now)
        self.settings = settings
        self.now = now.astimezone(UTC)
        self.branches, self.users, self.lead_types = _catalog(settings.seed)
        self._type_of_uid = {lt.uid: n for n, lt in enumerate(self.lead_types)}
        self._prefix = f"salesexec:{settings.seed}:".encode()
        self._extra_prefix = f"salesexec-extra:{settings.seed}:".encode()
        self._now = to_ticks(self.now)
        self._start = self._now - settings.days * _DAY
        self._build(settings.leads)
        rng = random.Random(f"salesexec-awaiting:{settings.seed}")
        self._awaiting = _split(settings.awaiting_import, len(self.lead_types), rng)

    # -- generation --------------------------------------------------------------------------

    def _digest(self, i: int) -> bytes:
        return hashlib.blake2b(self._prefix + i.to_bytes(8, "little")).digest()

    def _extra(self, i: int) -> bytes:
        return hashlib.blake2b(self._extra_prefix + i.to_bytes(8, "little")).digest()

    def _build(self, n: int) -> None:
        weights = (8, 5, 3, 2)[: len(self.lead_types)]
        type_table = [t for t, w in enumerate(weights) for _ in range(w)]
        type_of_byte = bytes(type_table[b * len(type_table) // 256] for b in range(256))
        users = len(self.users)
        start, span, now = self._start, self._now - self._start, self._now
        scale = max(n, 1) << 32
        created, updated, closed = array("q"), array("q"), array("q")
        types, owners, acted = array("b"), array("h"), array("b")
        actions: list[tuple[int, int, int]] = []  # (time, lead, slot)
        for i in range(n):
            d = self._digest(i)
            c = start + ((i << 32 | int.from_bytes(d[0:4], "little")) * span) // scale
            types.append(type_of_byte[d[4]])
            owners.append(int.from_bytes(d[5:7], "little") % users)
            last = c
            t, done = c, 0
            for s in range(_ACTION_COUNTS[d[32]]):
                g = int.from_bytes(d[33 + 3 * s : 36 + 3 * s], "little")
                t += _MINUTE // 2 + ((g * g >> 24) * (3 * _DAY) >> 24)  # mostly soon after
                if t >= now:
                    break
                actions.append((t, i, s))
                done += 1
                last = t
            acted.append(done)
            shut = -1
            if d[23] < 56:
                g = int.from_bytes(d[25:28], "little")
                at = c + _MINUTE + ((g * g >> 24) * (14 * _DAY) >> 24)
                if at < now:
                    shut = at
                    last = max(last, at)
            if d[31] < 144:
                edit = c + (int.from_bytes(d[28:31], "little") * (10 * _DAY) >> 24)
                if edit < now:
                    last = max(last, edit)
            created.append(c)
            closed.append(shut)
            updated.append(last)
        actions.sort()
        self._created, self._updated, self._closed = created, updated, closed
        self._types, self._owners, self._acted = types, owners, acted
        self._action_lead = array("q", (a[1] for a in actions))
        self._action_slot = array("b", (a[2] for a in actions))
        self._action_times = action_times = array("q", (a[0] for a in actions))

        def by_type(rows: Sequence[int], type_of: Sequence[int]) -> list[list[int]]:
            groups: list[list[int]] = [[] for _ in self.lead_types]
            for r in rows:
                groups[type_of[r]].append(r)
            return groups

        lead_rows = range(n)
        closed_rows = [i for i in lead_rows if closed[i] >= 0]
        action_types = array("b", (types[lead] for lead in self._action_lead))
        sources: dict[str, tuple[Sequence[int], Sequence[int], Sequence[int], bool]] = {
            "leads": (lead_rows, created, types, True),
            "closed_leads": (closed_rows, closed, types, False),
            "last_updated_leads": (lead_rows, updated, types, False),
            "actions": (range(len(actions)), action_times, action_types, True),
        }
        self._indexes: dict[str, dict[int | None, _Index]] = {}
        for report, (rows, times, type_of, in_order) in sources.items():
            groups = enumerate(by_type(rows, type_of))
            indexes: dict[int | None, _Index] = {t: _index(g, times, in_order) for t, g in groups}
            indexes[None] = _index(rows, times, in_order)
            self._indexes[report] = indexes
        # (branch, lead type or None) -> creation times of its leads, ascending
        self._branch_times: dict[tuple[int, int | None], array[int]] = {}
        branch_of = {b: n for n, b in enumerate(self.branches)}
        for i in lead_rows:
            b = branch_of[self.users[owners[i]].branch]
            for key_type in (None, types[i]):
                self._branch_times.setdefault((b, key_type), array("q")).append(created[i])

    # -- selecting ---------------------------------------------------------------------------

    def _type(self, lead_type_uid: int | None) -> int | None:
        """The lead type's position, None for all, ``_NO_TYPE`` for one the account lacks."""
        if lead_type_uid is None:
            return None
        return self._type_of_uid.get(lead_type_uid, _NO_TYPE)

    def select(
        self, report: str, start: int | None, end: int | None, lead_type_uid: int | None = None
    ) -> Sequence[int]:
        """Row numbers of a dated row report in a window of ticks, in answer order.

        Raises:
            KeyError: ``report`` is not one of actions, leads, closed_leads, last_updated_leads.
        """
        indexes = self._indexes[report]
        kind = self._type(lead_type_uid)
        if kind == _NO_TYPE:
            return range(0)
        return indexes[kind].window(start, end)

    def render(self, report: str, rows: Sequence[int]) -> list[dict[str, Any]]:
        """The given rows (from :meth:`select`) as the API writes them."""
        if report == "actions":
            return [self._action_row(a) for a in rows]
        closing = report == "closed_leads"
        return [self._lead_row(i, closing) for i in rows]

    def count_rows(
        self, report: str, start: int | None, end: int | None, lead_type_uid: int | None = None
    ) -> list[dict[str, Any]]:
        """The rows of a count report: branch_lead_count (BranchUID order, branches with no
        lead in the window left out) or awaiting_import_count (LeadTypeUID order; the window is
        ignored; an unknown lead type counts 0).

        Raises:
            KeyError: another report.
        """
        if report == "awaiting_import_count":
            if lead_type_uid is None:
                pairs = [(lt.uid, n) for lt, n in zip(self.lead_types, self._awaiting, strict=True)]
            else:
                position = self._type_of_uid.get(lead_type_uid)
                pairs = [(lead_type_uid, 0 if position is None else self._awaiting[position])]
            return [{"LeadTypeUID": uid, "Count": count} for uid, count in pairs]
        if report != "branch_lead_count":
            raise KeyError(report)
        kind = self._type(lead_type_uid)
        if kind == _NO_TYPE:
            return []
        out = []
        for b, branch in enumerate(self.branches):
            times = self._branch_times.get((b, kind), array("q"))
            lo = 0 if start is None else bisect_left(times, start)
            hi = len(times) if end is None else bisect_left(times, end)
            if hi > lo:
                out.append(
                    {"BranchUID": branch.uid, "BranchName": branch.name, "LeadCount": hi - lo}
                )
        return out

    def page(
        self,
        report: str,
        start: int | None,
        end: int | None,
        lead_type_uid: int | None,
        offset: int,
        limit: int,
    ) -> tuple[int, list[dict[str, Any]]]:
        """``(TotalCount, Results)`` of one page of any report."""
        if report in self._indexes:
            rows = self.select(report, start, end, lead_type_uid)
            return len(rows), self.render(report, rows[offset : offset + limit])
        counted = self.count_rows(report, start, end, lead_type_uid)
        return len(counted), counted[offset : offset + limit]

    # -- rows --------------------------------------------------------------------------------

    def _lead_row(self, i: int, closing: bool = False) -> dict[str, Any]:
        d, e = self._digest(i), self._extra(i)
        lead_type = self.lead_types[self._types[i]]
        owner = self.users[self._owners[i]]
        f, g = d[9] % len(_FIRST), d[10] % len(_LAST)
        email = None
        if d[13] >= 16:
            number = int.from_bytes(d[11:13], "little") % 1000
            domain = _DOMAINS[d[13] % len(_DOMAINS)]
            email = f"{_FIRST_ASCII[f]}.{_LAST_ASCII[g]}{number}@{domain}"
        city, state, zip_prefix, area = _PLACES[d[21] % len(_PLACES)]
        address = None
        if d[22] >= 32:
            address = f"{int.from_bytes(d[18:20], 'little') % 9899 + 100} {_STREETS[d[20] % 12]}"
        reason = None
        if self._closed[i] >= 0:
            reason, status = _CLOSE_REASONS[d[24] % len(_CLOSE_REASONS)]
            stage = "Closed"
        elif self._acted[i] == 0:
            stage, status = "New", "New"
        else:
            stage = _OPEN_STAGES[d[45] % len(_OPEN_STAGES)]
            status = _OPEN_STATUSES[d[46] % len(_OPEN_STATUSES)]
        row = {
            "LeadUID": LEAD_UID_BASE + i,
            "LeadGuid": str(uuid.UUID(bytes=e[:16], version=4)),
            "LeadTypeUID": lead_type.uid,
            "LeadTypeName": lead_type.name,
            "LeadSourceName": _SOURCES[d[7] % len(_SOURCES)],
            "CampaignName": _CAMPAIGNS[d[8] % len(_CAMPAIGNS)],
            "FirstName": _FIRST[f],
            "LastName": _LAST[g],
            "Email": email,
            "Phone": f"{area}{int.from_bytes(d[14:17], 'little') % 8_000_000 + 2_000_000}",
            "Address": address,
            "City": city,
            "State": state,
            "Zip": f"{zip_prefix}{d[17] % 100:02d}",
            "LifeCycleStageName": stage,
            "LeadStatusName": status,
            "AssignedUserName": owner.name,
            "BranchName": owner.branch.name,
            "CreatedUtc": format_ticks(self._created[i]),
            "LastUpdatedUtc": format_ticks(self._updated[i]),
        }
        if closing:
            row["ClosedUtc"] = format_ticks(self._closed[i])
            row["CloseReason"] = reason
        return row

    def _action_row(self, a: int) -> dict[str, Any]:
        i, s = self._action_lead[a], self._action_slot[a]
        e = self._extra(i)
        bits = e[16 + s]
        user = self.users[self._owners[i]]
        if bits & 0xC0 == 0xC0:  # a quarter of the actions are someone else's
            user = self.users[e[20 + s] % len(self.users)]
        kind = _ACTION_TYPES[bits & 7]
        disposition = None if kind == "Note" else _DISPOSITIONS[bits >> 3 & 7]
        notes = _NOTES[e[24 + s] % len(_NOTES)] if kind == "Note" or e[24 + s] < 96 else None
        return {
            "ActionUID": ACTION_UID_BASE + a,
            "LeadUID": LEAD_UID_BASE + i,
            "LeadTypeUID": self.lead_types[self._types[i]].uid,
            "ActionTypeName": kind,
            "DispositionName": disposition,
            "UserAccountUID": user.uid,
            "UserName": user.name,
            "BranchUID": user.branch.uid,
            "BranchName": user.branch.name,
            "Notes": notes,
            "ActionDateUtc": format_ticks(self._action_times[a]),
        }

    # -- the truth, by report ----------------------------------------------------------------

    def _rows(
        self, report: str, start: datetime | None, end: datetime | None, lead_type_uid: int | None
    ) -> list[dict[str, Any]]:
        lo = None if start is None else to_ticks(start)
        hi = None if end is None else to_ticks(end)
        return self.page(report, lo, hi, lead_type_uid, 0, sys.maxsize)[1]

    def actions(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        lead_type_uid: int | None = None,
    ) -> list[dict[str, Any]]:
        """All Actions: ``start <= ActionDateUtc < end``, by ActionDateUtc then ActionUID."""
        return self._rows("actions", start, end, lead_type_uid)

    def leads(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        lead_type_uid: int | None = None,
    ) -> list[dict[str, Any]]:
        """All Leads: ``start <= CreatedUtc < end``, by CreatedUtc then LeadUID."""
        return self._rows("leads", start, end, lead_type_uid)

    def closed_leads(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        lead_type_uid: int | None = None,
    ) -> list[dict[str, Any]]:
        """Closed Leads: ``start <= ClosedUtc < end``, by ClosedUtc then LeadUID."""
        return self._rows("closed_leads", start, end, lead_type_uid)

    def last_updated_leads(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        lead_type_uid: int | None = None,
    ) -> list[dict[str, Any]]:
        """Last Updated Leads: ``start <= LastUpdatedUtc < end``, by LastUpdatedUtc then LeadUID."""
        return self._rows("last_updated_leads", start, end, lead_type_uid)

    def branch_lead_count(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        lead_type_uid: int | None = None,
    ) -> list[dict[str, Any]]:
        """Branch Lead Count: leads with ``start <= CreatedUtc < end`` per branch (BranchUID
        order; branches without any are left out)."""
        return self._rows("branch_lead_count", start, end, lead_type_uid)

    def awaiting_import_count(self, lead_type_uid: int | None = None) -> list[dict[str, Any]]:
        """Count for Leads Awaiting Import: one row per lead type, or one for ``lead_type_uid``."""
        return self.count_rows("awaiting_import_count", None, None, lead_type_uid)


__all__ = [
    "ACTION_FIELDS",
    "ACTION_UID_BASE",
    "AWAITING_FIELDS",
    "BRANCH_COUNT_FIELDS",
    "CLOSED_FIELDS",
    "LEAD_FIELDS",
    "LEAD_UID_BASE",
    "REPORT_DATE_FIELDS",
    "TICKS_PER_SECOND",
    "Branch",
    "LeadType",
    "Simulation",
    "User",
    "format_ticks",
    "to_ticks",
]
