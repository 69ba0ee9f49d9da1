"""The simulated LeadExec account: which leads exist, what they hold, and how they render.

Nothing here knows about HTTP (:mod:`leadferry.simulators.leadexec` serves it). How it stays fast:

- A lead is never stored. Its content comes from the 64 bytes of ``blake2b(seed, lid, i)``. Each
  field owns one byte (or 12 bits of two bytes, for fields with many values) that indexes a table of
  256 (or 4,096) entries, in which the field's absence is baked in as some empty entries. So a
  field costs one look-up and lead ``i`` costs one hash.
- Each table holds its entries three ways: the typed value (the truth the tests compare with), the
  XML element and the JSON member, both escaped once when the simulation starts.
- Lead ``g`` (numbered over all lead types) was added ``floor(g * span / n)`` seconds of wall-clock
  time after the start of the window, so a date window maps to an index range by arithmetic.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from leadferry.clock import now_or_utc

if TYPE_CHECKING:
    from leadferry.simulators.leadexec import Settings

UID_BASE = 22_363_629
DEFAULT_LID = 1
SYSTEM_FIELDS = (
    "UID",
    "LeadSource",
    "DateAdded",
    "FileUID",
    "Campaign",
    "IsValid",
    "MaxSell",
    "Price",
    "LastUpdated",
)
_DAY = 86_400
_DIGEST = 64


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""What an accessor returns for a field absent from a lead."""


def format_us(value: datetime) -> str:
    """``1/5/2014 10:50:54 AM``: the US 12-hour form of LeadExec's XML."""
    half = "AM" if value.hour < 12 else "PM"
    return f"{value.month}/{value.day}/{value.year} {value.hour % 12 or 12}:{value:%M:%S} {half}"


def format_iso(value: datetime) -> str:
    """``2014-01-05T10:50:54``: the form of LeadExec's JSON."""
    return value.strftime("%Y-%m-%dT%H:%M:%S")


@cache
def _clock(fmt: str) -> tuple[str, ...]:
    """The time of day for every second of a day, as each format writes it."""
    if fmt == "xml":
        hours = [(f"{h % 12 or 12}:", " AM" if h < 12 else " PM") for h in range(24)]
    else:
        hours = [(f"{h:02d}:", "") for h in range(24)]
    return tuple(
        f"{hh}{m:02d}:{s:02d}{half}" for hh, half in hours for m in range(60) for s in range(60)
    )


# ---------------------------------------------------------------------------------------------
# The field catalog: LeadExec data types and value pools

_FIRST = (
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Charles", "Karen", "Daniel", "Lisa", "Matthew", "Nancy", "Anthony", "Betty", "Mark", "Sandra",
    "Steven", "Ashley", "Andrew", "Kimberly", "Kevin", "Emily", "Brian", "Donna", "José", "Zoë",
    "Chloé", "Łukasz", "Søren", "Renée", "Björn", "Mária", "André",
)  # fmt: skip
_LAST = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright",
    "O'Brien", "Müller", "Núñez", "Smith & Wesson", "<unknown>", "D'Angelo", "Østergaard",
    "Nguyễn",
)  # fmt: skip
_CITIES = (
    "Los Angeles", "San Diego", "Sacramento", "Phoenix", "Dallas", "Austin", "Houston", "Denver",
    "Seattle", "Portland", "Chicago", "Miami", "Atlanta", "Boston", "New York", "Philadelphia",
    "Winston-Salem", "Cañon City", "Coeur d'Alene", "Española",
)  # fmt: skip
_STATES = (
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS",
    "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY",
    "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV",
    "WI", "WY", "DC",
)  # fmt: skip
_COMPANIES = (
    "Acme Corp", "Globex", "Initech", "Umbrella Mortgage", "Smith & Sons", "Stark Lending",
    "Hooli", "<Acme> Ltd", "Vandelay Industries", "Müller GmbH", "Soylent & Co", "Pied Piper",
    "Tyrell Corp",
)  # fmt: skip
_COMMENTS = (
    "Call after 5pm & before 8pm", "Rate < 5% please", "Prefers e-mail — not phone",
    "Spanish speaker: habla español", "Asked about refinancing", '"Urgent" callback',
    "Wrong number once", "Interested in 30yr fixed",
)  # fmt: skip
_TITLES = (
    "Owner", "CEO", "CFO", "VP, Sales & Marketing", "Office Manager", "Director of IT", "Buyer",
)  # fmt: skip
_STATUSES = (
    "New", "New", "New", "Contacted", "Qualified", "Sold", "Returned", "Duplicate",
)  # fmt: skip
_SOURCES = (
    "Web Form", "Web Form", "Web Form", "Partner API", "Import", "Landing Page", "Call Center",
)  # fmt: skip
_CAMPAIGNS = (
    "Google Search", "Facebook Lead Ads", "Bing Ads", "Email Blast", "Referral", "Organic",
)  # fmt: skip
_CLIENTS = (
    "Acme Lending", "Best Rate Mortgage", "Coast & Valley Insurance", "Delta Funding",
    "Evergreen Agency", "First Choice Home Loans", "Golden State Brokers", "Harbor Financial",
)  # fmt: skip
_GCLID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
# Vendor values are naive wall-clock times, so these anchors are naive on purpose.
_1940 = datetime(1940, 1, 1)  # noqa: DTZ001
_2000 = datetime(2000, 1, 1)  # noqa: DTZ001


