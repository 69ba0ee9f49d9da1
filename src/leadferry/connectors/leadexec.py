"""ClickPoint LeadExec: the Data Interface (API key + LID + dates), pages of XML.

See docs/connectors.md and specs/vendor-apis.md section 1. Names marked reconstructed are our best
reading of an undocumented API; they are all in :data:`API`, to be corrected in one place.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, NoReturn
from zoneinfo import ZoneInfo

import httpx2
import pyarrow as pa
import pyarrow.compute as pc
from lxml import etree

from leadferry.clock import utc_now
from leadferry.connectors.base import (
    Connector,
    CredentialField,
    Page,
    Param,
    ProgressCallback,
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
from leadferry.dates import DateWindow, start_of_day
from leadferry.errors import FatalAPIError, RetryableAPIError
from leadferry.scrub import scrub

API = {
    # confirmed (specs/vendor-apis.md section 1)
    "key": "key",
    "lid": "lid",
    "start": "startdate",
    "end": "enddate",
    "skip": "skip",
    "take": "take",
    "sort_fields": "sortfields",
    "sort_order": "sortorder",
    "added": "DateAdded",
    "root": "Leads",
    "lead": "Lead",
    "total": "querytotal",
    "sent": "sentcount",
    "query": "query",
    # reconstructed: the layout of a lead's deliveries, the window's spelling (one of the
    # confirmed ones), the error element and that a refused key's message names the key
    "sends": "Sends",
    "send": "Send",
    "date_format": "%m-%d-%Y %H:%M:%S",
    "error": "Error",
    "key_refused": "key",
    # seen once (in JSON answers); filtered through the confirmed Mongo-like `query`
    "updated": "LastUpdated",
}
CHANGES_SEARCHED_FROM = dt.date(2000, 1, 1)
"""Where an incremental run's window starts: a lead changed since the cursor may have been added
at any time, and no LeadExec account holds leads older than this (the product dates from 2008)."""

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
    more_columns=True,  # each lead type's own fields
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
        self.filter_changes = False
        """Whether pages ask only for leads changed since :attr:`updated_since` (see fetch)."""

    def fetch(
        self,
        report: Report,
        params: Mapping[str, Any],
        window: DateWindow | None,
        progress: ProgressCallback | None = None,
        updated_since: dt.datetime | None = None,
    ) -> Iterator[TableBatch]:
        """As :meth:`Connector.fetch`; changes since *updated_since* are asked for with a window
        as well (every lead added from :data:`CHANGES_SEARCHED_FROM` until tomorrow), in case
        the vendor requires one, and only once the vendor is seen to filter changes by date.
        Otherwise the whole window is loaded and :attr:`note` says why."""
        self.filter_changes, self.note = False, None
        if updated_since is not None and window is None:
            zone = ZoneInfo(self.timezone)
            tomorrow = utc_now().astimezone(zone).date() + dt.timedelta(days=1)
            window = DateWindow(
                start_of_day(CHANGES_SEARCHED_FROM, zone), start_of_day(tomorrow, zone)
            )
            doubt = self._change_filter_doubt(params, window, updated_since)
            self.filter_changes = doubt is None
            if doubt is not None:
                self.note = (
                    f"{self.label}: {doubt}, so every lead added since "
                    f"{CHANGES_SEARCHED_FROM.isoformat()} was loaded, not only the changes"
                )
        yield from super().fetch(report, params, window, progress, updated_since)

    def _change_filter_doubt(
        self, params: Mapping[str, Any], window: DateWindow, since: dt.datetime
    ) -> str | None:
        """Why the vendor's change filter cannot be trusted, or None when it can.

        Three one-lead requests: all leads of the window, those changed since *since*, and those
        changed before it, the two filters spelling *since* differently (US and ISO). Compared as
        dates, the two parts add up to the whole; compared as text, or not at all, they do not.
        """
        total, lead = self._probe(params, window, None)
        if total == 0:
            return None
        if lead is None or lead.find(API["updated"]) is None:
            return f"the answers carry no <{API['updated']}>"
        local = since.astimezone(ZoneInfo(self.timezone))
        changed, _ = self._probe(params, window, self._change_query("$gte", local))
        unchanged, _ = self._probe(
            params, window, {API["updated"]: {"$lt": local.strftime("%Y-%m-%dT%H:%M:%S")}}
        )
        if changed + unchanged != total:
            return (
                f"its filter on {API['updated']} does not compare dates ({changed} leads changed "
                f"since and {unchanged} before {local:%Y-%m-%d %H:%M:%S} of {total})"
            )
        return None

    def _probe(
        self, params: Mapping[str, Any], window: DateWindow, query: dict[str, Any] | None
    ) -> tuple[int, etree._Element | None]:
        """The total of a one-lead request, and its lead."""
        request = self._request(params["lid"], window, query, skip=0, take=1)
        root = self.call(lambda: request, self._root)
        total = _int_attribute(root, API["total"]) or 0
        return total, root.find(API["lead"])

    def _change_query(self, operator: str, local: dt.datetime) -> dict[str, Any]:
        return {API["updated"]: {operator: local.strftime(API["date_format"])}}

    def page_request(
        self, report: Report, params: Mapping[str, Any], window: DateWindow | None, page: int
    ) -> httpx2.Request:
        changes = None
        if self.filter_changes and self.updated_since is not None:
            changes = self._change_query(
                "$gte", self.updated_since.astimezone(ZoneInfo(self.timezone))
            )
        skip = page * self.page_size
        return self._request(params["lid"], window, changes, skip=skip, take=self.page_size)

    def _request(
        self,
        lid: int,
        window: DateWindow | None,
        query: dict[str, Any] | None,
        *,
        skip: int,
        take: int,
    ) -> httpx2.Request:
        """A GET of the Data Interface: leads of *lid* added in *window* matching *query*."""
        params: dict[str, str | int] = {
            API["key"]: self.setting("api_key"),
            API["lid"]: lid,
            API["skip"]: skip,
            API["take"]: take,
            API["sort_fields"]: API["added"],
            API["sort_order"]: "ASC",
        }
        account_zone = ZoneInfo(self.timezone)
        if window is not None:
            params[API["start"]] = window.start.astimezone(account_zone).strftime(
                API["date_format"]
            )
            params[API["end"]] = window.end.astimezone(account_zone).strftime(API["date_format"])
        if query is not None:
            params[API["query"]] = json.dumps(query)
        return self.client.build_request(
            "GET", self.setting("base_url"), params=params, headers={"Accept": "application/xml"}
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
            self._refuse(body)
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
        if self.filter_changes and batches:
            self._check_changes(batches[0].batch)
        return Page(batches, answer.leads.rows, answer.total)

    def _check_changes(self, leads: pa.RecordBatch) -> None:
        """Refuse a page of "changed" leads that holds one changed before the cursor."""
        assert self.updated_since is not None
        since = self.updated_since.replace(microsecond=0)  # the filter is sent to the second
        column = self.names[API["updated"]]
        oldest = pc.min(leads.column(column)).as_py() if column in leads.schema.names else None
        if oldest is None or oldest < since:
            raise FatalAPIError(
                f"{self.label}: the filter on {API['updated']} let through a lead not changed "
                f"since {since:%Y-%m-%d %H:%M:%S %Z}: load this dataset without --incremental"
            )

    def _refuse(self, body: bytes) -> NoReturn:
        """Raise what an answer without <Leads> means: a refused key, the vendor's own error,
        or an answer leadferry cannot read."""
        message = _error_message(body)
        if message is None:
            raise FatalAPIError(f"{self.label}: the answer has no <{API['root']}> element")
        if API["key_refused"] in message.lower():
            raise self.auth_error()
        raise FatalAPIError(f"{self.label}: {scrub(message)}")

    def _root(self, response: httpx2.Response) -> etree._Element:
        """The <Leads> element of a small answer; what an answer without one means, raised."""
        body = response.read()
        try:
            root = etree.fromstring(body, _SAFE_XML)
        except etree.XMLSyntaxError:
            raise RetryableAPIError(
                f"{self.label}: the answer was cut short or is not XML"
            ) from None
        if root.tag != API["root"]:
            self._refuse(body)
        return root

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
        # Lead type 0 holds no leads; the window is sent in case the vendor requires one.
        zone = ZoneInfo(self.timezone)
        today = utc_now().astimezone(zone).date()
        window = DateWindow(start_of_day(today, zone), start_of_day(today + dt.timedelta(1), zone))
        request = self._request(0, window, None, skip=0, take=1)
        self.call(lambda: request, self._root)


_SAFE_XML = etree.XMLParser(resolve_entities=False, no_network=True)


def _error_message(body: bytes) -> str | None:
    """The text of an answer that is one <Error> element, else None."""
    try:
        root = etree.fromstring(body, _SAFE_XML)
    except etree.XMLSyntaxError:
        return None
    return (root.text or "").strip() if root.tag == API["error"] else None


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
