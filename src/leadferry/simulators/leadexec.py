"""Simulator of ClickPoint LeadExec's Data Interface, the API of the LeadExec connector.

An independent implementation of shared/specs/vendor-apis.md, section 1: it shares nothing with the
connector, so a misreading on either side shows up as a failing test. ``leadferry simulate
leadexec`` serves :func:`create_app`.

Requests: ``GET /`` with query parameters, or ``POST /`` with the same names as an urlencoded or
multipart form (form fields win over the query string). Names are case-insensitive: ``key``,
``lid``, ``startdate``, ``enddate``, ``skip``, ``take``, ``query``, ``fields``, ``sortfields``,
``sortorder``. Empty values count as missing.

- ``key`` must be one of ``Settings.api_key``, else 401 ``<Error>Invalid API Key</Error>``.
- ``lid`` is required (else 400 naming it); a lid the account lacks answers 200, ``querytotal="0"``.
- ``startdate``/``enddate`` are naive wall-clock times in ``Settings.timezone``, read loosely
  (``1/1/2010``, ``01/05/2014``, ``11-20-2026 13:05:00``, ``1/5/2014 10:50:54 AM``, the .NET
  spellings ``2014/01/05`` and ``11/20/26``, ISO 8601). They filter ``DateAdded``, start inclusive,
  end exclusive; a missing one leaves that side open.
- ``skip`` (default 0) and ``take`` (default and cap 1000; 0 sends no leads but still counts them).
- ``sortfields``: pipe-separated, default ``DateAdded``; ``sortorder``: ``ASC`` (default), ``DESC``.
  DateAdded and UID sort for free; other fields scan the window once (cached), missing values first.
- ``fields``: a pipe-separated projection matched case-insensitively. ``UID`` is always kept,
  ``Sends`` keeps the deliveries, unknown names are ignored.
- ``query``: a Mongo-like JSON object, read leniently like the vendor's own example
  ``{ "LoanAmount" : { $gte : 150000, $lte : 200000 } }`` (names may go unquoted). Supported:
  ``{"F": v}`` (equality; ``null`` matches a missing field),
  ``{"F": {"$eq"|"$ne"|"$gt"|"$gte"|"$lt"|"$lte": v}}``, ``{"F": {"$in"|"$nin": [...]}}``,
  ``{"F": {"$exists": bool}}``; several operators or fields must all hold; ``{"$and": [...]}`` and
  ``{"$or": [...]}``. Operands are converted to the field's type (dates are read like
  ``startdate``); ``$ne`` and ``$nin`` match a missing field, as in MongoDB; ``Sends`` cannot be
  queried. A query scans the window once (cached).
- Bad dates, numbers, sort order, sort field, or query: 400.

Answers: XML ``<Leads querytotal takecount sentcount><Lead>...</Lead></Leads>`` (UTF-8, no XML
declaration), or with ``Accept: application/json`` ``{"QueryTotal", "TakeCount", "SentCount",
"Leads"}`` where ``UID`` is a string, dates are ISO and ``Sends`` is always an array. A lead holds
UID, LeadSource, DateAdded, FileUID, Campaign, IsValid, MaxSell, Price, LastUpdated, then its lead
type's fields (each absent on some leads but a few), then ``<Sends>`` (left out in XML when the lead
was never sold). Errors are ``<Error>message</Error>``, or ``{"Error": message}`` in JSON.

Variants (``Settings.variant``, repeatable): each plays a reconstructed behaviour in another
plausible form, see :data:`VARIANTS`: a wrong key as HTTP 200 with ``<Error>``, dates required,
XML without ``LastUpdated``, query dates compared as text.

Faults, drawn from one ``random.Random(seed)`` per app: ``latency_ms`` delays every answer;
``rate_limit`` (requests per second, a token bucket holding one second's worth) answers 429 with
``Retry-After`` in whole seconds; ``fail_rate`` answers 500 or 503; ``truncate_rate`` ends a 200
body half way (the HTTP response ends cleanly, so the client gets a document that does not parse).
``GET /__health`` answers ``ok`` and is never faulted.

How leads map to lead types and dates: see :class:`Simulation`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from array import array
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from http import HTTPStatus
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from leadferry.simulators import SimulatedAccount
from leadferry.simulators._dotnet import loads_relaxed, parse_us_date
from leadferry.simulators._leadexec_data import (
    DEFAULT_LID,
    MISSING,
    SYSTEM_FIELDS,
    UID_BASE,
    Simulation,
    format_iso,
    format_us,
)
from leadferry.simulators._parsing import ZoneName, request_values
from leadferry.simulators.faults import FailRate, Faults, LatencyMs, RateLimit, Seed, simulator_app

logger = logging.getLogger(__name__)

MAX_TAKE = 1000
CHUNK_LEADS = 100
XML_TYPE = "application/xml; charset=utf-8"
JSON_TYPE = "application/json; charset=utf-8"


class Variant(StrEnum):
    """Another plausible form of a reconstructed behaviour, played on request (``--variant``)."""

    BAD_KEY_200 = "bad-key-200"
    DATES_REQUIRED = "dates-required"
    XML_WITHOUT_LAST_UPDATED = "xml-without-lastupdated"
    QUERY_DATES_AS_TEXT = "query-dates-as-text"


VARIANTS = {
    Variant.BAD_KEY_200: "a wrong key answers HTTP 200 with <Error>Invalid API Key</Error>, "
    "not 401",
    Variant.DATES_REQUIRED: "startdate and enddate are required (400 naming the missing one)",
    Variant.XML_WITHOUT_LAST_UPDATED: "XML leads carry no LastUpdated (queries still know it)",
    Variant.QUERY_DATES_AS_TEXT: "query compares a DateTime field's XML text "
    "(1/5/2014 10:50:54 AM) with the operand as text, not as dates",
}


class Settings(BaseModel):
    """Options of the LeadExec simulator (each becomes a ``leadferry simulate leadexec`` flag)."""

    seed: Seed = 1
    leads: int = Field(
        default=10_000, ge=0, description="Leads in the account, over all lead types."
    )
    days: int = Field(
        default=30, ge=1, description="Leads are spread evenly over the last DAYS days."
    )
    api_key: list[str] = Field(
        default_factory=lambda: ["demo-key"], description="An accepted API key (repeatable)."
    )
    lid: list[int] = Field(
        default_factory=list,
        description=f"A lead type of the account (repeatable; none means lid {DEFAULT_LID}).",
    )
    latency_ms: LatencyMs = 0
    rate_limit: RateLimit = 0
    fail_rate: FailRate = 0
    truncate_rate: float = Field(
        default=0, ge=0, le=1, description="Probability that a lead list is cut off half way."
    )
    timezone: ZoneName = Field(
        default="America/Los_Angeles", description="Time zone of DateAdded and the date parameters."
    )
    variant: list[Variant] = Field(
        default_factory=list,
        description="Play a reconstructed behaviour another plausible way (repeatable): "
        + "; ".join(f"{name}: {meaning}" for name, meaning in VARIANTS.items()),
    )


# ---------------------------------------------------------------------------------------------
# Dates

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T].*)?")


def parse_date(text: str, tz: ZoneInfo) -> datetime:
    """Read a date the loose way LeadExec does, as a naive wall-clock time in ``tz``.

    Accepts ``1/1/2010``, ``01/05/2014``, ``11-20-2026 13:05:00``, ``1/5/2014 10:50:54 AM``, the
    other spellings .NET reads (``2014/01/05``, ``11/20/26``) and ISO 8601 (``2026-11-20``,
    ``2026-11-20T13:05:00``; one with an offset is converted to ``tz``).

    Raises:
        ValueError: the text is none of those, or not a real date.
    """
    text = text.strip()
    if (us := parse_us_date(text)) is not None:
        return us
    if not _ISO_DATE.fullmatch(text):
        raise ValueError(f"not a date: {text!r}")
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is None else value.astimezone(tz).replace(tzinfo=None)


# ---------------------------------------------------------------------------------------------
# Query and sort

_Test = Callable[[int, bytes], bool]


class QueryError(ValueError):
    """A ``query`` or ``sortfields`` value the simulator cannot use (answered with 400)."""


def _coerce(value: Any, dtype: str, tz: ZoneInfo) -> Any:
    """A query operand in the field's type, so that 150000 and "150000" compare alike
    (``Text``: a DateTime field compared as text, see :attr:`Variant.QUERY_DATES_AS_TEXT`)."""
    if value is None:
        return MISSING
    if dtype == "Text":
        return str(value)
    try:
        if dtype in ("Int32", "Int64"):
            return value if isinstance(value, float) else int(value)
        if dtype in ("Double", "Float"):
            return float(value)
        if dtype == "Decimal":
            return Decimal(str(value))
        if dtype == "Boolean":
            return value if isinstance(value, bool) else str(value).lower() == "true"
        if dtype == "DateTime":
            return parse_date(str(value), tz)
    except (ValueError, ArithmeticError) as exc:
        raise QueryError(f"cannot compare {dtype} with {value!r}") from exc
    return str(value)


def _operator(op: str, operand: Any, dtype: str, tz: ZoneInfo, get: Callable[..., Any]) -> _Test:
    if op == "$exists":
        want = bool(operand)
        return lambda i, d: (get(i, d) is not MISSING) is want
    if op in ("$in", "$nin"):
        if not isinstance(operand, list):
            raise QueryError(f"{op} takes a list")
        options = {_coerce(v, dtype, tz) for v in operand}
        inside = op == "$in"
        return lambda i, d: (get(i, d) in options) is inside
    if op not in ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte"):
        raise QueryError(f"Unsupported operator: {op}")
    if isinstance(operand, dict | list):
        raise QueryError(f"{op} takes one value")
    want = _coerce(operand, dtype, tz)
    if op in ("$eq", "$ne"):
        equal = op == "$eq"
        return lambda i, d: (get(i, d) == want) is equal
    compare: Callable[[Any], bool] = {
        "$gt": lambda v: v > want,
        "$gte": lambda v: v >= want,
        "$lt": lambda v: v < want,
        "$lte": lambda v: v <= want,
    }[op]

    def ordered(i: int, d: bytes) -> bool:
        value = get(i, d)
        return value is not MISSING and want is not MISSING and compare(value)

    return ordered


def _compile(query: Any, sim: Simulation, lid: int) -> _Test:
    """The query as a predicate over ``(i, digest)``; see the module docstring for the grammar."""
    if not isinstance(query, dict):
        raise QueryError("query must be a JSON object")
    tests: list[_Test] = []
    types = dict(sim.fields(lid))
    for key, condition in query.items():
        if key in ("$and", "$or"):
            if not isinstance(condition, list) or not condition:
                raise QueryError(f"{key} takes a list of objects")
            parts = [_compile(c, sim, lid) for c in condition]
            combine = all if key == "$and" else any
            tests.append(lambda i, d, p=parts, f=combine: f(t(i, d) for t in p))  # type: ignore[misc]
            continue
        if key.startswith("$"):
            raise QueryError(f"Unsupported operator: {key}")
        name = sim.resolve_field(lid, key) or key
        get = sim.accessor(lid, name)
        dtype = types.get(name, "String")
        if dtype == "DateTime" and Variant.QUERY_DATES_AS_TEXT in sim.settings.variant:
            get, dtype = _as_text(get), "Text"
        is_ops = (
            isinstance(condition, dict) and condition and all(k.startswith("$") for k in condition)
        )
        for op, operand in condition.items() if is_ops else [("$eq", condition)]:
            tests.append(_operator(op, operand, dtype, sim.tz, get))
    return lambda i, d: all(t(i, d) for t in tests)


def _as_text(get: Callable[[int, bytes], Any]) -> Callable[[int, bytes], Any]:
    """A DateTime accessor giving the value's XML text instead."""

    def text(i: int, d: bytes) -> Any:
        value = get(i, d)
        return value if value is MISSING else format_us(value)

    return text


