"""ClickPoint LeadExec: the Data Interface (API key + LID + dates), pages of XML.

See docs/connectors.md and specs/vendor-apis.md section 1. Names marked reconstructed are our best
reading of an undocumented API; they are all in :data:`API`, to be corrected in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import httpx2
import pyarrow as pa
from lxml import etree

from leadferry.connectors.base import (
    Connector,
    CredentialField,
    Page,
    Param,
    Report,
    Table,
    TableBatch,
)
from leadferry.connectors.columns import (
    MONEY,
    TIMESTAMP,
    BatchBuilder,
    ColumnNames,
    ColumnTypes,
)
from leadferry.dates import DateWindow
from leadferry.errors import FatalAPIError, RetryableAPIError

API = {
    # confirmed
    "key": "key",
    "lid": "lid",
    "start": "startdate",
    "end": "enddate",
    "skip": "skip",
    "take": "take",
    "sort_fields": "sortfields",
    "sort_order": "sortorder",
    "root": "Leads",
    "lead": "Lead",
    "total": "querytotal",
    "sent": "sentcount",
    # reconstructed: the layout of a lead's deliveries, the naive window format, the time zone
    "sends": "Sends",
    "send": "Send",
    "date_format": "%m-%d-%Y %H:%M:%S",
}

LEADS = Table(
    "leads",
    columns={
        "uid": pa.int64(),
        "lead_source": pa.string(),
        "date_added": TIMESTAMP,
        "file_uid": pa.int64(),
        "campaign": pa.string(),
        "is_valid": pa.bool_(),
        "max_sell": pa.int64(),
        "price": MONEY,
    },
    primary_key=("uid",),
)
SENDS = Table(
    "lead_sends",
    columns={
        "lead_uid": pa.int64(),
        "client_uid": pa.int64(),
        "client_name": pa.string(),
        "date_sent": TIMESTAMP,
        "price": MONEY,
    },
    parent_key="lead_uid",
)


class LeadExecConnector(Connector):
    """LeadExec's Data Interface: one GET per page of up to 1,000 leads, XML."""

    name: ClassVar[str] = "leadexec"
    label: ClassVar[str] = "LeadExec"
    secret_name: ClassVar[str] = "the API key"
    fields: ClassVar[tuple[CredentialField, ...]] = (
        CredentialField("api_key", "API Key", secret=True, help="Your ClickPoint API key."),
        CredentialField(
            "base_url",
            "Base URL",
            required=False,
            default="https://apidata.leadexec.net/",
            advanced=True,
            help="Where the Data Interface answers.",
        ),
        CredentialField(
            "timezone",
            "Time zone",
            required=False,
            default="America/Los_Angeles",
            advanced=True,
            help="The account's clock: LeadExec dates are naive times in this zone.",
        ),
    )
    reports: ClassVar[tuple[Report, ...]] = (
        Report(
            "leads",
            "Leads",
            tables=(LEADS, SENDS),
            params=(
                Param(
                    "lid",
                    "LID",
                    int,
                    required=True,
                    help="The lead type id (LID) of the leads you want.",
                ),
            ),
            description="Returns all leads of one lead type added in the window, with their sends.",
            day_column="date_added",
        ),
    )
    page_size: ClassVar[int] = 1000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.types = ColumnTypes()
        self.names = ColumnNames()

    def page_request(
        self, report: Report, params: Mapping[str, Any], window: DateWindow | None, page: int
    ) -> httpx2.Request:
        query: dict[str, str | int] = {
            API["key"]: self.setting("api_key"),
            API["lid"]: params["lid"],
            API["skip"]: page * self.page_size,
            API["take"]: self.page_size,
            API["sort_fields"]: "DateAdded",
            API["sort_order"]: "ASC",
        }
        if window is not None:
            account_zone = ZoneInfo(self.timezone)
            query[API["start"]] = window.start.astimezone(account_zone).strftime(API["date_format"])
            query[API["end"]] = window.end.astimezone(account_zone).strftime(API["date_format"])
        return self.client.build_request(
            "GET", self.setting("base_url"), params=query, headers={"Accept": "application/xml"}
        )

    def read_page(
        self, report: Report, response: httpx2.Response, window: DateWindow | None
    ) -> Page:
        # The whole answer first: libxml2 then parses it without holding the GIL, so page
        # threads parse while the main thread loads. A page is about 1 MB.
        body = b"".join(response.iter_bytes())
        try:
            document = etree.fromstring(body, etree.XMLParser(huge_tree=True))
        except etree.XMLSyntaxError as exc:
            raise RetryableAPIError(
                f"{self.label}: the answer was cut short or is not XML ({exc.msg})"
            ) from None
        root = next(document.iter(API["root"]), None)
        total = None if root is None else _int_attribute(root, API["total"])
        if root is None or total is None:
            raise FatalAPIError(f"{self.label}: the answer has no <{API['root']}> element")
        declared_sent = _int_attribute(root, API["sent"])
        names, sends_tag = self.names, API["sends"]
        lead_rows: list[dict[str, str | None]] = []
        send_rows: list[dict[str, str | None]] = []
        for lead in document.iter(API["lead"]):
            row: dict[str, str | None] = {}
            lead_sends: list[etree._Element] = []
            for child in lead.iterchildren(etree.Element):
                if child.tag == sends_tag:
                    lead_sends.extend(child.iterchildren(etree.Element))
                else:
                    row[names[child.tag]] = child.text
            lead_rows.append(row)
            for send in lead_sends:
                send_row = {names[item.tag]: item.text for item in send.iterchildren(etree.Element)}
                send_row["lead_uid"] = row.get("uid")
                send_rows.append(send_row)
        if declared_sent is not None and declared_sent != len(lead_rows):
            raise RetryableAPIError(
                f"{self.label}: the answer announced {declared_sent} leads "
                f"but held {len(lead_rows)}"
            )
        batches = []
        if lead_rows:
            leads = BatchBuilder(LEADS, self.types, self.timezone)
            leads.add_rows(lead_rows)
            batches.append(TableBatch(LEADS.name, leads.build()))
        if send_rows:
            sends = BatchBuilder(SENDS, self.types, self.timezone)
            sends.add_rows(send_rows)
            batches.append(TableBatch(SENDS.name, sends.build()))
        return Page(batches, len(lead_rows), total)

    def check_connection(self) -> None:
        request = self.client.build_request(
            "GET",
            self.setting("base_url"),
            params={API["key"]: self.setting("api_key"), API["lid"]: 0, API["take"]: 1},
        )
        self.call(lambda: request, lambda response: response.read())


def _int_attribute(element: etree._Element, name: str) -> int | None:
    value = element.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise FatalAPIError(f"LeadExec: {name}={value!r} is not a number") from None
