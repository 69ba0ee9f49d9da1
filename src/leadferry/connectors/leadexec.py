"""ClickPoint LeadExec: the Data Interface (API key + LID + dates), pages of XML.

See docs/connectors.md and specs/vendor-apis.md section 1. Names marked reconstructed are our best
reading of an undocumented API; they are all in :data:`API`, to be corrected in one place.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
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
from leadferry.connectors.known_xml import KnownFieldsReader
from leadferry.connectors.plain_xml import PlainColumns, plain_columns
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
    "query": "query",
    # reconstructed: the layout of a lead's deliveries, the naive window format, the time zone
    "sends": "Sends",
    "send": "Send",
    "date_format": "%m-%d-%Y %H:%M:%S",
    # seen once (in JSON answers); filtered through the confirmed Mongo-like `query`
    "updated": "LastUpdated",
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
        "last_updated": TIMESTAMP,
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
            cursor_column="last_updated",
        ),
    )
    page_size: ClassVar[int] = 1000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.types = ColumnTypes()
        self.names = ColumnNames()
        self.known = KnownFieldsReader(API["root"], API["lead"], API["sends"], API["send"])

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
        account_zone = ZoneInfo(self.timezone)
        if self.updated_since is not None:
            since = self.updated_since.astimezone(account_zone).strftime(API["date_format"])
            query[API["query"]] = json.dumps({API["updated"]: {"$gte": since}})
        elif window is not None:
            query[API["start"]] = window.start.astimezone(account_zone).strftime(API["date_format"])
            query[API["end"]] = window.end.astimezone(account_zone).strftime(API["date_format"])
        return self.client.build_request(
            "GET", self.setting("base_url"), params=query, headers={"Accept": "application/xml"}
        )

    def read_page(
        self, report: Report, response: httpx2.Response, window: DateWindow | None
    ) -> Page:
        body = b"".join(response.iter_bytes())
        # The first two readers prove what they read well-formed; the element reader takes the
        # rest, and libxml2 rejects what is not XML (mostly answers cut short).
        answer = self._read_known(body) or self._read_plain(body)
        if answer is None:
            try:
                answer = self._read_tree(body)
            except etree.XMLSyntaxError as exc:
                raise RetryableAPIError(
                    f"{self.label}: the answer was cut short or is not XML ({exc.msg})"
                ) from None
        if answer.total is None:
            raise FatalAPIError(f"{self.label}: the answer has no <{API['root']}> element")
        if answer.sent is not None and answer.sent != answer.leads.rows:
            raise RetryableAPIError(
                f"{self.label}: the answer announced {answer.sent} leads "
                f"but held {answer.leads.rows}"
            )
        batches = [
            TableBatch(builder.table.name, builder.build())
            for builder in (answer.leads, answer.sends)
            if builder.rows
        ]
        return Page(batches, answer.leads.rows, answer.total)

    def _read_known(self, body: bytes) -> _Answer | None:
        """The answer read by the known-fields reader, or None when it holds anything else."""
        columns = self.known.read(body)
        return None if columns is None else self._answer_of(columns)

    def _read_plain(self, body: bytes) -> _Answer | None:
        """The answer read by :func:`plain_columns`, or None when it is not plain. The fields it
        finds are taught to the known-fields reader."""
        plain = plain_columns(body, API["root"], API["lead"], API["sends"])
        if plain is None:
            return None
        answer = self._answer_of(plain)
        if answer is not None:
            self.known.learn(plain.records, plain.children)
        return answer

    def _answer_of(self, plain: PlainColumns) -> _Answer | None:
        leads, sends = self._named(plain.records), self._named(plain.children)
        if leads is None or sends is None:
            return None
        if plain.child_count:
            uid = leads.get("uid")
            sends["lead_uid"] = (
                pa.nulls(plain.child_count, pa.string())
                if uid is None
                else uid.take(plain.record_of_child)
            )
        answer = self._answer(plain.root)
        answer.leads.add_arrays(leads, plain.record_count)
        answer.sends.add_arrays(sends, plain.child_count)
        return answer

    def _named(self, columns: dict[str, pa.Array]) -> dict[str, pa.Array] | None:
        """*columns* keyed by warehouse name; None when two vendor names give one column."""
        named = {self.names[tag]: values for tag, values in columns.items()}
        return named if len(named) == len(columns) else None

    def _read_tree(self, body: bytes) -> _Answer:
        """The answer read element by element: any well-formed answer."""
        document = etree.fromstring(body, etree.XMLParser(huge_tree=True))
        answer = self._answer(next(document.iter(API["root"]), None))
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
        answer.leads.add_rows(lead_rows)
        answer.sends.add_rows(send_rows)
        return answer

    def _answer(self, root: etree._Element | None) -> _Answer:
        return _Answer(
            total=None if root is None else _int_attribute(root, API["total"]),
            sent=None if root is None else _int_attribute(root, API["sent"]),
            leads=BatchBuilder(LEADS, self.types, self.timezone),
            sends=BatchBuilder(SENDS, self.types, self.timezone),
        )

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


@dataclass(slots=True)
class _Answer:
    """One answer: what the root says, and the text of its leads and sends."""

    total: int | None
    sent: int | None
    leads: BatchBuilder
    sends: BatchBuilder