def _money(r: random.Random, low: int, high: int, step: int) -> Decimal:
    return Decimal(r.randrange(low, high) * step).quantize(Decimal("0.01"))


def _email(r: random.Random) -> str:
    domain = r.choice(("example.com", "mail.test", "inbox.example"))
    first, last = r.choice(_FIRST[:36])[0].lower(), r.choice(_LAST[:36]).lower()
    return f"{first}{last}{r.randrange(100)}@{domain}"


_POOLS: dict[str, Callable[[random.Random], Any]] = {
    "FirstName": lambda r: r.choice(_FIRST),
    "LastName": lambda r: r.choice(_LAST),
    "Email": _email,
    "Phone": lambda r: (
        f"{r.randrange(201, 990)}{r.randrange(200, 1000):03d}{r.randrange(10**4):04d}"
    ),
    "City": lambda r: r.choice(_CITIES),
    "State": lambda r: r.choice(_STATES),
    "ZipPostal": lambda r: f"{r.randrange(1000, 99951):05d}",
    "Country": lambda r: r.choice(("US",) * 6 + ("Canada", "México")),
    "IPAddress": lambda r: ".".join(str(r.randrange(1, 255)) for _ in range(4)),
    "Comments": lambda r: r.choice(_COMMENTS),
    "Status": lambda r: r.choice(_STATUSES),
    "Age": lambda r: r.randrange(18, 90),
    "OptIn": lambda r: r.random() < 0.8,
    "Homeowner": lambda r: r.choice(("Yes", "No")),
    "Income": lambda r: _money(r, 1500, 40000, 5),
    "CreditScore": lambda r: r.randrange(600, 1700) / 2,
    "LoanAmount": lambda r: r.randrange(20, 3000) * 500,
    "DebtToIncome": lambda r: round(r.random() * 0.6, 3),
    "BirthDate": lambda r: _1940 + timedelta(days=r.randrange(60 * 365)),
    "PropertyValue": lambda r: r.randrange(100, 4000) * 1000,
    "Veteran": lambda r: r.choice(("Yes", "No", "No", "No")),
    "LoanPurpose": lambda r: r.choice(("Purchase", "Refinance", "Cash-Out Refinance", "HELOC")),
    "Smoker": lambda r: r.choice(("Yes", "No", "No")),
    "CurrentInsurer": lambda r: r.choice(
        ("State Farm", "GEICO", "Allstate", "Progressive", "None")
    ),
    "CoverageAmount": lambda r: _money(r, 10, 200, 5000),
    "HasClaims": lambda r: r.random() < 0.2,
    "Company": lambda r: r.choice(_COMPANIES),
    "JobTitle": lambda r: r.choice(_TITLES),
    "NumberOfEmployees": lambda r: r.choice((1, 5, 10, 25, 50, 100, 250, 1000, 5000)),
    "AnnualRevenue": lambda r: _money(r, 1, 5000, 10000),
    "utm_source": lambda r: r.choice(("google", "facebook", "bing", "newsletter", "partner")),
    "utm_medium": lambda r: r.choice(("cpc", "social", "email", "referral")),
    "utm_campaign": lambda r: r.choice(("spring_promo", "refi-2024", "brand", "retargeting")),
    "gclid": lambda r: "".join(r.choice(_GCLID_CHARS) for _ in range(24)),
    "CallbackTime": lambda r: _2000 + timedelta(seconds=r.randrange(30 * 365 * _DAY)),
    "Gender": lambda r: r.choice(("M", "F")),
}
# Fields with many distinct values get 12 bits (4,096 entries) instead of 8.
_WIDE = frozenset((
    "Email", "Phone", "ZipPostal", "IPAddress", "Income", "CreditScore", "LoanAmount", "BirthDate",
    "PropertyValue", "CoverageAmount", "AnnualRevenue", "gclid", "CallbackTime",
))  # fmt: skip