def _missing_first(value: Any) -> tuple[int, Any]:
    return (0, 0) if value is MISSING else (1, value)


def _scan(
    sim: Simulation,
    lid: int,
    lo: int,
    hi: int,
    query: str | None,
    names: tuple[str, ...],
    desc: bool,
) -> Sequence[int]:
    """Indices of ``range(lo, hi)`` that match ``query``, sorted by ``names`` (O(window))."""
    matches = _compile(json.loads(query), sim, lid) if query else None
    getters = [sim.accessor(lid, name) for name in names]
    keyed: list[tuple[Any, ...]] = []
    chosen = array("q")
    for i in range(lo, hi):
        d = sim.digest(lid, i)
        if matches is not None and not matches(i, d):
            continue
        if getters:
            keyed.append((*(_missing_first(get(i, d)) for get in getters), i))
        else:
            chosen.append(i)
    if getters:
        keyed.sort(reverse=desc)
        return array("q", (row[-1] for row in keyed))
    if desc:
        chosen.reverse()
    return chosen


class _Selector:
    """Which leads a request selects, in answer order; scans are cached for the following pages."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self._scan = lru_cache(maxsize=16)(self._scan_uncached)

    def _scan_uncached(self, *args: Any) -> Sequence[int]:
        return _scan(self.sim, *args)

    def select(
        self,
        lid: int,
        start: datetime | None,
        end: datetime | None,
        query: str | None,
        sort_fields: Sequence[str],
        desc: bool,
    ) -> Sequence[int]:
        """Raises QueryError for bad query JSON, an unknown operator or an unknown sort field."""
        if lid not in self.sim.lids:
            return range(0)
        window = self.sim.index_range(lid, start, end)
        names = []
        for raw in sort_fields:
            name = self.sim.resolve_field(lid, raw)
            if name is None or name == "Sends":
                raise QueryError(f"Unknown sort field: {raw}")
            names.append(name)
        if names in ([], ["DateAdded"], ["UID"], ["DateAdded", "UID"]):
            names = []  # the natural order of the indices
        canonical = None
        if query:
            try:
                parsed = loads_relaxed(query)
            except ValueError as exc:
                raise QueryError(f"query is not valid JSON: {exc}") from exc
            _compile(parsed, self.sim, lid)  # reject a bad query before the cache sees it
            canonical = json.dumps(parsed, sort_keys=True)
        if canonical is None and not names:
            return window[::-1] if desc else window
        return self._scan(lid, window.start, window.stop, canonical, tuple(names), desc)


# ---------------------------------------------------------------------------------------------
# HTTP


class _Reject(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _error(
    status: int, message: str, as_json: bool, headers: dict[str, str] | None = None
) -> Response:
    if as_json:
        return Response(json.dumps({"Error": message}), status, headers, media_type=JSON_TYPE)
    return Response(f"<Error>{escape(message)}</Error>", status, headers, media_type=XML_TYPE)


def _number(params: dict[str, str], name: str, default: int) -> int:
    if name not in params:
        return default
    if not params[name].isdigit():
        raise _Reject(400, f"Invalid {name}: {params[name]}")
    return int(params[name])


def _date(params: dict[str, str], name: str, tz: ZoneInfo) -> datetime | None:
    if name not in params:
        return None
    try:
        return parse_date(params[name], tz)
    except ValueError:
        raise _Reject(400, f"Invalid {name}: {params[name]}") from None


def _answer(
    sim: Simulation, selector: _Selector, params: dict[str, str], as_json: bool
) -> tuple[list[str], Iterator[str], int]:
    """Validate a request; return (header and footer, lead chunks, number of chunks)."""
    if "lid" not in params:
        raise _Reject(400, "Missing required parameter: lid")
    if not params["lid"].lstrip("-").isdigit():
        raise _Reject(400, f"Invalid lid: {params['lid']}")
    lid = int(params["lid"])
    if Variant.DATES_REQUIRED in sim.settings.variant:
        for name in ("startdate", "enddate"):
            if name not in params:
                raise _Reject(400, f"Missing required parameter: {name}")
    start, end = _date(params, "startdate", sim.tz), _date(params, "enddate", sim.tz)
    skip = _number(params, "skip", 0)
    take = min(_number(params, "take", MAX_TAKE), MAX_TAKE)
    order = params.get("sortorder", "ASC").upper()
    if order not in ("ASC", "DESC"):
        raise _Reject(400, f"Invalid sortorder: {params['sortorder']}")
    sort_fields = [f.strip() for f in params.get("sortfields", "").split("|") if f.strip()]
    try:
        selected = selector.select(
            lid, start, end, params.get("query"), sort_fields, order == "DESC"
        )
    except QueryError as exc:
        raise _Reject(400, str(exc)) from None
    page = selected[skip : skip + take]
    total, sent = len(selected), len(page)
    fields = None
    if "fields" in params and lid in sim.lids:
        fields = sim.resolve_fields(lid, params["fields"].split("|"))
    if not as_json and Variant.XML_WITHOUT_LAST_UPDATED in sim.settings.variant and sent:
        every = fields or frozenset(name for name, _ in sim.fields(lid))
        fields = every - {"LastUpdated"}
    fmt = "json" if as_json else "xml"
    chunks = sim.render(lid, page, fmt, fields, CHUNK_LEADS) if sent else iter(())
    if as_json:
        frame = [f'{{"QueryTotal":{total},"TakeCount":{take},"SentCount":{sent},"Leads":[', "]}"]
    else:
        frame = [f'<Leads querytotal="{total}" takecount="{take}" sentcount="{sent}">', "</Leads>"]
    logger.debug("lid %s: leads %d to %d of %d", lid, skip, skip + sent, total)
    return frame, chunks, -(-sent // CHUNK_LEADS)


async def _stream(
    frame: list[str], chunks: Iterator[str], count: int, cut: bool
) -> AsyncIterator[str]:
    """Yield the document; when ``cut``, stop half way through its middle piece."""
    stop = (count + 2) // 2 if cut else -1
    for position, piece in enumerate(_pieces(frame, chunks)):
        if position == stop:
            yield piece[: max(1, len(piece) // 2)]
            return
        yield piece
        await asyncio.sleep(0)  # rendering is CPU-bound: let other requests in between chunks


def _pieces(frame: list[str], chunks: Iterator[str]) -> Iterator[str]:
    yield frame[0]
    yield from chunks
    yield frame[1]


def create_app(settings: Settings, now: datetime | None = None) -> FastAPI:
    """Build the simulator app; ``app.state.simulation`` is its :class:`Simulation`.

    Args:
        settings: the simulated account and its faults.
        now: an aware datetime pinning the simulated clock (leads end there); None reads the clock.

    Raises:
        ValueError: ``now`` is naive.
    """
    sim = Simulation(settings, now)
    selector = _Selector(sim)
    faults = Faults(settings, settings.seed, settings.rate_limit)
    keys = frozenset(settings.api_key)
    bad_key_status = 200 if Variant.BAD_KEY_200 in settings.variant else 401
    app = simulator_app("LeadExec (simulated)")
    app.state.simulation = sim

    @app.api_route("/", methods=["GET", "POST"])
    async def data(request: Request) -> Response:
        as_json = "json" in request.headers.get("accept", "").lower()
        fault = await faults.meet(
            lambda status, headers: _error(status, HTTPStatus(status).phrase, as_json, headers)
        )
        if fault is not None:
            return fault
        try:
            params = await request_values(request, fold_names=True)
            if params.get("key") not in keys:
                raise _Reject(bad_key_status, "Invalid API Key")
            frame, chunks, count = _answer(sim, selector, params, as_json)
        except _Reject as exc:
            return _error(exc.status, exc.message, as_json)
        cut = faults.happens(settings.truncate_rate)
        media_type = JSON_TYPE if as_json else XML_TYPE
        return StreamingResponse(_stream(frame, chunks, count, cut), media_type=media_type)

    return app


def account(settings: Settings, url: str) -> SimulatedAccount:
    """The account that reads this simulator at *url* with its first API key; leads of its
    first lead type."""
    return SimulatedAccount(
        {"base_url": f"{url}/", "api_key": settings.api_key[0], "timezone": settings.timezone},
        {"leads": {"lid": (settings.lid or [DEFAULT_LID])[0]}},
    )


__all__ = [
    "MISSING",
    "SYSTEM_FIELDS",
    "UID_BASE",
    "VARIANTS",
    "QueryError",
    "Settings",
    "Simulation",
    "Variant",
    "account",
    "create_app",
    "format_iso",
    "format_us",
    "parse_date",
]
