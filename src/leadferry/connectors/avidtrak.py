"""AvidTrak call tracking: one PHP endpoint, the method chosen by a parameter, JSON or XML.

The endpoint, parameters and envelope codes are confirmed; the method names and row fields are
reconstructed and live in :data:`API` and the report declarations (see docs/connectors.md).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import httpx2
import pyarrow as pa
from lxml import etree

from leadferry.clock import utc_now
from leadferry.connectors.base import (
    DATE_LABELS,
    Connector,
    CredentialField,
    Page,
    Report,
    Table,
    TableBatch,
)
from leadferry.connectors.columns import TIMESTAMP, BatchBuilder, ColumnTypes
from leadferry.dates import DateWindow
from leadferry.errors import ConfigError, FatalAPIError, RetryableAPIError

API = {
    # confirmed (specs/vendor-apis.md section 3; dates, page and perpage from the older SOAP API)
    "endpoint": "/webservice/api.php",
    "pin": "pincode",
    "method": "method",
    "format": "format",
    "start": "startdate",
    "end": "enddate",
    "page": "page",
    "per_page": "perpage",
    "date_format": "%Y-%m-%d %H:%M:%S",
    # reconstructed: the method names (the row fields are in REPORTS)
    "methods": {"geographical_data": "geo_data", "offline_portal_calls": "offline_portal_calls"},
}
MAX_PER_PAGE = 1000
_SAFE_XML = etree.XMLParser(resolve_entities=False, no_network=True)
SUCCESS_CODES = {1, 200}
NO_DATA_CODE = 0
AUTH_CODES = {3, 4, 401}
CODE_MEANINGS = {6: "Invalid Response Format", 404: "Invalid Request Method"}

REPORTS: tuple[Report, ...] = (
    Report(
        "geographical_data",
        "Geographical Data",
        tables=(
            Table(
                "geographical_data",
                {
                    "date": pa.date32(),
                    "state": pa.string(),
                    "city": pa.string(),
                    "zip": pa.string(),
                    "area_code": pa.string(),
                    "country": pa.string(),
                    "calls": pa.int64(),
                    "unique_calls": pa.int64(),
                    "answered_calls": pa.int64(),
                    "missed_calls": pa.int64(),
                    "total_duration": pa.int64(),
                    "avg_duration": pa.float64(),
                },
                primary_key=("date", "state", "city", "zip"),
            ),
        ),
        description="Calls per day and place: state, city, zip, area code.",
        day_column="date",
    ),
    Report(
        "offline_portal_calls",
        "Offline Portal Calls",
        tables=(
            Table(
                "offline_portal_calls",
                {
                    "call_id": pa.int64(),
                    "call_date": TIMESTAMP,
                    "channel": pa.string(),
                    "campaign": pa.string(),
                    "tracking_number": pa.string(),
                    "forward_number": pa.string(),
                    "caller_number": pa.string(),
                    "caller_name": pa.string(),
                    "caller_city": pa.string(),
                    "caller_state": pa.string(),
                    "caller_zip": pa.string(),
                    "duration": pa.int64(),
                    "call_status": pa.string(),
                    "recording_url": pa.string(),
                },
                primary_key=("call_id",),
            ),
        ),
        description="Calls to offline (non-web) tracking numbers, one row per call.",
        day_column="call_date",
    ),
)


class AvidTrakConnector(Connector):
    """AvidTrak's web service: pages of up to 1,000 rows until a short one."""

    name: ClassVar[str] = "avidtrak"
    label: ClassVar[str] = "AvidTrak"
    secret_name: ClassVar[str] = "the pin code"
    date_labels: ClassVar[Mapping[str, str]] = DATE_LABELS | {
        "days_back": "Date Offset",
        "start_date_type": "Date From",
        "end_date_type": "Date To",
        "from_date": "Select Specific Date From",
        "to_date": "Select Specific Date To",
        "from_days_back": "Date From Offset",
        "to_days_back": "Date To Offset",
    }
    fields: ClassVar[tuple[CredentialField, ...]] = (
        CredentialField(
            "pin_code", "Pin Code", secret=True, help="Generated in the AvidTrak web app."
        ),
        CredentialField(
            "base_url",
            "Base URL",
            help="Your AvidTrak address, or your reseller's (e.g. https://calls.example.com).",
        ),
        CredentialField(
            "timezone",
            "Time zone",
            required=False,
            default="UTC",
            advanced=True,
            help="The account's clock: AvidTrak dates are local times in this zone.",
        ),
        CredentialField(
            "format",
            "Response format",
            required=False,
            default="json",
            advanced=True,
            help="json (default) or xml.",
        ),
    )
    reports: ClassVar[tuple[Report, ...]] = REPORTS
    page_size: ClassVar[int] = MAX_PER_PAGE

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.types = ColumnTypes()

    @property
    def _format(self) -> str:
        value = self.setting("format").lower()
        if value not in ("json", "xml"):
            raise ConfigError(f"account {self.credentials.account}: format must be json or xml")
        return value

    def _request(self, method: str, extra: Mapping[str, str | int]) -> httpx2.Request:
        url = self.setting("base_url").rstrip("/") + API["endpoint"]
        query = {API["pin"]: self.setting("pin_code"), API["method"]: method,
                 API["format"]: self._format, **extra}  # fmt: skip
        return self.client.build_request("GET", url, params=query)

    def page_request(
        self, report: Report, params: Mapping[str, Any], window: DateWindow | None, page: int
    ) -> httpx2.Request:
        extra: dict[str, str | int] = {API["page"]: page + 1, API["per_page"]: self.page_size}
        if window is not None:
            zone = ZoneInfo(self.timezone)
            last_second = window.end - dt.timedelta(seconds=1)
            extra[API["start"]] = window.start.astimezone(zone).strftime(API["date_format"])
            extra[API["end"]] = last_second.astimezone(zone).strftime(API["date_format"])
        return self._request(API["methods"][report.slug], extra)

    def read_page(
        self, report: Report, response: httpx2.Response, window: DateWindow | None
    ) -> Page:
        rows = self._rows(response, f"report {report.slug}")
        table = report.main_table
        builder = BatchBuilder(table, self.types, self.timezone)
        for row in rows:
            builder.add(row)
        batches = [TableBatch(table.name, builder.build())] if builder.rows else []
        return Page(batches, builder.rows)

    def _rows(self, response: httpx2.Response, what: str) -> list[dict[str, Any]]:
        """The rows of an answer; what its code means otherwise, raised (never retried: an
        envelope that says what is wrong is the vendor's last word)."""
        code, status, rows = self._envelope(response)
        if code in AUTH_CODES:
            raise self.auth_error()
        if code == NO_DATA_CODE:
            return []
        if code not in SUCCESS_CODES:
            meaning = CODE_MEANINGS.get(code, status or "unknown error")
            raise FatalAPIError(f"{self.label}: code {code} ({meaning}) for {what}")
        return rows

    def _envelope(self, response: httpx2.Response) -> tuple[int, str, list[dict[str, Any]]]:
        body = response.read()
        try:
            if self._format == "json":
                return _json_envelope(body)
            return _xml_envelope(body)
        except (ValueError, etree.XMLSyntaxError):
            # The vendor's own XML error example is not well-formed (<data><data/></response>):
            # a code that says something other than success is read from the text as it is.
            code, status = _loose_code(body)
            if code is None or code in SUCCESS_CODES:
                raise RetryableAPIError(
                    f"{self.label}: the answer was cut short or is not {self._format.upper()}"
                ) from None
            return code, status, []

    def check_connection(self) -> None:
        today = utc_now().astimezone(ZoneInfo(self.timezone)).strftime("%Y-%m-%d")
        request = self._request(
            API["methods"]["offline_portal_calls"],
            {API["start"]: f"{today} 00:00:00", API["end"]: f"{today} 00:00:00",
             API["per_page"]: 1},
        )  # fmt: skip
        self.call(lambda: request, lambda response: self._rows(response, "the connection test"))


