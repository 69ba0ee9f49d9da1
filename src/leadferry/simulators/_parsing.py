"""Reading what simulators are given: a request's values, and a time zone option."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Request
from pydantic import AfterValidator


async def request_values(request: Request, *, fold_names: bool = False) -> dict[str, str]:
    """The query string's values, then a POST's form fields (the later of a name wins, like
    PHP's ``$_REQUEST`` and ASP.NET's binding), stripped, empty ones left out; ``fold_names``
    lower-cases the names (a vendor that reads them case-insensitively)."""
    pairs = list(request.query_params.multi_items())
    if request.method == "POST":
        async with request.form() as form:
            pairs += [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    return {(k.lower() if fold_names else k): v.strip() for k, v in pairs if v.strip()}


def _known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone: {value}") from exc
    return value


ZoneName = Annotated[str, AfterValidator(_known_zone)]
"""An IANA time zone name (a ``Settings`` field refuses another)."""
