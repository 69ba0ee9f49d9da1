"""ClickPoint LeadExec: the Data Interface (API key + LID + dates), pages of XML.

See docs/connectors.md and specs/vendor-apis.md section 1. Names marked reconstructed are our best
reading of an undocumented API; they are all in :data:`API`, to be corrected in one place.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import httpx2
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
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
        try:
            # libxml2 checks the whole answer, building nothing and without holding the GIL.
            etree.fromstring(body, etree.XMLParser(huge_tree=True, target=_Checked()))
            answer = self._read_plain(body) or self._read_tree(body)
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

    def _read_plain(self, body: bytes) -> _Answer | None:
        """The answer read by :func:`_plain_columns`, or None when it is not plain."""
        plain = _plain_columns(body)
        if plain is None:
            return None
        leads, sends = self._named(plain.leads), self._named(plain.sends)
        if leads is None or sends is None:
            return None
        if plain.send_count:
            uid = leads.get("uid")
            sends["lead_uid"] = (
                pa.nulls(plain.send_count, pa.string())
                if uid is None
                else uid.take(plain.lead_of_send)
            )
        answer = self._answer(plain.root)
        answer.leads.add_arrays(leads, plain.lead_count)
        answer.sends.add_arrays(sends, plain.send_count)
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


class _Checked:
    """An lxml parser target that builds nothing: parsing with it only checks the document."""

    def close(self) -> None:
        return None


# -- plain answers, read with Arrow kernels -------------------------------------------------------
#
# What LeadExec sends is plain XML: one level of fields per lead, no attributes below the root, no
# comments, CDATA or character references. Such an answer is cut into one line per tag
# ("Name>text", newlines inside text swapped for "<", which text cannot hold), Arrow's CSV reader
# splits the lines, and kernels find each tag's depth, lead and send: no Python per value. Anything
# else goes to the element-by-element reader, so both give the same batches.

_PROLOG = re.compile(rb"(?:\xef\xbb\xbf)?(?:<\?xml(?P<decl>[^>]*)\?>)?\s*<(?P<root>[\w.-]+)[\s/>]")
_UTF8 = re.compile(rb"""encoding\s*=\s*["']utf-?8["']""", re.IGNORECASE)
_TAG_LINES = bytes.maketrans(b"<\n", b"\n<")
_NAME_BYTES = string.ascii_letters.encode() + string.digits.encode() + b"_-./"
_CSV_PARSE = pcsv.ParseOptions(
    delimiter=">", quote_char=False, escape_char=False, ignore_empty_lines=True
)
_CSV_CONVERT = pcsv.ConvertOptions(  # libxml2 has checked the UTF-8 already
    column_types={"tag": pa.string(), "text": pa.string()},
    strings_can_be_null=False,
    check_utf8=False,
)
_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'"), ("&amp;", "&"))
_NO_TEXT = pa.scalar(None, pa.string())
_UNKNOWN = pa.scalar(None, pa.bool_())


@dataclass(slots=True)
class _Plain:
    """A plain answer's root and text columns, keyed by vendor name."""

    root: etree._Element
    leads: dict[str, pa.Array]
    lead_count: int
    sends: dict[str, pa.Array]
    send_count: int
    lead_of_send: pa.Array
    """For each send, the number of its lead."""


def _plain_columns(body: bytes) -> _Plain | None:
    """Read a well-formed answer with Arrow kernels; None when it is not plain."""
    prolog = _PROLOG.match(body)
    if (
        prolog is None
        or prolog["root"] != API["root"].encode()
        or (prolog["decl"] and b"encoding" in prolog["decl"] and not _UTF8.search(prolog["decl"]))
        or b"\r" in body  # the parser turns CR LF into LF
    ):
        return None
    head_end = body.index(b">", prolog.start("root"))
    head = body[prolog.start("root") - 1 : head_end + 1]
    if head.endswith(b"/>") or b"xmlns" in head:
        return None
    try:
        root = etree.fromstring(head + b"</" + prolog["root"] + b">")
    except etree.XMLSyntaxError:
        return None
    has_newlines = b"\n" in body
    lines = body.translate(_TAG_LINES) if has_newlines else body.replace(b"<", b"\n")
    try:
        table = pcsv.read_csv(
            pa.py_buffer(lines)[body.index(b"<", head_end) :],
            read_options=pcsv.ReadOptions(
                column_names=["tag", "text"], use_threads=False, block_size=len(lines) + 1
            ),
            parse_options=_CSV_PARSE,
            convert_options=_CSV_CONVERT,
        )
    except pa.ArrowInvalid:
        return None  # a ">" in some text, or attributes on some element
    tags, texts = (table.column(name).combine_chunks() for name in ("tag", "text"))
    spelled = _bytes_of(tags)
    if spelled.translate(None, _NAME_BYTES).strip(b" ") or (
        b" " in spelled and spelled.count(b" ") != spelled.count(b" /")
    ):
        return None  # names beyond ASCII, namespaces, attributes, comments or instructions

    closing, empty = pc.starts_with(tags, "/"), pc.ends_with(tags, "/")
    opening = pc.invert(pc.or_(closing, empty))
    step = pc.subtract(opening.cast(pa.int32()), closing.cast(pa.int32()))
    level = pc.add(pc.subtract(pc.cumulative_sum(step), step), 2)  # the root's children: 2
    # From here on, only the elements (opening and empty tags) in document order.
    element = pc.invert(closing)
    level, empty, texts = level.filter(element), empty.filter(element), texts.filter(element)
    names = pc.utf8_rtrim(tags.filter(element), characters=" /")

    def at(depth: int) -> pa.Array:
        return pc.equal(level, depth)

    lead, named_lead = at(2), pc.equal(names, API["lead"])
    lead_count = lead.true_count
    if named_lead.true_count != lead_count or pc.and_(lead, named_lead).true_count != lead_count:
        return None  # a child of the root that is not a lead, or a lead deeper down
    field = at(3)
    is_sends = pc.and_(field, pc.equal(names, API["sends"]))
    in_sends = pc.fill_null(pc.fill_null_forward(pc.if_else(field, is_sends, _UNKNOWN)), False)
    send, send_field = pc.and_(at(4), in_sends), pc.and_(at(5), in_sends)
    lead_field = pc.and_(field, pc.invert(is_sends))

    values = pc.if_else(pc.or_(empty, pc.equal(texts, "")), _NO_TEXT, texts)
    if has_newlines:  # put them back first, before "&lt;" becomes another "<"
        values = _replaced(values, pc.match_substring(values, "<"), (("<", "\n"),))
    if b"&" in body:
        with_entities = pc.match_substring(values, "&")
        if pc.any(pc.match_substring(values.filter(with_entities), "&#")).as_py():
            return None  # character references: the element reader decodes them
        values = _replaced(values, with_entities, _ENTITIES)

    lead_no = pc.subtract(pc.cumulative_sum(lead.cast(pa.int32())), 1)
    send_no = pc.subtract(pc.cumulative_sum(send.cast(pa.int32())), 1)
    send_count = send.true_count
    leads = _pivot(lead_no, names, values, lead_field, lead_count)
    sends = _pivot(send_no, names, values, send_field, send_count)
    if leads is None or sends is None:
        return None
    return _Plain(root, leads, lead_count, sends, send_count, lead_no.filter(send))


def _replaced(
    values: pa.Array, marked: pa.Array, replacements: tuple[tuple[str, str], ...]
) -> pa.Array:
    """*values* with the *replacements* made in the *marked* ones (few: the others stay put)."""
    changed = values.filter(marked)
    for old, new in replacements:
        changed = pc.replace_substring(changed, old, new)
    return pc.replace_with_mask(values, marked, changed)


def _pivot(
    rows: pa.Array, names: pa.Array, values: pa.Array, cells: pa.Array, count: int
) -> dict[str, pa.Array] | None:
    """Columns of the *cells* (row, name, value), *count* rows each; None when a row has a name
    twice (the element reader keeps the last one)."""
    rows, names, values = rows.filter(cells), names.filter(cells), values.filter(cells)
    if not len(names):
        return {}
    keys = pc.unique(names)  # in first-seen order, like the element reader's columns
    # Each cell's place in a grid of one run of *count* rows per name, then the grid's values.
    place = pc.add(pc.multiply(pc.index_in(names, value_set=keys), count), rows)
    grid = pc.index_in(_count_up(len(keys) * count), value_set=place)
    if len(grid) - grid.null_count != len(place):
        return None  # two cells in one place
    values = values.take(grid)
    return {name: values.slice(k * count, count) for k, name in enumerate(keys.to_pylist())}


def _count_up(n: int) -> pa.Array:
    """0, 1, ..., n - 1."""
    return pc.subtract(pc.cumulative_sum(pa.repeat(pa.scalar(1, pa.int64()), n)), 1)


def _bytes_of(strings: pa.Array) -> bytes:
    """The characters of every string in *strings*, one after another."""
    offsets = pa.Array.from_buffers(
        pa.int32(), len(strings) + 1, [None, strings.buffers()[1]], offset=strings.offset
    )
    return strings.buffers()[2].to_pybytes()[offsets[0].as_py() : offsets[-1].as_py()]