def _json_envelope(body: bytes) -> tuple[int, str, list[dict[str, Any]]]:
    answer = json.loads(body)
    if not isinstance(answer, dict) or "code" not in answer:
        raise ValueError("no envelope")
    data = answer.get("data") or []
    if not isinstance(data, list):
        raise ValueError("data is not a list")
    rows = [{key: _text(value) for key, value in row.items()} for row in data]
    return int(answer["code"]), str(answer.get("status") or ""), rows


def _xml_envelope(body: bytes) -> tuple[int, str, list[dict[str, Any]]]:
    root = etree.fromstring(body, _SAFE_XML)
    code = root.findtext("code")
    if root.tag != "response" or code is None:
        raise ValueError("no envelope")
    # An empty element is an empty value, as the same row says "" in JSON.
    rows = [{child.tag: child.text or "" for child in row} for row in root.iterfind("data/row")]
    return int(code), root.findtext("status") or "", rows


_LOOSE_CODE = re.compile(rb'<code>\s*(\d+)\s*</code>|"code"\s*:\s*"?(\d+)')
_LOOSE_STATUS = re.compile(rb'<status>([^<]*)</status>|"status"\s*:\s*"([^"]*)"')


def _loose_code(body: bytes) -> tuple[int | None, str]:
    """The code and status of an envelope that does not parse, found in its text."""
    code, status = _LOOSE_CODE.search(body), _LOOSE_STATUS.search(body)
    number = next((int(g) for g in code.groups() if g is not None), None) if code else None
    text = next((g for g in status.groups() if g is not None), b"") if status else b""
    return number, text.decode("utf-8", "replace").strip()


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
