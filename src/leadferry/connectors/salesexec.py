"""ClickPoint SalesExec: six reports over a token-authenticated REST API (JSON).

Almost nothing of this API is public (see docs/connectors.md): every path and field name below is
reconstructed, and all of them are in :data:`API` and the report declarations, to be corrected in
one place.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import threading
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx2
import pyarrow as pa

from leadferry.connectors.base import (
    Choice,
    Connector,
    CredentialField,
    Page,
    Param,
    Report,
    Table,
    TableBatch,
)
from leadferry.connectors.columns import TIMESTAMP, BatchBuilder, ColumnTypes, column_name
from leadferry.dates import DateWindow, today_in, zone
from leadferry.errors import FatalAPIError, RetryableAPIError
from leadferry.scrub import SECRETS

API = {
    # seen once (one public client): the token travels in an AuthToken header
    "token_header": "AuthToken",
    # reconstructed: the login (an OAuth password grant), and every report name below
    "login": "/token",
    "login_form": {"grant_type": "password", "username": "username", "password": "password"},
    "token": "access_token",
    "lifetime": "expires_in",
    "bad_login": "invalid_grant",
    # also sent, for a service that takes the token the OAuth way only
    "bearer_header": "Authorization",
    "start": "startDate",
    "end": "endDate",
    "lead_type": "leadTypeUID",
    "page": "page",
    "page_size": "pageSize",
    "total": "TotalCount",
    "results": "Results",
    "paths": {
        "all_actions": "/api/Actions",
        "all_leads": "/api/Leads",
        "branch_lead_count": "/api/Reports/BranchLeadCount",
        "closed_leads": "/api/Leads/Closed",
        "leads_awaiting_import_count": "/api/Leads/AwaitingImport/Count",
        "last_updated_leads": "/api/Leads/LastUpdated",
    },
}
MAX_PAGE_SIZE = 1000
# A token is renewed this long before the vendor says it expires.
TOKEN_MARGIN_SECONDS = 60
# The API lists no lead types: they are read from the leads created in these last days.
LEAD_TYPE_DAYS = 90

_LEAD_COLUMNS: dict[str, pa.DataType] = {
    "lead_uid": pa.int64(),
    "lead_guid": pa.string(),
    "lead_type_uid": pa.int64(),
    "lead_type_name": pa.string(),
    "lead_source_name": pa.string(),
    "campaign_name": pa.string(),
    "first_name": pa.string(),
    "last_name": pa.string(),
    "email": pa.string(),
    "phone": pa.string(),
    "address": pa.string(),
    "city": pa.string(),
    "state": pa.string(),
    "zip": pa.string(),
    "life_cycle_stage_name": pa.string(),
    "lead_status_name": pa.string(),
    "assigned_user_name": pa.string(),
    "branch_name": pa.string(),
    "created_utc": TIMESTAMP,
    "last_updated_utc": TIMESTAMP,
}
_LEAD_TYPE = Param(
    "lead_type_uid",
    "Lead Type UID",
    int,
    help="Only leads of this lead type (its UID); all lead types when empty.",
    lookup="lead_types",
)


def _leads_report(
    slug: str,
    label: str,
    day_column: str,
    description: str,
    extra: Mapping[str, pa.DataType] | None = None,
) -> Report:
    columns = {**_LEAD_COLUMNS, **(extra or {})}
    return Report(
        slug,
        label,
        tables=(Table(slug, columns, primary_key=("lead_uid",)),),
        params=(_LEAD_TYPE,),
        description=description,
        day_column=day_column,
    )


REPORTS: tuple[Report, ...] = (
    Report(
        "all_actions",
        "All Actions",
        tables=(
            Table(
                "all_actions",
                {
                    "action_uid": pa.int64(),
                    "lead_uid": pa.int64(),
                    "lead_type_uid": pa.int64(),
                    "action_type_name": pa.string(),
                    "disposition_name": pa.string(),
                    "user_account_uid": pa.int64(),
                    "user_name": pa.string(),
                    "branch_uid": pa.int64(),
                    "branch_name": pa.string(),
                    "notes": pa.string(),
                    "action_date_utc": TIMESTAMP,
                },
                primary_key=("action_uid",),
            ),
        ),
        params=(_LEAD_TYPE,),
        description="Every action (call, e-mail, disposition) taken on leads in the window.",
        day_column="action_date_utc",
    ),
    _leads_report("all_leads", "All Leads", "created_utc", "Leads created in the window."),
    Report(
        "branch_lead_count",
        "Branch Lead Count",
        tables=(
            Table(
                "branch_lead_count",
                {
                    "branch_uid": pa.int64(),
                    "branch_name": pa.string(),
                    "lead_count": pa.int64(),
                    "report_day": pa.date32(),
                },
                primary_key=("branch_uid", "report_day"),
            ),
        ),
        params=(_LEAD_TYPE,),
        description="Leads created per branch, one row per branch and day of the window.",
        day_column="report_day",
        max_window_days=1,
    ),
    _leads_report(
        "closed_leads",
        "Closed Leads",
        "closed_utc",
        "Leads closed in the window, with when and why.",
        {"closed_utc": TIMESTAMP, "close_reason": pa.string()},
    ),
    Report(
        "leads_awaiting_import_count",
        "Count for Leads Awaiting Import",
        tables=(
            Table(
                "leads_awaiting_import_count",
                {"lead_type_uid": pa.int64(), "count": pa.int64()},
                primary_key=("lead_type_uid",),
            ),
        ),
        params=(_LEAD_TYPE,),
        dated=False,
        description="How many leads wait to be imported, per lead type, right now.",
    ),
    dataclasses.replace(
        _leads_report(
            "last_updated_leads",
            "Last Updated Leads",
            "last_updated_utc",
            "Leads changed in the window (by LastUpdatedUtc).",
        ),
        cursor_column="last_updated_utc",
        window_is_cursor=True,
    ),
)

# Tokens outlive a run: one per login (base URL, user, password), until it is about to expire.
_TOKENS: dict[tuple[str, str, str], tuple[str, float]] = {}
_TOKENS_LOCK = threading.Lock()


class SalesExecConnector(Connector):
    """SalesExec's REST API: a password-grant token, then paged JSON reports."""

    name: ClassVar[str] = "salesexec"
    label: ClassVar[str] = "SalesExec"
    secret_name: ClassVar[str] = "the username or password"
    fields: ClassVar[tuple[CredentialField, ...]] = (
        CredentialField("username", "Username", help="Your SalesExec user name."),
        CredentialField("password", "Password", secret=True, help="Your SalesExec password."),
        CredentialField(
            "base_url",
            "Base URL",
            required=False,
            default="https://restapi.sales-exec.net",
            advanced=True,
            help="Where the REST API answers.",
        ),
        CredentialField(
            "timezone",
            "Time zone",
            required=False,
            default="UTC",
            advanced=True,
            help="The zone your date selections are in (SalesExec itself speaks UTC).",
        ),
    )
    reports: ClassVar[tuple[Report, ...]] = REPORTS
    page_size: ClassVar[int] = MAX_PAGE_SIZE

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.types = ColumnTypes()
        self._login_lock = threading.Lock()

    # -- authentication -------------------------------------------------------------------

    @property
    def _token_key(self) -> tuple[str, str, str]:
        password = hashlib.sha256(self.setting("password").encode()).hexdigest()
        return (self.setting("base_url").rstrip("/"), self.setting("username"), password)

    def _token(self) -> str:
        with self._login_lock:
            with _TOKENS_LOCK:
                cached = _TOKENS.get(self._token_key)
            if cached and cached[1] > time.monotonic():
                return cached[0]
            return self._login()

    def _login(self) -> str:
        request = self.client.build_request(
            "POST",
            self.setting("base_url").rstrip("/") + API["login"],
            data={
                "grant_type": API["login_form"]["grant_type"],
                API["login_form"]["username"]: self.setting("username"),
                API["login_form"]["password"]: self.setting("password"),
            },
            headers={"Accept": "application/json"},
        )
        answer = self.call(lambda: request, _read_json, authenticate=False)
        token = answer.get(API["token"]) if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            raise FatalAPIError(f"{self.label}: the login answer has no {API['token']}")
        SECRETS.add(token)
        lifetime = float(answer.get(API["lifetime"]) or 0)
        expires = time.monotonic() + max(0.0, lifetime - TOKEN_MARGIN_SECONDS)
        with _TOKENS_LOCK:
            _TOKENS[self._token_key] = (token, expires)
        return token

    def prepare(self, request: httpx2.Request) -> httpx2.Request:
        token = self._token()
        request.headers[API["token_header"]] = token
        request.headers[API["bearer_header"]] = f"Bearer {token}"
        return request

    def refresh_auth(self, refused: httpx2.Request) -> bool:
        # Pages in flight may all be refused at once: only the first drops the token they
        # shared, so one login serves them all.
        with _TOKENS_LOCK:
            cached = _TOKENS.get(self._token_key)
            if cached and cached[0] == refused.headers.get(API["token_header"]):
                del _TOKENS[self._token_key]
        return True

    def raise_for_status(self, response: httpx2.Response, where: str) -> None:
        # The password grant refuses bad credentials with 400 invalid_grant, not 401.
        if response.status_code == 400 and response.request.url.path.endswith(API["login"]):
            response.read()
            if API["bad_login"] in response.text:
                raise self.auth_error()
        super().raise_for_status(response, where)

    def check_connection(self) -> None:
        with _TOKENS_LOCK:
            _TOKENS.pop(self._token_key, None)
        self._token()

    # -- lookups --------------------------------------------------------------------------

    def lead_types(self, now: dt.datetime) -> list[Choice]:
        """The lead types (UID, name) of the leads created in the last :data:`LEAD_TYPE_DAYS`
        days, by name: the API has no list of lead types, but All Leads names each lead's.

        One page of All Leads is read (its largest), so a lead type seen only beyond it is
        missing; the parameter still takes any UID typed in.
        """
        today = today_in(self.timezone, now)
        window = DateWindow.of_days(
            today - dt.timedelta(days=LEAD_TYPE_DAYS - 1),
            today + dt.timedelta(days=1),
            zone(self.timezone),
        )
        page = self.fetch_page(self.report("all_leads"), {}, window, 0)
        names: dict[int, str] = {}
        for part in page.batches:
            uids = part.batch.column("lead_type_uid").to_pylist()
            labels = part.batch.column("lead_type_name").to_pylist()
            for uid, label in zip(uids, labels, strict=True):
                if uid is not None:
                    names.setdefault(uid, label or str(uid))
        return sorted(
            ((str(uid), label) for uid, label in names.items()),
            key=lambda choice: (choice[1].casefold(), int(choice[0])),
        )

    # -- reports --------------------------------------------------------------------------

    def page_request(
        self, report: Report, params: Mapping[str, Any], window: DateWindow | None, page: int
    ) -> httpx2.Request:
        query: dict[str, str | int] = {API["page"]: page + 1, API["page_size"]: self.page_size}
        if window is not None:
            query[API["start"]] = _utc(window.start)
            query[API["end"]] = _utc(window.end)
        if params.get("lead_type_uid") is not None:
            query[API["lead_type"]] = params["lead_type_uid"]
        url = self.setting("base_url").rstrip("/") + API["paths"][report.slug]
        return self.client.build_request(
            "GET", url, params=query, headers={"Accept": "application/json"}
        )

    def read_page(
        self, report: Report, response: httpx2.Response, window: DateWindow | None
    ) -> Page:
        answer = _read_json(response)
        rows = answer.get(API["results"]) if isinstance(answer, dict) else None
        total = answer.get(API["total"]) if isinstance(answer, dict) else None
        if not isinstance(rows, list) or not isinstance(total, int):
            raise FatalAPIError(
                f"{self.label}: the answer has no {API['results']} list or {API['total']}"
            )
        table = report.main_table
        builder = BatchBuilder(table, self.types, "UTC")
        for row in rows:
            builder.add({column_name(key): _text(value) for key, value in row.items()})
        if window is not None and "report_day" in table.columns:
            builder.add_column("report_day", [window.first_day.isoformat()] * builder.rows)
        batches = [TableBatch(table.name, builder.build())] if builder.rows else []
        return Page(batches, builder.rows, total)


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


def _read_json(response: httpx2.Response) -> Any:
    try:
        return json.loads(response.read())
    except json.JSONDecodeError:
        raise RetryableAPIError("SalesExec: the answer was cut short or is not JSON") from None
    except UnicodeDecodeError:
        raise FatalAPIError("SalesExec: the answer is not text") from None
