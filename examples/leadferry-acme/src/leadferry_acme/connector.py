"""The Acme CRM connector: one report, Contacts, from a JSON API with a bearer token.

The API (what :mod:`leadferry_acme.simulator` serves):

- ``GET {base_url}/v1/me`` answers 200 when the token is accepted, 401 otherwise;
- ``GET {base_url}/v1/contacts?since=&until=&page=&per_page=`` answers
  ``{"total": N, "contacts": [{"id", "created_at", "name", "email", "stage"}, ...]}``: the
  contacts created in ``[since, until)`` (ISO 8601 instants), page by page from 1.

Every request carries ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx2
import pyarrow as pa

from leadferry.connectors.base import (
    DATE_LABELS,
    Connector,
    CredentialField,
    Page,
    Report,
    Table,
    TableBatch,
)
from leadferry.connectors.columns import TIMESTAMP
from leadferry.dates import DateWindow
from leadferry.errors import FatalAPIError

CONTACTS = Table(
    "contacts",
    {
        "id": pa.int64(),
        "created_at": TIMESTAMP,
        "name": pa.string(),
        "email": pa.string(),
        "stage": pa.string(),
    },
    primary_key=("id",),
)
SCHEMA = pa.schema(CONTACTS.columns)


class AcmeConnector(Connector):
    """Acme CRM's API: pages of up to 500 contacts, the first page telling the total."""

    name: ClassVar[str] = "acme"
    label: ClassVar[str] = "Acme CRM"
    secret_name: ClassVar[str] = "the API token"
    # Acme's own pages say "Days Ago" where ClickPoint's say "Days Back".
    date_labels: ClassVar[Mapping[str, str]] = DATE_LABELS | {"days_back": "Days Ago"}
    fields: ClassVar[tuple[CredentialField, ...]] = (
        CredentialField("api_token", "API Token", secret=True, help="Settings > API in Acme CRM."),
        CredentialField(
            "base_url",
            "Base URL",
            default="https://api.acme-crm.example",
            help="Acme CRM's API address.",
        ),
        CredentialField(
            "timezone",
            "Time zone",
            required=False,
            default="UTC",
            advanced=True,
            help="The zone whose days the date selection counts.",
        ),
    )
    reports: ClassVar[tuple[Report, ...]] = (
        Report(
            "contacts",
            "Contacts",
            tables=(CONTACTS,),
            description="Contacts created in the window, one row per contact.",
            day_column="created_at",
        ),
    )
    page_size: ClassVar[int] = 500

    def _url(self, path: str) -> str:
        return self.setting("base_url").rstrip("/") + path

    def prepare(self, request: httpx2.Request) -> httpx2.Request:
        request.headers["Authorization"] = f"Bearer {self.credentials.values['api_token']}"
        return request

    def check_connection(self) -> None:
        self.call(lambda: self.client.build_request("GET", self._url("/v1/me")), lambda _: None)

    def page_request(
        self, report: Report, params: Mapping[str, Any], window: DateWindow | None, page: int
    ) -> httpx2.Request:
        query: dict[str, Any] = {"page": page + 1, "per_page": self.page_size}
        if window is not None:
            query |= {"since": window.start.isoformat(), "until": window.end.isoformat()}
        return self.client.build_request("GET", self._url("/v1/contacts"), params=query)

    def read_page(
        self, report: Report, response: httpx2.Response, window: DateWindow | None
    ) -> Page:
        response.read()
        try:
            body = response.json()
            total = int(body["total"])
            rows = [
                contact | {"created_at": dt.datetime.fromisoformat(contact["created_at"])}
                for contact in body["contacts"]
            ]
            batch = pa.RecordBatch.from_pylist(rows, schema=SCHEMA)
        except (ValueError, KeyError, TypeError, pa.ArrowInvalid) as exc:
            raise FatalAPIError(f"{self.label}: unreadable answer ({type(exc).__name__})") from None
        return Page([TableBatch(CONTACTS.name, batch)] if rows else [], len(rows), total)
