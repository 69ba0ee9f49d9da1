"""Read plain XML answers (records of text fields) into Arrow text columns, with Arrow kernels.

LeadExec sends plain XML: a root holding records, each record one level of text fields and maybe
a list of sub-records (a lead's sends), no attributes below the root, no comments, CDATA or
character references. Such an answer is cut into one line per tag ("Name>text", newlines inside
text swapped for "<", which text cannot hold); Arrow's CSV reader splits the lines and
dictionary-encodes the tags, so that every later step works on small integers, not strings: a
tag's depth is a running sum, its record and sub-record are running counts, and a single take
puts every value in its column. No Python per value, and no tree.

The reader proves the answer well-formed itself instead of asking libxml2 (which cost as much as
all the rest): names, nesting and the end of the root are checked on the tag codes, characters
and entity references on the bytes, UTF-8 by the CSV reader. Whatever it cannot prove, or does not
know how to read, makes it return None: the caller then uses the element-by-element reader, which
reads any well-formed answer and rejects the others. Both give the same columns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
from lxml import etree

_PROLOG = re.compile(rb"(?:\xef\xbb\xbf)?(?:<\?xml(?P<decl>[^>]*)\?>)?\s*<(?P<root>[\w.-]+)[\s/>]")
_UTF8 = re.compile(rb"""encoding\s*=\s*["']utf-?8["']""", re.IGNORECASE)
# Control characters XML forbids become ">": a line holding one then has a third field, which the
# CSV reader refuses (CR is refused earlier: the parser would turn CR LF into LF).
_FORBIDDEN = bytes([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])
_TAG_LINES = bytes.maketrans(b"<\n" + _FORBIDDEN, b"\n<" + b">" * len(_FORBIDDEN))
# An "&" that does not start one of the five predefined entities (character references too: the
# element reader decodes them), and the two characters XML forbids among the UTF-8 ones.
_BAD_AMPERSAND = re.compile(rb"&(?!(?:amp|lt|gt|quot|apos);)")
_NONCHARACTER = re.compile(rb"\xef\xbf[\xbe\xbf]")
# Tags as lines show them: "Name", "Name/" (empty element), "/Name"; white space ("<" stands for
# a newline) may end a tag. Anything else (attributes, namespaces, names beyond ASCII, comments,
# instructions, CDATA, DOCTYPE) is not plain.
_OPEN = re.compile(r"([A-Za-z_][A-Za-z0-9_.-]*)[ \t<]*(/?)")
_CLOSE = re.compile(r"/([A-Za-z_][A-Za-z0-9_.-]*)[ \t<]*")
_SPACE = " \t<"
# An empty line would be a "<" right after another: not XML.
_CSV_PARSE = pcsv.ParseOptions(
    delimiter=">", quote_char=False, escape_char=False, ignore_empty_lines=False
)
_CSV_CONVERT = pcsv.ConvertOptions(
    column_types={"tag": pa.dictionary(pa.int32(), pa.string()), "text": pa.string()},
    strings_can_be_null=False,
    check_utf8=True,
)
_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'"), ("&amp;", "&"))
_MAX_DEPTH = 8
"""Deeper answers go to the element reader (the nesting check loops over depths)."""

_OPENING, _CLOSING, _EMPTY = 0, 1, 2
_STEP = {_OPENING: 1, _CLOSING: -1, _EMPTY: 0}


@dataclass(slots=True)
class PlainColumns:
    """A plain answer's root element and its text columns, keyed by tag name."""

    root: etree._Element
    records: dict[str, pa.Array]
    record_count: int
    children: dict[str, pa.Array]
    child_count: int
    record_of_child: pa.Array
    """For each sub-record, the number of its record."""


def plain_columns(body: bytes, root: str, record: str, children: str) -> PlainColumns | None:
    """Read *body*: a *root* element holding *record* elements, whose fields are text elements
    except *children*, which holds sub-records of text fields. None when *body* is not plain or
    not provably well-formed."""
    head = root_element(body, root)
    if head is None:
        return None
    element, start = head
    if b"&" in body and _BAD_AMPERSAND.search(body, start):
        return None
    if _NONCHARACTER.search(body, start):
        return None
    tokens = _tokens(body, start)
    if tokens is None:
        return None
    tags, texts = tokens
    codes = tags.indices
    entries = tags.dictionary.to_pylist()
    kinds: list[int] = []
    name_ids: list[int] = []
    ids: dict[str, int] = {}
    for entry in entries:
        matched = _OPEN.fullmatch(entry)
        if matched is not None:
            kinds.append(_EMPTY if matched[2] else _OPENING)
        else:
            matched = _CLOSE.fullmatch(entry)
            if matched is None:
                return None
            kinds.append(_CLOSING)
        name_ids.append(ids.setdefault(matched[1], len(ids)))

    # Per tag, from the few distinct tags: its kind, its name's number, and the depth after it.
    kind = pa.array(kinds, pa.int8()).take(codes)
    name = pa.array(name_ids, pa.int32()).take(codes)
    after = pc.cumulative_sum(pa.array([_STEP[k] for k in kinds], pa.int32()).take(codes))
    opening, closing = pc.equal(kind, _OPENING), pc.equal(kind, _CLOSING)
    if not _nested(entries, codes, texts, root, after, name, opening, closing):
        return None

    # The depth of the element a tag opens (or is, when empty): the root's children are at 0.
    depth = pc.subtract(after, opening.cast(pa.int32()))
    elements = pc.invert(closing)

    def at(level: int) -> pa.Array:
        return pc.and_(elements, pc.equal(depth, level))

    def named(tag: str) -> pa.Array | None:
        return pc.and_(elements, pc.equal(name, ids[tag])) if tag in ids else None

    records = at(0)
    record_count = records.true_count
    named_records = named(record)
    named_count = 0 if named_records is None else named_records.true_count
    if named_count != record_count or (
        named_records is not None and pc.and_(records, named_records).true_count != record_count
    ):
        return None  # a child of the root that is not a record, or a record deeper down
    fields = at(1)
    record_fields, child_records, child_fields = fields, None, None
    if children in ids:
        is_children = pc.and_(fields, pc.equal(name, ids[children]))
        record_fields = pc.and_(fields, pc.invert(is_children))
        # The field a deeper element is in: the last element opened at depth 1.
        parent = pc.fill_null_forward(pc.if_else(fields, name, pa.scalar(None, pa.int32())))
        in_children = pc.fill_null(pc.equal(parent, ids[children]), False)
        child_records = pc.and_(at(2), in_children)
        child_fields = pc.and_(at(3), in_children)

    # The text of an opening tag is its element's text; empty elements and empty text have none.
    has_text = pc.and_(opening, pc.greater(pc.binary_length(texts), 0))
    text = _Texts(body, start, texts)
    spelled = list(ids)
    leads = _pivot(records, record_fields, name, has_text, text, spelled)
    sends = _pivot(child_records, child_fields, name, has_text, text, spelled)
    if leads is None or sends is None:
        return None
    record_of_child = pa.array([], pa.int32())
    if child_records is not None and sends[1]:
        record_no = pc.cumulative_sum(records.cast(pa.int32()))
        record_of_child = pc.subtract(record_no.filter(child_records), 1)
    return PlainColumns(element, leads[0], leads[1], sends[0], sends[1], record_of_child)


def root_element(body: bytes, root: str) -> tuple[etree._Element, int] | None:
    """The root element (its attributes) and where its content starts; None when the prolog is
    not plain: another root, another encoding, an empty root, namespaces, a DOCTYPE..."""
    prolog = _PROLOG.match(body)
    if (
        prolog is None
        or prolog["root"] != root.encode()
        or (prolog["decl"] and b"encoding" in prolog["decl"] and not _UTF8.search(prolog["decl"]))
        or b"\r" in body
    ):
        return None
    head_end = body.find(b">", prolog.start("root"))
    start = body.find(b"<", head_end) if head_end >= 0 else -1
    if start < 0:
        return None
    head = body[: head_end + 1]
    if not body.rstrip(b" \t\n").endswith(b">"):
        return None  # a "<" at the very end would be a line end to the CSV reader
    if head.endswith(b"/>") or b"xmlns" in head or body[head_end + 1 : start].strip(b" \t\n"):
        return None
    try:  # libxml2 checks the declaration and the root's attributes
        element = etree.fromstring(head + b"</" + prolog["root"] + b">")
    except etree.XMLSyntaxError:
        return None
    return element, start + 1


def _tokens(body: bytes, start: int) -> tuple[pa.DictionaryArray, pa.StringArray] | None:
    """The tags (dictionary-encoded) and the text after each, from the tag at *start* on (just
    after its "<"); None when a line
    is not "tag>text" (a ">" or a forbidden character in some text, attributes...) or the text
    is not UTF-8."""
    lines = body.translate(_TAG_LINES)
    try:
        table = pcsv.read_csv(
            pa.py_buffer(lines)[start:],
            read_options=pcsv.ReadOptions(
                column_names=["tag", "text"], use_threads=False, block_size=len(lines) + 1
            ),
            parse_options=_CSV_PARSE,
            convert_options=_CSV_CONVERT,
        )
    except pa.ArrowInvalid:
        return None
    tags, texts = table.column("tag"), table.column("text")
    if tags.num_chunks != 1 or texts.num_chunks != 1:
        return None
    return tags.chunk(0), texts.chunk(0)


def _nested(
    entries: list[str],
    codes: pa.Array,
    texts: pa.Array,
    root: str,
    after: pa.Array,
    name: pa.Array,
    opening: pa.Array,
    closing: pa.Array,
) -> bool:
    """Whether the tags nest: every closing tag closes the element opened last, the last tag
    closes the root, and nothing but white space follows it."""
    count = len(after)
    if count == 0 or after[count - 1].as_py() != -1:
        return False
    if entries[codes[count - 1].as_py()] != "/" + root:
        return False
    if texts[count - 1].as_py().strip(_SPACE):
        return False  # text after the root (comments and instructions are not plain either)
    # Most elements are fields: a closing tag right after its opening tag. Check those pairs at
    # once, then the nesting of the few other tags (records, lists of sub-records, the root).
    pairs = pc.and_(opening.slice(0, count - 1), closing.slice(1))
    if pc.and_(pairs, pc.not_equal(name.slice(0, count - 1), name.slice(1))).true_count:
        return False
    no = pa.array([False])
    paired = pc.or_(pa.concat_arrays([pairs, no]), pa.concat_arrays([no, pairs]))
    others = pc.and_(pc.or_(opening, closing), pc.invert(paired))
    after, name = after.filter(others), name.filter(others)
    opening, closing = opening.filter(others), closing.filter(others)
    count = len(after)
    if count > 1 and pc.min(after.slice(0, count - 1)).as_py() < 0:
        return False  # the root closed before the end (only such a tag can bring it below 0)
    depth = pc.subtract(after, opening.cast(pa.int32()))
    deepest = pc.max(depth).as_py()
    if deepest > _MAX_DEPTH:
        return False
    # An element's closing tag is the next tag at its depth: the name last opened at that depth
    # must be the one closed.
    none = pa.scalar(None, pa.int32())
    for level in range(deepest + 1):
        here = pc.equal(depth, level)
        opened = pc.fill_null_forward(pc.if_else(pc.and_(here, opening), name, none))
        wrong = pc.and_(pc.and_(here, closing), pc.not_equal(opened, name))
        if wrong.true_count:
            return False
    return True


class _Texts:
    """The text after each tag, with the few that hold entities or newlines decoded aside: a
    single take then gathers a column's values."""

    _MOST_MARKED = 2000
    """Past this many texts to decode, every value of a column is looked at instead."""

    def __init__(self, body: bytes, start: int, texts: pa.Array) -> None:
        self.none = len(texts)
        """Where a null is, for fields without text."""
        marked = _marked(body, start, self._MOST_MARKED)
        self.decode_all = marked is None
        self.marked: pa.Array | None = None
        extra = [pa.nulls(1, pa.string())]
        if marked:
            self.marked = pa.array(marked, pa.int64())
            extra.append(_decoded(texts.take(self.marked)))
        self.values = pa.concat_arrays([texts, *extra])

    def column_values(self, where: pa.Array, has_text: pa.Array, grid: pa.Array) -> pa.Array:
        """The texts of the tags at *where* (those with *has_text*), laid out by *grid*."""
        where = where.cast(pa.int64())
        if self.marked is not None:
            aside = pc.index_in(where, value_set=self.marked)
            where = pc.coalesce(pc.add(aside.cast(pa.int64()), self.none + 1), where)
        values = self.values.take(pc.if_else(has_text, where, self.none).take(grid))
        return _decoded(values) if self.decode_all else values


def _marked(body: bytes, start: int, most: int) -> list[int] | None:
    """The numbers of the tags (from *start*) whose text holds "&" or a newline; None when
    there are more than *most*."""
    places: list[int] = []
    for mark in (b"&", b"\n"):
        place = body.find(mark, start)
        while place >= 0 and len(places) <= most:
            places.append(place)
            place = body.find(mark, place + 1)
    if len(places) > most:
        return None
    marked: list[int] = []
    token, at = 0, start
    for place in sorted(places):
        token += body.count(b"<", at, place)
        at = place
        if not marked or marked[-1] != token:
            marked.append(token)
    return marked


def _pivot(
    rows: pa.Array | None,
    cells: pa.Array | None,
    names: pa.Array,
    has_text: pa.Array,
    texts: _Texts,
    spelled: list[str],
) -> tuple[dict[str, pa.Array], int] | None:
    """The text columns of the *cells* (fields of the *rows*), in first-seen order of names like
    the element reader's, and the number of rows; None when a row has a name twice (the element
    reader keeps the last one)."""
    count = 0 if rows is None else rows.true_count
    if rows is None or cells is None or not count:
        return {}, count
    where = pc.indices_nonzero(cells)
    if not len(where):
        return {}, count
    row = pc.cumulative_sum(rows.cast(pa.int32())).take(where)  # from 1
    names = names.take(where)
    keys = pc.unique(names).to_pylist()
    ranks: list[int | None] = [None] * len(spelled)
    for rank, key in enumerate(keys):
        ranks[key] = rank
    # Each cell's place in a grid of one run of *count* rows per name (from 1: place 0 is unused).
    place = pc.add(pc.multiply(pa.array(ranks, pa.int32()).take(names), count), row)
    grid = pc.scatter(_count_up(len(where)), place, max_index=len(keys) * count)
    if len(grid) - grid.null_count != len(where):
        return None  # two cells in one place
    values = texts.column_values(where, has_text.take(where), grid.slice(1))
    return {spelled[key]: values.slice(k * count, count) for k, key in enumerate(keys)}, count


def _decoded(values: pa.Array) -> pa.Array:
    """*values* with newlines put back and entities decoded."""
    for mark, replacements in (("<", (("<", "\n"),)), ("&", _ENTITIES)):
        # Newlines first, before "&lt;" becomes another "<".
        marked = pc.match_substring(values, mark)
        if not marked.true_count:
            continue
        changed = values.filter(marked)
        for old, new in replacements:
            changed = pc.replace_substring(changed, old, new)
        values = pc.replace_with_mask(values, marked, changed)
    return values


@lru_cache(maxsize=64)
def _count_up(n: int) -> pa.Array:
    """0, 1, ..., n - 1 (cached: pages have much the same sizes)."""
    return pc.subtract(pc.cumulative_sum(pa.repeat(pa.scalar(1, pa.int64()), n)), 1)