# (name, LeadExec data type, presence: on how many leads out of 16)
_Spec = tuple[str, str, int]
_COMMON: tuple[_Spec, ...] = (
    ("FirstName", "String", 16), ("LastName", "String", 16), ("Email", "String", 15),
    ("Phone", "PhoneNumber", 14), ("City", "String", 13), ("State", "USState", 14),
    ("ZipPostal", "PostalCode", 14), ("Country", "String", 10), ("IPAddress", "String", 12),
    ("Age", "Int32", 10), ("OptIn", "Boolean", 16), ("Homeowner", "YesNo", 12),
    ("Income", "Decimal", 8), ("CreditScore", "Double", 9), ("LoanAmount", "Int64", 11),
    ("DebtToIncome", "Float", 7), ("BirthDate", "DateTime", 9), ("Comments", "String", 5),
    ("Status", "String", 16),
)  # fmt: skip
_VERTICALS: tuple[tuple[_Spec, ...], ...] = (
    (("Company", "String", 12), ("JobTitle", "String", 10), ("NumberOfEmployees", "Int32", 9),
     ("AnnualRevenue", "Decimal", 6), ("CallbackTime", "DateTime", 4)),
    (("PropertyValue", "Int64", 13), ("Veteran", "YesNo", 14), ("LoanPurpose", "String", 15),
     ("CallbackTime", "DateTime", 5)),
    (("Smoker", "YesNo", 14), ("CurrentInsurer", "String", 12), ("CoverageAmount", "Decimal", 11),
     ("HasClaims", "Boolean", 16), ("Gender", "String", 15)),
)  # fmt: skip
_EXTRAS: tuple[_Spec, ...] = (
    ("utm_source", "String", 10), ("utm_medium", "String", 10), ("utm_campaign", "String", 9),
    ("gclid", "String", 6),
)  # fmt: skip


def _field_specs(lid: int) -> tuple[_Spec, ...]:
    """A lead type's own fields: the common ones, a vertical by ``lid % 3``, extras by hash."""
    bits = hashlib.blake2b(f"lid-fields:{lid}".encode(), digest_size=1).digest()[0]
    return _COMMON + _VERTICALS[lid % 3] + tuple(s for n, s in enumerate(_EXTRAS) if bits >> n & 1)


def _text(value: Any, dtype: str) -> str:
    if dtype == "Boolean":
        return "true" if value else "false"
    return format_us(value) if dtype == "DateTime" else str(value)


def _json_literal(value: Any, dtype: str) -> str:
    if dtype == "DateTime":
        return json.dumps(format_iso(value))
    return str(value) if isinstance(value, Decimal) else json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True)
class _Table:
    """A field's entries three ways: typed (MISSING when absent), XML element, JSON member."""

    name: str
    dtype: str
    wide: bool
    values: tuple[Any, ...]
    xml: tuple[str, ...]
    json: tuple[str, ...]

    @classmethod
    def build(cls, name: str, dtype: str, pool: Sequence[Any], presence: int, wide: bool) -> _Table:
        """Entry ``j`` (of 256, or 4,096 when wide) is absent when its top 4 bits >= presence."""
        size, shift = (4096, 8) if wide else (256, 4)
        xml = {v: f"<{name}>{escape(_text(v, dtype))}</{name}>" for v in pool}
        js = {v: f',"{name}":{_json_literal(v, dtype)}' for v in pool}
        picks = [pool[j % len(pool)] if j >> shift < presence else MISSING for j in range(size)]
        return cls(
            name,
            dtype,
            wide,
            tuple(picks),
            tuple("" if v is MISSING else xml[v] for v in picks),
            tuple("" if v is MISSING else js[v] for v in picks),
        )


