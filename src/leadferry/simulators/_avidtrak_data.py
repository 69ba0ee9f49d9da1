"""The simulated AvidTrak account: its offline ("Lite") campaigns, its callers and their calls.

Nothing here knows about HTTP (:mod:`leadferry.simulators.avidtrak` serves it). Every name the spec
marks as reconstructed (method names, row fields) is in the tables at the top of this module, so a
user who learns a real name changes it here only.

How it stays fast: the calls are generated once, in time order, into compact arrays (one O(n) pass
with one seeded ``random.Random``); a call becomes a row only when a page shows it. Geographical
Data is aggregated from the same calls at start-up (a few thousand rows), so the two reports always
agree. A date window maps to an index range by bisecting the sorted call times (or row days).
"""

from __future__ import annotations

import hashlib
import random
from array import array
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from leadferry.clock import now_or_utc

if TYPE_CHECKING:
    from leadferry.simulators.avidtrak import Settings

# ---------------------------------------------------------------------------------------------
# Reconstructed names (vendor-apis.md section 3), in one place

OFFLINE_METHODS = ("offline_portal_calls", "all_lite_calls")  # all_lite_calls: the SOAP name
GEO_METHOD = "geo_data"
OFFLINE_COLUMNS = (
    "call_id", "call_date", "channel", "campaign", "tracking_number", "forward_number",
    "caller_number", "caller_name", "caller_city", "caller_state", "caller_zip", "duration",
    "call_status", "recording_url",
)  # fmt: skip
GEO_COLUMNS = (
    "date", "state", "city", "zip", "area_code", "country", "calls", "unique_calls",
    "answered_calls", "missed_calls", "total_duration", "avg_duration",
)  # fmt: skip
# Columns holding numbers (sent as strings, the way PHP encodes MySQL rows, unless typed).
INTEGER_COLUMNS = frozenset((
    "call_id", "duration", "calls", "unique_calls", "answered_calls", "missed_calls",
    "total_duration",
))  # fmt: skip
DECIMAL_COLUMNS = frozenset(("avg_duration",))
CHANNEL = "PORTAL"
STATUSES = ("answered", "missed", "voicemail")
CALL_ID_BASE = 7_340_001
RECORDINGS = "https://recordings.avidtrak.com/"

_DAY = 86_400

# ---------------------------------------------------------------------------------------------
# Value pools

