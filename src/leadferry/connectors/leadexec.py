"""ClickPoint LeadExec: the Data Interface (API key + LID + dates), XML read as it streams in.

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
from leadferry.connectors.columns import MONEY, TIMESTAMP, BatchBuilder, ColumnTypes, column_name
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

    def read_page(self, report: Report, response: httpx2.Response) -> Page:
        leads = BatchBuilder(LEADS, self.types, self.timezone)
        sends = BatchBuilder(SENDS, self.types, self.timezone)
        parser = etree.XMLPullParser(events=("start", "end"), huge_tree=True)
        total: int | None = None
        declared_sent: int | None = None
        lead_tag, sends_tag = API["lead"], API["sends"]

        def drain() -> None:
            nonlocal total, declared_sent
            for event, element in parser.read_events():
                if event == "start":
                    if element.tag == API["root"]:
                        total = _int_attribute(element, API["total"])
                        declared_sent = _int_attribute(element, API["sent"])
                    continue
                if element.tag != lead_tag:
                    continue
                row: dict[str, str | None] = {}
                lead_sends: list[etree._Element] = []
                for child in element:
                    if child.tag == sends_tag:
                        lead_sends.extend(child)
                    else:
                        row[column_name(child.tag)] = child.text
                leads.add(row)
                for send in lead_sends:
                    send_row = {column_name(item.tag): item.text for item in send}
                    send_row["lead_uid"] = row.get("uid")
                    sends.add(send_row)
                element.clear(keep_tail=False)
                while element.getprevious() is not None:
                    del element.getparent()[0]

        try:
            for chunk in response.iter_bytes():
                parser.feed(chunk)
                drain()
            parser.close()
            drain()
        except etree.XMLSyntaxError as exc:
            raise RetryableAPIError(
                f"{self.label}: the answer was cut short or is not XML ({exc.msg})"
            ) from None
        if total is None:
            raise FatalAPIError(f"{self.label}: the answer has no <{API['root']}> element")
        if declared_sent is not None and declared_sent != leads.rows:
            raise RetryableAPIError(
                f"{self.label}: the answer announced {declared_sent} leads but held {leads.rows}"
            )
        batches = []
        if leads.rows:
            batches.append(TableBatch(LEADS.name, leads.build()))
        if sends.rows:
            batches.append(TableBatch(SENDS.name, sends.build()))
        return Page(batches, leads.rows, total)

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