@cache
def _field_table(name: str, dtype: str, presence: int) -> _Table:
    rng = random.Random(f"pool:{name}")
    wide = name in _WIDE
    pool = [_POOLS[name](rng) for _ in range(1024 if wide else 256)]
    return _Table.build(name, dtype, pool, presence, wide)


@cache
def _system_tables() -> tuple[_Table, ...]:
    rng = random.Random("system")
    files = [0] * 12 + [rng.randrange(1000, 99999) for _ in range(4)]
    prices = [Decimal(rng.randrange(100, 9000)) / 100 for _ in range(256)]
    pools: list[tuple[str, str, Sequence[Any]]] = [
        ("LeadSource", "String", _SOURCES),
        ("FileUID", "Int32", files),
        ("Campaign", "String", _CAMPAIGNS),
        ("IsValid", "Boolean", [True] * 15 + [False]),
        ("MaxSell", "Int32", (1, 1, 2, 3, 4, 5)),
        ("Price", "Decimal", [p.quantize(Decimal("0.01")) for p in prices]),
    ]
    return tuple(_Table.build(name, dtype, pool, 16, False) for name, dtype, pool in pools)


_SEND_COUNTS = (0, 0, 0, 1, 1, 1, 2, 3) * 32  # by one byte


def _update_delays() -> tuple[int, ...]:
    """Seconds from DateAdded to LastUpdated, by one byte; 40% of leads were never updated."""
    rng = random.Random("updates")
    return tuple(0 if rng.random() < 0.4 else rng.randrange(60, 7 * _DAY) for _ in range(256))


_UPDATE_DELAYS = _update_delays()
_SEND_CLIENTS = tuple((1000 + 7 * n, name) for n, name in enumerate(_CLIENTS * 2))
_SEND_PRICES = tuple(
    Decimal(p) for p in ("5.00", "7.50", "10.00", "12.50", "15.00", "20.00", "25.00", "40.00")
)


def _send_pieces(fmt: str) -> dict[str, Any]:
    """Per client: the text before DateSent; per price: the text after it; and the wrappers."""
    if fmt == "xml":
        heads = tuple(
            f"<Send><ClientUID>{uid}</ClientUID><ClientName>{escape(name)}</ClientName><DateSent>"
            for uid, name in _SEND_CLIENTS
        )
        tails = tuple(f"</DateSent><Price>{p}</Price></Send>" for p in _SEND_PRICES)
        return {"heads": heads, "tails": tails, "s_open": "<Sends>", "s_close": "</Sends>",
                "s_none": "", "sep": ""}  # fmt: skip
    heads = tuple(
        f'{{"ClientUID":{uid},"ClientName":{json.dumps(name)},"DateSent":"'
        for uid, name in _SEND_CLIENTS
    )
    tails = tuple(f'","Price":{p}}}' for p in _SEND_PRICES)
    return {"heads": heads, "tails": tails, "s_open": ',"Sends":[', "s_close": "]",
            "s_none": ',"Sends":[]', "sep": ","}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Lead types: which digest bytes each field reads


@dataclass
class _LeadType:
    lid: int
    position: int  # r: this lead type owns the global leads g = i * k + r
    prefix: bytes
    fields: list[tuple[str, str]] = field(default_factory=list)  # (name, type), output order
    # name -> ("table", byte, table) | ("added",) | ("updated", byte)
    layout: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    sends_byte: int = 0
    renderers: dict[tuple[str, frozenset[str] | None], Any] = field(default_factory=dict)

    def resolve(self, name: str) -> str | None:
        """The field's real name, matched case-insensitively; None when the lead type lacks it."""
        for known in (*self.layout, "Sends"):
            if known.lower() == name.lower():
                return known
        return None


def _build_lead_type(lid: int, position: int, seed: int) -> _LeadType:
    lt = _LeadType(lid, position, f"leadexec:{seed}:{lid}:".encode())
    used = 0

    def add(name: str, dtype: str, spec: tuple[Any, ...], size: int) -> None:
        nonlocal used
        lt.layout[name] = (spec[0], used, *spec[1:])
        lt.fields.append((name, dtype))
        used += size

    lt.layout["UID"] = ("uid",)
    lt.fields.append(("UID", "Int64"))
    system = _system_tables()
    for table in system[:1]:
        add(table.name, table.dtype, ("table", table), 1)
    lt.layout["DateAdded"] = ("added",)
    lt.fields.append(("DateAdded", "DateTime"))
    for table in system[1:]:
        add(table.name, table.dtype, ("table", table), 1)
    add("LastUpdated", "DateTime", ("updated",), 1)
    for name, dtype, presence in _field_specs(lid):
        table = _field_table(name, dtype, presence)
        add(name, dtype, ("table", table), 2 if table.wide else 1)
    lt.sends_byte = used
    used += 7  # a count, then two bytes per send
    assert used <= _DIGEST, f"lid {lid} needs {used} digest bytes"
    return lt


