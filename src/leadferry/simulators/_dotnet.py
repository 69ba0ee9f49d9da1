"""What the simulated .NET services read leniently: US dates and relaxed JSON.

LeadExec and SalesExec run on .NET, whose ``DateTime.Parse`` (en-US culture) takes spellings a
strict ISO reader refuses, and whose JSON readers take unquoted names. The simulators read them too,
so that a client is not praised for what a real service would take anyway.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

_CLOCK = r"(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?\s*([AaPp][Mm])?)?"
_MONTH_FIRST = re.compile(r"(\d{1,2})[/-](\d{1,2})[/-](\d{4}|\d{2})" + _CLOCK)
_YEAR_FIRST = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})" + _CLOCK)
TWO_DIGIT_YEAR_MAX = 2049
"""A two-digit year is read in the century ending here, as .NET's Gregorian calendar does."""


def parse_us_date(text: str) -> datetime | None:
    """A naive datetime from ``1/5/2014``, ``11/20/26``, ``11-20-2026 13:05:00``,
    ``1/5/2014 10:50:54 AM`` or ``2014/01/05``; None for any other spelling (ISO included).

    Raises:
        ValueError: the spelling fits but names no real date or time.
    """
    text = text.strip()
    if m := _MONTH_FIRST.fullmatch(text):
        month, day, year, *clock = m.groups()
    elif m := _YEAR_FIRST.fullmatch(text):
        year, month, day, *clock = m.groups()
    else:
        return None
    hour, minute, second, fraction, half = clock
    h = int(hour or 0)
    if half:
        if not 1 <= h <= 12:
            raise ValueError(f"hour {h} with {half}")
        h = h % 12 + (12 if half.upper() == "PM" else 0)
    full_year = int(year)
    if len(year) == 2:
        full_year += TWO_DIGIT_YEAR_MAX // 100 * 100
        if full_year > TWO_DIGIT_YEAR_MAX:
            full_year -= 100
    micro = int((fraction or "0").ljust(6, "0")[:6])
    parts = (full_year, int(month), int(day), h, int(minute or 0), int(second or 0), micro)
    return datetime(*parts)  # noqa: DTZ001 - the vendors' dates are naive wall-clock times


_JSON_TOKEN = re.compile(
    r"""(?P<double>"(?:[^"\\]|\\.)*")|(?P<single>'(?:[^'\\]|\\.)*')|(?<![\w.$])(?P<bare>[A-Za-z_$][\w$]*)"""
)


def loads_relaxed(text: str) -> Any:
    """JSON, also with unquoted or single-quoted names and strings, as in LeadExec's own example
    ``{ "LoanAmount" : { $gte : 150000, $lte : 200000 } }``.

    Raises:
        ValueError: not JSON even so.
    """
    try:
        return json.loads(text)
    except ValueError:
        pass

    def quoted(m: re.Match[str]) -> str:
        if m["double"]:
            return m["double"]
        if m["single"]:
            return json.dumps(m["single"][1:-1].replace("\\'", "'"))
        word = m["bare"]
        return word if word in ("true", "false", "null") else json.dumps(word)

    return json.loads(_JSON_TOKEN.sub(quoted, text))