# (campaign, tracking number, forward number, weight). Offline = "Lite" campaigns: numbers printed
# on things that are not web pages. "Internet X-Sell" is the campaign of the vendor's example.
_CAMPAIGNS = (
    ("Internet X-Sell", "8005550142", "3105550100", 9),
    ("Yellow Pages Ad", "8885550177", "3105550100", 6),
    ("Billboard - I-405 North", "3105550188", "3105550100", 5),
    ("Radio: KFI 640 AM", "8665550123", "3105550111", 7),
    ("Direct Mail (Spring)", "8775550190", "3105550111", 4),
    ("Newspaper Classifieds", "2135550164", "3105550100", 3),
    ("TV Spot - Local News", "8445550101", "3105550122", 5),
    ("Vehicle Wrap", "3235550155", "3105550122", 2),
    ("Trade Show Booth", "8555550133", "3105550111", 1),
    ("Flyers & Door Hangers", "7145550148", "3105550122", 2),
)
# (city, state, zip, area code, country). (state, city, zip) is unique: a Geographical Data row.
# Empty city and zip: a wireless number whose location is only known from its area code.
_LOCATIONS = (
    ("Los Angeles", "CA", "90012", "213", "US"), ("Santa Monica", "CA", "90401", "310", "US"),
    ("San Diego", "CA", "92101", "619", "US"), ("Sacramento", "CA", "95814", "916", "US"),
    ("San Francisco", "CA", "94103", "415", "US"), ("Fresno", "CA", "93721", "559", "US"),
    ("Phoenix", "AZ", "85004", "602", "US"), ("Tucson", "AZ", "85701", "520", "US"),
    ("Las Vegas", "NV", "89101", "702", "US"), ("Denver", "CO", "80202", "303", "US"),
    ("Cañon City", "CO", "81212", "719", "US"), ("Dallas", "TX", "75201", "214", "US"),
    ("Houston", "TX", "77002", "713", "US"), ("Austin", "TX", "78701", "512", "US"),
    ("San Antonio", "TX", "78205", "210", "US"), ("El Paso", "TX", "79901", "915", "US"),
    ("Seattle", "WA", "98101", "206", "US"), ("Spokane", "WA", "99201", "509", "US"),
    ("Portland", "OR", "97204", "503", "US"), ("Coeur d'Alene", "ID", "83814", "208", "US"),
    ("Salt Lake City", "UT", "84101", "801", "US"), ("Chicago", "IL", "60601", "312", "US"),
    ("Naperville", "IL", "60540", "630", "US"), ("Detroit", "MI", "48226", "313", "US"),
    ("Minneapolis", "MN", "55401", "612", "US"), ("St. Louis", "MO", "63101", "314", "US"),
    ("Kansas City", "MO", "64105", "816", "US"), ("Atlanta", "GA", "30303", "404", "US"),
    ("Miami", "FL", "33130", "305", "US"), ("Orlando", "FL", "32801", "407", "US"),
    ("Tampa", "FL", "33602", "813", "US"), ("Charlotte", "NC", "28202", "704", "US"),
    ("Winston-Salem", "NC", "27101", "336", "US"), ("Nashville", "TN", "37203", "615", "US"),
    ("New Orleans", "LA", "70112", "504", "US"), ("Boston", "MA", "02108", "617", "US"),
    ("New York", "NY", "10001", "212", "US"), ("Brooklyn", "NY", "11201", "718", "US"),
    ("Philadelphia", "PA", "19103", "215", "US"), ("Pittsburgh", "PA", "15222", "412", "US"),
    ("Baltimore", "MD", "21202", "410", "US"), ("Washington", "DC", "20001", "202", "US"),
    ("Newark", "NJ", "07102", "973", "US"), ("Columbus", "OH", "43215", "614", "US"),
    ("Española", "NM", "87532", "505", "US"), ("Anchorage", "AK", "99501", "907", "US"),
    ("Honolulu", "HI", "96813", "808", "US"), ("Toronto", "ON", "M5H 2N2", "416", "CA"),
    ("Montréal", "QC", "H2X 1Y4", "514", "CA"), ("Vancouver", "BC", "V6B 1A1", "604", "CA"),
    ("", "CA", "", "909", "US"), ("", "TX", "", "832", "US"), ("", "FL", "", "786", "US"),
)  # fmt: skip
_FIRST = (
    "JAMES", "MARY", "JOHN", "PATRICIA", "ROBERT", "JENNIFER", "MICHAEL", "LINDA", "DAVID",
    "ELIZABETH", "WILLIAM", "BARBARA", "RICHARD", "SUSAN", "JOSEPH", "JESSICA", "THOMAS", "SARAH",
    "CHARLES", "KAREN", "DANIEL", "LISA", "MATTHEW", "NANCY", "JOSE", "MARIA", "THANH", "WEI",
)  # fmt: skip
_LAST = (
    "SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "GARCIA", "MILLER", "DAVIS", "RODRIGUEZ",
    "MARTINEZ", "HERNANDEZ", "LOPEZ", "GONZALEZ", "WILSON", "ANDERSON", "TAYLOR", "MOORE",
    "JACKSON", "MARTIN", "LEE", "PEREZ", "THOMPSON", "WHITE", "HARRIS", "NGUYEN", "O'BRIEN",
    "D'ANGELO", "CHEN",
)  # fmt: skip
# Caller ID (CNAM) holds at most 15 upper-case ASCII characters; carriers fill in the rest.
_BUSINESSES = ("ACME PLUMBING", "SMITH & SONS", "O'REILLY AUTO", "JOE'S PIZZA", "A&B ROOFING")
# Local hour of day and weekday (Monday first): how busy the phones are.
_HOURS = (1, 1, 1, 1, 1, 2, 4, 8, 14, 18, 20, 20, 18, 19, 20, 19, 17, 14, 10, 8, 6, 4, 2, 1)
_WEEKDAYS = (1.0, 1.0, 1.0, 1.0, 0.95, 0.5, 0.3)