# ---------------------------------------------------------------------------------------------
# The simulation


class Simulation:
    """The leads of a simulated LeadExec account, computed on demand (nothing is materialised).

    ``settings.leads`` leads in total are spread evenly over the ``settings.days`` days of
    wall-clock time (in ``settings.timezone``) that end at ``now``: lead ``g`` was added at
    ``start + floor(g * days * 86400 / leads)`` seconds. With k lead types, lead ``g`` belongs to
    ``lids[g % k]`` as that type's lead ``i = g // k``, and its ``UID`` is ``22363629 + g``. Its
    fields are a pure function of ``(seed, lid, i)``.

    Below, ``i`` is the index within a lead type, from 0 to ``total(lid) - 1``, in DateAdded order.
    Naive datetimes are wall-clock times in the simulator's zone; aware ones are converted.

    Every wall-clock day counts 86,400 seconds, so DateAdded never goes backwards. On the days the
    clocks change this means a few leads fall in the skipped hour and the repeated hour is not
    doubled: a simplification, since the real service stores naive Pacific times as they happen.
    """

    def __init__(self, settings: Settings, now: datetime | None = None) -> None:
        now = now_or_utc(now)
        self.settings = settings
        self.tz = ZoneInfo(settings.timezone)
        self.lids: tuple[int, ...] = tuple(dict.fromkeys(settings.lid or [DEFAULT_LID]))
        self.end = now.astimezone(self.tz).replace(tzinfo=None, microsecond=0)
        self.start = self.end - timedelta(days=settings.days)
        self._midnight = datetime.combine(self.start.date(), time())
        self._base = int((self.start - self._midnight).total_seconds())
        self._span = settings.days * _DAY
        self._n, self._k = settings.leads, len(self.lids)
        first = self.start.date()
        days = [first + timedelta(n) for n in range((self._base + self._span) // _DAY + 2)]
        self._days = {
            "xml": tuple(f"{d.month}/{d.day}/{d.year} " for d in days),
            "json": tuple(f"{d:%Y-%m-%d}T" for d in days),
        }
        self._types = {
            lid: _build_lead_type(lid, r, settings.seed) for r, lid in enumerate(self.lids)
        }

    # -- counting ----------------------------------------------------------------------------

    def total(self, lid: int) -> int:
        """How many leads the lead type holds (0 for a lid the account lacks)."""
        if lid not in self._types:
            return 0
        return max(0, -(-(self._n - self._types[lid].position) // self._k))

    def _before(self, when: datetime | None) -> int:
        """How many leads (of all lead types) were added strictly before ``when``."""
        if when is None:
            return self._n
        if when.tzinfo is not None:
            when = when.astimezone(self.tz).replace(tzinfo=None)
        delta = when - self._midnight
        seconds = delta.days * _DAY + delta.seconds + (1 if delta.microseconds else 0)
        if seconds <= self._base:
            return 0
        return min(self._n, -(-((seconds - self._base) * self._n) // self._span))

    def index_range(
        self, lid: int, start: datetime | None = None, end: datetime | None = None
    ) -> range:
        """Indices of ``lid``'s leads with ``start <= DateAdded < end`` (None: open that side)."""
        if lid not in self._types:
            return range(0)
        r, k = self._types[lid].position, self._k
        lo = max(0, -(-(self._before(start) - r) // k)) if start is not None else 0
        hi = max(0, -(-(self._before(end) - r) // k))
        return range(lo, max(lo, hi))

    def count(self, lid: int, start: datetime | None = None, end: datetime | None = None) -> int:
        """How many of ``lid``'s leads have ``start <= DateAdded < end``."""
        return len(self.index_range(lid, start, end))

    def fields(self, lid: int) -> list[tuple[str, str]]:
        """``(name, LeadExec data type)`` of every element a lead of ``lid`` can hold, in order,
        ending with ``("Sends", "Sends")``.

        Raises:
            KeyError: a lid the account lacks.
        """
        return [*self._types[lid].fields, ("Sends", "Sends")]

    def resolve_fields(self, lid: int, names: Iterable[str]) -> frozenset[str]:
        """The real names of ``names`` (case-insensitive, unknown ones dropped), plus UID."""
        lt = self._types[lid]
        return frozenset({"UID"} | {n for n in (lt.resolve(raw.strip()) for raw in names) if n})

    def resolve_field(self, lid: int, name: str) -> str | None:
        """The real name of one field of ``lid`` (case-insensitive), or None."""
        return self._types[lid].resolve(name) if lid in self._types else None

    # -- one lead, typed ---------------------------------------------------------------------

    def digest(self, lid: int, i: int) -> bytes:
        """The 64 bytes lead ``i`` of ``lid`` is made of."""
        return hashlib.blake2b(self._types[lid].prefix + i.to_bytes(8, "little")).digest()

    def _at(self, seconds: int) -> datetime:
        return self._midnight + timedelta(seconds=seconds)

    def _added(self, lt: _LeadType, i: int) -> int:
        return self._base + (i * self._k + lt.position) * self._span // self._n

    def accessor(self, lid: int, name: str) -> Callable[[int, bytes], Any]:
        """A function ``(i, digest(lid, i)) -> typed value``, or MISSING when the lead lacks it.

        Unknown names (and ``Sends``) always give MISSING. Queries and sorts scan with these.
        """
        lt = self._types[lid]
        spec = lt.layout.get(name, ("missing",))
        end = self._base + self._span
        if spec[0] == "uid":
            return lambda i, _d: UID_BASE + i * self._k + lt.position
        if spec[0] == "added":
            return lambda i, _d: self._at(self._added(lt, i))
        if spec[0] == "updated":
            at = spec[1]
            return lambda i, d: self._at(min(self._added(lt, i) + _UPDATE_DELAYS[d[at]], end))
        if spec[0] == "missing":
            return lambda _i, _d: MISSING
        at, values = spec[1], spec[2].values
        if spec[2].wide:
            return lambda _i, d: values[d[at] | (d[at + 1] & 15) << 8]
        return lambda _i, d: values[d[at]]

    def _sends(self, lt: _LeadType, i: int, d: bytes) -> list[dict[str, Any]]:
        at, end = lt.sends_byte, self._base + self._span
        sent = self._added(lt, i)
        sends = []
        for s in range(_SEND_COUNTS[d[at]]):
            bits = d[at + 1 + 2 * s] | d[at + 2 + 2 * s] << 8
            uid, name = _SEND_CLIENTS[bits & 15]
            sent = min(sent + 5 + 7 * (bits >> 7 & 255), end)
            price = _SEND_PRICES[bits >> 4 & 7]
            sends.append(
                {"ClientUID": uid, "ClientName": name, "DateSent": self._at(sent), "Price": price}
            )
        return sends

    def lead(self, lid: int, i: int) -> dict[str, Any]:
        """Lead ``i`` of ``lid`` as typed values: the fields it holds, then ``Sends`` (a list).

        Raises:
            KeyError: a lid the account lacks.
            IndexError: no lead ``i``.
        """
        if not 0 <= i < self.total(lid):
            raise IndexError(f"lid {lid} has no lead {i}")
        d = self.digest(lid, i)
        lead = {}
        for name, _ in self._types[lid].fields:
            value = self.accessor(lid, name)(i, d)
            if value is not MISSING:
                lead[name] = value
        lead["Sends"] = self._sends(self._types[lid], i, d)
        return lead

    def leads(
        self, lid: int, start: datetime | None = None, end: datetime | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every lead of ``lid`` added in ``[start, end)``, in DateAdded order."""
        for i in self.index_range(lid, start, end):
            yield self.lead(lid, i)

    # -- rendering ---------------------------------------------------------------------------

    def render(
        self,
        lid: int,
        indices: Iterable[int],
        fmt: str = "xml",
        fields: frozenset[str] | None = None,
        chunk: int = 100,
    ) -> Iterator[str]:
        """Yield the given leads ``chunk`` at a time, as ``<Lead>`` elements or (``fmt="json"``)
        comma-separated JSON objects. ``fields``: real field names to keep (UID is always kept).
        """
        lt = self._types[lid]
        key = (fmt, fields)
        if key not in lt.renderers:
            lt.renderers[key] = self._compile_renderer(lt, fmt, fields)
        first = True
        for text in lt.renderers[key](indices, chunk):
            # Every JSON lead starts with a comma, so the first one drops it.
            yield text[1:] if first and fmt == "json" else text
            first = False

    def _compile_renderer(
        self, lt: _LeadType, fmt: str, fields: frozenset[str] | None
    ) -> Callable[[Iterable[int], int], Iterator[str]]:
        """Generate the lead loop for one lead type, format and projection.

        Why generate code: a lead has about 40 pieces, and one tuple of table look-ups per lead
        (instead of a loop over field descriptions) triples the rate. The truth (:meth:`lead`) is
        computed by the plain code above, and the tests compare the two.
        """
        xml = fmt == "xml"
        env: dict[str, Any] = {
            "blake2b": hashlib.blake2b, "prefix": lt.prefix, "days": self._days[fmt],
            "clock": _clock(fmt), "delays": _UPDATE_DELAYS, "counts": _SEND_COUNTS,
            "lead_end": "</Lead>" if xml else "}", **_send_pieces(fmt),
        }  # fmt: skip
        pieces: list[str] = []  # expressions; literal text is folded into constants
        literal: list[str] = []
        dates: list[str] = []

        def expr(code: str) -> None:
            if literal:
                name = f"c{len(env)}"
                env[name] = "".join(literal)
                pieces.append(name)
                literal.clear()
            pieces.append(code)

        literal.append("<Lead><UID>" if xml else ',{"UID":"')
        expr("str(uid0 + g)")
        literal.append("</UID>" if xml else '"')
        for name, _ in lt.fields[1:]:
            if fields is not None and name not in fields:
                continue
            kind, *spec = lt.layout[name]
            if kind == "table":
                at, table = spec
                env[f"t_{name}"] = getattr(table, fmt)
                expr(
                    f"t_{name}[d[{at}] | (d[{at + 1}] & 15) << 8]"
                    if table.wide
                    else f"t_{name}[d[{at}]]"
                )
                continue
            var = f"v{len(dates)}"
            delay = f" + delays[d[{spec[0]}]], end)" if kind == "updated" else ""
            dates.append(
                f"{var}d, {var}s = divmod({'min(added' if delay else 'added'}{delay}, 86400)"
            )
            literal.append(f"<{name}>" if xml else f',"{name}":"')
            expr(f"days[{var}d]")
            expr(f"clock[{var}s]")
            literal.append(f"</{name}>" if xml else '"')
        expr("''")  # flushes the last literal
        sends = ""
        if fields is None or "Sends" in fields:
            at = lt.sends_byte
            sends = f"""
        count = counts[d[{at}]]
        if count:
            a(s_open)
            sent = added
            for s in range(count):
                bits = d[{at + 1} + 2 * s] | d[{at + 2} + 2 * s] << 8
                sent = min(sent + 5 + 7 * (bits >> 7 & 255), end)
                sd, ss = divmod(sent, 86400)
                extend((sep if s else '', heads[bits & 15], days[sd], clock[ss],
                        tails[bits >> 4 & 7]))
            a(s_close)
        else:
            a(s_none)"""
        k, r, span, base = self._k, lt.position, self._span, self._base
        dated = "".join(f"\n        {line}" for line in dates)
        source = f"""
def render(indices, chunk):
    out = []
    a, extend = out.append, out.extend
    end, uid0 = {base + span}, {UID_BASE + r}
    for c, i in enumerate(indices, 1):
        d = blake2b(prefix + i.to_bytes(8, "little")).digest()
        g = i * {k}
        added = {base} + (g + {r}) * {span} // {max(self._n, 1)}{dated}
        extend(({", ".join(pieces)},)){sends}
        a(lead_end)
        if c % chunk == 0:
            yield "".join(out)
            out.clear()
    if out:
        yield "".join(out)
"""
        exec(compile(source, f"<leadexec renderer lid={lt.lid} {fmt}>", "exec"), env)
        return env["render"]  # type: ignore[no-any-return]


__all__ = [
    "DEFAULT_LID",
    "MISSING",
    "SYSTEM_FIELDS",
    "UID_BASE",
    "Simulation",
    "format_iso",
    "format_us",
]