def _caller_name(rng: random.Random) -> str:
    pick = rng.random()
    if pick < 0.15:
        return "WIRELESS CALLER"
    if pick < 0.19:
        return ""
    if pick < 0.25:
        return rng.choice(_BUSINESSES)
    return f"{rng.choice(_LAST)} {rng.choice(_FIRST)}"[:15]


def _duration(rng: random.Random, status: int) -> int:
    """Seconds: a missed call has none; voicemails are short; answered calls are long-tailed."""
    if status == 1:
        return 0
    if status == 2:
        return rng.randrange(8, 121)
    return min(3600, max(5, int(rng.lognormvariate(4.6, 0.9))))


def _status(rng: random.Random) -> int:
    """An index into STATUSES: 70% answered, 18% missed, 12% voicemail."""
    pick = rng.random()
    return 0 if pick < 0.70 else 1 if pick < 0.88 else 2


def _decimal(total: int, count: int) -> str:
    """``total / count`` with two decimals, rounded like MySQL's ``ROUND(AVG(x), 2)``."""
    return str((Decimal(total) / Decimal(count)).quantize(Decimal("0.01"), ROUND_HALF_UP))


# ---------------------------------------------------------------------------------------------
# The simulation


class Simulation:
    """The calls of a simulated AvidTrak account, and the Geographical Data made from them.

    ``settings.calls`` calls are spread over the ``settings.days`` days of wall-clock time (in
    ``settings.timezone``) that end at ``now``, following a busy-hours profile; days listed in
    ``settings.empty_days`` (and local times skipped by a daylight-saving change) get none. Calls
    are numbered in time order: call ``i`` has ``call_id`` ``7340001 + i``. Everything is a pure
    function of the settings and ``now``.

    Dates in and out are naive wall-clock times in the account's zone, as in the API. Rows are
    dicts of strings in API column order, exactly as the API's JSON sends them by default.
    """

    def __init__(self, settings: Settings, now: datetime | None = None) -> None:
        now = now_or_utc(now)
        self.settings = settings
        self.tz = ZoneInfo(settings.timezone)
        self.end = now.astimezone(self.tz).replace(tzinfo=None, microsecond=0)
        self.start = self.end - timedelta(days=settings.days)
        self._midnight = datetime.combine(self.start.date(), time())
        self._first_day = self._midnight.date()
        rng = random.Random(f"avidtrak:{settings.seed}")
        self._times = self._place_calls(rng)
        self._generate(rng)
        self._aggregate()

    # -- generation --------------------------------------------------------------------------

    def _seconds(self, when: datetime) -> int:
        delta = when - self._midnight
        return delta.days * _DAY + delta.seconds

    def _place_calls(self, rng: random.Random) -> array[int]:
        """Call times (seconds after the first local midnight), sorted.

        The period is cut into local hours, each weighted by the busy-hours profile, a random
        factor for its day, and how much of it lies inside the period; call ``i`` lands at
        quantile ``(i + u) / n`` of the total weight, so the times come out sorted without a sort.
        """
        empty = {date.fromisoformat(d) for d in self.settings.empty_days}
        base, stop = self._seconds(self.start), self._seconds(self.end)
        lows: list[int] = []
        highs: list[int] = []
        cumulative: list[float] = []
        total = 0.0
        busy: dict[date, float] = {}  # some days are busier than others
        for hour in range(base // 3600, -(-stop // 3600)):
            low, high = max(hour * 3600, base), min(hour * 3600 + 3600, stop)
            wall = self._midnight + timedelta(hours=hour)
            weight = 0.0
            if high > low and wall.date() not in empty and self._exists(wall):
                day = busy.setdefault(wall.date(), rng.uniform(0.75, 1.25))
                weight = _HOURS[wall.hour] * _WEEKDAYS[wall.weekday()] * day * (high - low) / 3600
            if weight > 0:
                lows.append(low)
                highs.append(high)
                total += weight
                cumulative.append(total)
        times = array("q")
        n = self.settings.calls if cumulative else 0
        previous = base
        for i in range(n):
            q = (i + rng.random()) / n * total
            k = min(bisect_right(cumulative, q), len(cumulative) - 1)
            before = cumulative[k - 1] if k else 0.0
            fraction = min(max((q - before) / (cumulative[k] - before), 0.0), 1.0)
            second = min(lows[k] + int(fraction * (highs[k] - lows[k])), highs[k] - 1)
            previous = max(previous, second)
            times.append(previous)
        return times

    def _exists(self, wall: datetime) -> bool:
        """False for a local hour skipped when the clocks go forward."""
        aware = wall.replace(tzinfo=self.tz)
        return aware.astimezone(UTC).astimezone(self.tz).replace(tzinfo=None) == wall

    def _generate(self, rng: random.Random) -> None:
        """Who called which campaign, and how it went: one compact array per attribute."""
        n = len(self._times)
        pool = max(50, n // 4)
        self._callers: list[tuple[str, str, int]] = []  # (number, name, location)
        for _ in range(pool):
            location = rng.randrange(len(_LOCATIONS))
            number = f"{_LOCATIONS[location][3]}{rng.randrange(2, 10)}{rng.randrange(10**6):06d}"
            self._callers.append((number, _caller_name(rng), location))
        campaign_weights = [w for *_, w in _CAMPAIGNS]
        self._caller = array("l")
        self._campaign = array("B")
        self._status = array("B")
        self._duration = array("l")
        recent: deque[int] = deque(maxlen=25)
        for _ in range(n):
            # Some people call back soon, which is what makes unique_calls < calls.
            callback = bool(recent) and rng.random() < 0.12
            caller = rng.choice(recent) if callback else rng.randrange(pool)
            recent.append(caller)
            status = _status(rng)
            self._caller.append(caller)
            self._campaign.append(rng.choices(range(len(_CAMPAIGNS)), campaign_weights)[0])
            self._status.append(status)
            self._duration.append(_duration(rng, status))
        self._token = hashlib.blake2b(f"recordings:{self.settings.seed}".encode()).digest()

    def _aggregate(self) -> None:
        """Geographical Data: one row per (day, state, city, zip), in that order."""
        groups: dict[tuple[int, str, str, str], list[int]] = {}
        callers: dict[tuple[int, str, str, str], set[str]] = {}
        for i, at in enumerate(self._times):
            number, _, location = self._callers[self._caller[i]]
            city, state, zip_code, *_ = _LOCATIONS[location]
            key = (at // _DAY, state, city, zip_code)
            counts = groups.setdefault(key, [0, 0, 0, 0, location])
            counts[0] += 1
            counts[1] += self._status[i] == 0
            counts[2] += self._status[i] == 1
            counts[3] += self._duration[i]
            callers.setdefault(key, set()).add(number)
        self._geo: list[tuple[str, ...]] = []
        self._geo_days = array("q")
        for key in sorted(groups):
            day, state, city, zip_code = key
            calls, answered, missed, duration, location = groups[key]
            _, _, _, area_code, country = _LOCATIONS[location]
            self._geo_days.append(day)
            self._geo.append((
                (self._first_day + timedelta(days=day)).isoformat(), state, city, zip_code,
                area_code, country, str(calls), str(len(callers[key])), str(answered),
                str(missed), str(duration), _decimal(duration, calls),
            ))  # fmt: skip

    # -- windows -----------------------------------------------------------------------------

    @property
    def total_calls(self) -> int:
        """How many calls the account holds."""
        return len(self._times)

    def call_range(self, start: datetime, end: datetime) -> range:
        """Indices of the calls with ``start <= call_date <= end`` (naive local times)."""
        low = self._seconds(start) + (1 if start.microsecond else 0)
        high = self._seconds(end)
        lo, hi = bisect_left(self._times, low), bisect_right(self._times, high)
        return range(lo, max(lo, hi))

    def geo_range(self, start: datetime, end: datetime) -> range:
        """Indices of the Geographical Data rows whose date is within ``[start, end]`` (by day)."""
        low = (start.date() - self._first_day).days
        high = (end.date() - self._first_day).days
        lo, hi = bisect_left(self._geo_days, low), bisect_right(self._geo_days, high)
        return range(lo, max(lo, hi))

    # -- rows --------------------------------------------------------------------------------

    def call_values(self, i: int) -> tuple[str, ...]:
        """Call ``i`` as strings in :data:`OFFLINE_COLUMNS` order.

        Raises:
            IndexError: no call ``i``.
        """
        at = self._times[i]
        number, name, location = self._callers[self._caller[i]]
        city, state, zip_code, *_ = _LOCATIONS[location]
        campaign, tracking, forward, _ = _CAMPAIGNS[self._campaign[i]]
        status = self._status[i]
        call_id = str(CALL_ID_BASE + i)
        when = self._midnight + timedelta(seconds=at)
        recording = ""
        if status != 1:
            token = hashlib.blake2b(call_id.encode(), key=self._token, digest_size=6).hexdigest()
            recording = f"{RECORDINGS}{when:%Y/%m/%d}/{call_id}-{token}.mp3"
        return (
            call_id, when.strftime("%Y-%m-%d %H:%M:%S"), CHANNEL, campaign, tracking, forward,
            number, name, city, state, zip_code, str(self._duration[i]), STATUSES[status],
            recording,
        )  # fmt: skip

    def geo_values(self, j: int) -> tuple[str, ...]:
        """Geographical Data row ``j`` as strings in :data:`GEO_COLUMNS` order.

        Raises:
            IndexError: no row ``j``.
        """
        return self._geo[j]

    def offline_portal_calls(self, start: datetime, end: datetime) -> list[dict[str, str]]:
        """The Offline Portal Calls rows of ``[start, end]`` (inclusive), in call_date order."""
        return [dict(zip(OFFLINE_COLUMNS, self.call_values(i), strict=True)) for i in
                self.call_range(start, end)]  # fmt: skip

    def geo_data(self, start: datetime, end: datetime) -> list[dict[str, str]]:
        """The Geographical Data rows of the days from ``start`` to ``end`` (both included), in
        (date, state, city, zip) order."""
        return [dict(zip(GEO_COLUMNS, self.geo_values(j), strict=True)) for j in
                self.geo_range(start, end)]  # fmt: skip

    def rows(self, method: str, indices: Sequence[int]) -> list[tuple[str, ...]]:
        """The rows of ``method`` at ``indices``, as value tuples."""
        values = self.geo_values if method == GEO_METHOD else self.call_values
        return [values(i) for i in indices]


__all__ = [
    "CALL_ID_BASE",
    "CHANNEL",
    "DECIMAL_COLUMNS",
    "GEO_COLUMNS",
    "GEO_METHOD",
    "INTEGER_COLUMNS",
    "OFFLINE_COLUMNS",
    "OFFLINE_METHODS",
    "RECORDINGS",
    "STATUSES",
    "Simulation",
]
