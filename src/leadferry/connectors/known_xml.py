"""Read plain XML answers whose field names are known already, with xml2arrow (Rust).

Once a run has read a page with the other readers, it knows the names of the fields its records
have. Later pages are then read by xml2arrow, which maps the known paths straight to Arrow text
columns in compiled code, without the GIL: about 4 ms for a 1,000-lead page against 13-16 ms for
the plain reader (docs/benchmarks.md).

xml2arrow reads what it was told about and skips the rest; it does not prove the answer well
formed either. So the reader accepts an answer only when it can show that the answer holds
nothing else and is XML: the same plain prolog and root as the plain reader; no comment, CDATA,
instruction, character reference, attribute below the root, forbidden character or "]]>"; valid
UTF-8; nesting checked by xml2arrow (quick-xml); the root closing exactly at the end; and every
tag accounted for: each record, list of sub-records, sub-record and non-empty field is two tags,
so the number of "<" in the content must be exactly that. A field never seen before, an empty
element, anything unusual breaks the count or a check, and the answer goes to the plain reader
(which teaches this one the new names) or the element reader, as before. Whatever it reads, it
reads like them; tests/connectors/test_leadexec_readers.py holds it to that.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc
import xml2arrow

from leadferry.connectors.plain_xml import PlainColumns, root_element

_RECORDS, _CHILDREN, _OWNER = "records", "children", "<record>"
_SPACE = b" \t\n"
# What the content of a plain answer never holds: control characters XML forbids (CR too: the
# other readers see the line ends XML makes of it), U+FFFE and U+FFFF, "]]>" in text, empty
# elements (so that every element is two tags, which the count of tags relies on: comments,
# instructions and CDATA then show up there too), and anything but white space after a tag's
# name (attributes, or worse). Text never holds a "<", so every "<" starts a tag.
_NEVER = "[\x00-\x08\x0b-\x1f]|[\ufffe\uffff]|]]>|/>|<[^>\\s]*\\s+[^>\\s]"
_ENTITY = "&(?:amp|lt|gt|quot|apos);"
_NO_CHILDREN = pa.record_batch({_OWNER: pa.array([], pa.uint32())})


class KnownFieldsReader:
    """Reads answers of *root* > *record* > fields and *children* > *child* > fields, once told
    the field names; shared by a run's page threads."""

    def __init__(self, root: str, record: str, children: str, child: str) -> None:
        self.root, self.record, self.children, self.child = root, record, children, child
        self._closing = f"</{root}>".encode()
        self._record_fields: tuple[str, ...] = ()
        self._child_fields: tuple[str, ...] = ()
        self._parser: xml2arrow.XmlToArrowParser | None = None
        self._lock = threading.Lock()

    def learn(self, record_fields: Iterable[str], child_fields: Iterable[str]) -> None:
        """Add field names another reader found; the parser is rebuilt when any is new."""
        with self._lock:
            records = _merged(self._record_fields, record_fields)
            children = _merged(self._child_fields, child_fields)
            if (records, children) != (self._record_fields, self._child_fields):
                self._record_fields, self._child_fields = records, children
                self._parser = self._compile(records, children)

    def read(self, body: bytes) -> PlainColumns | None:
        """The answer's text columns, or None when it is not provably made of known fields."""
        parser = self._parser
        if parser is None:
            return None
        head = root_element(body, self.root)
        if head is None:
            return None
        element, start = head
        content = start - 1  # the "<" of the root's first child
        if not self._only_known_markup(body, content):
            return None
        try:
            tables = parser.parse(body)
        except Exception:  # xml2arrow's errors (and one TypeError) all mean: not for us
            return None
        records = tables[_RECORDS]
        # A table without known fields is left out: then no sub-record may be in the answer.
        children = tables.get(_CHILDREN, _NO_CHILDREN)
        owners = children.column(_OWNER)
        values = [*records.columns, *children.columns[1:]]
        tags = 1 + 2 * (
            records.num_rows
            + len(pc.unique(owners))
            + children.num_rows
            + sum(len(column) - column.null_count for column in values)
        )
        if body.count(b"<", content) != tags:
            return None  # something unknown, empty or repeated: not ours to read
        return PlainColumns(
            element,
            _present(records),
            records.num_rows,
            _present(children.drop_columns([_OWNER])),
            children.num_rows,
            owners.cast(pa.int32()),
        )

    def _only_known_markup(self, body: bytes, content: int) -> bool:
        """The checks xml2arrow does not make (see the module's text)."""
        end = len(body) - len(self._closing)
        while end > content and body[end + len(self._closing) - 1] in _SPACE:
            end -= 1
        if body[end : end + len(self._closing)] != self._closing:
            return False
        text = _as_text(body, content)
        if text is None:
            return False
        # One pass of RE2 (without the GIL) for what plain XML never holds, then the entities.
        if pc.match_substring_regex(text, _NEVER)[0].as_py():
            return False
        ampersands = pc.count_substring_regex(text, "&")[0].as_py()
        return not ampersands or ampersands == pc.count_substring_regex(text, _ENTITY)[0].as_py()

    def _compile(
        self, records: tuple[str, ...], children: tuple[str, ...]
    ) -> xml2arrow.XmlToArrowParser:
        record_path = f"/{self.root}/{self.record}"
        child_path = f"{record_path}/{self.children}"
        config = {
            "parser_options": {"trim_text": False},
            "tables": [
                {
                    "name": _RECORDS,
                    "xml_path": f"/{self.root}",
                    "levels": [],
                    "fields": [_text_field(name, f"{record_path}/{name}") for name in records],
                },
                {
                    "name": _CHILDREN,
                    "xml_path": child_path,
                    "levels": [_OWNER[1:-1]],
                    "fields": [
                        _text_field(name, f"{child_path}/{self.child}/{name}") for name in children
                    ],
                },
            ],
        }
        # xml2arrow reads its configuration from a file (YAML, of which JSON is a part).
        handle, path = tempfile.mkstemp(suffix=".yaml", prefix="leadferry-xml-")
        try:
            with os.fdopen(handle, "w") as file:
                json.dump(config, file)
            return xml2arrow.XmlToArrowParser(path)
        finally:
            os.unlink(path)


def _merged(known: tuple[str, ...], found: Iterable[str]) -> tuple[str, ...]:
    return known + tuple(name for name in dict.fromkeys(found) if name not in known)


def _text_field(name: str, path: str) -> dict[str, object]:
    return {"name": name, "xml_path": path, "data_type": "Utf8", "nullable": True}


def _present(batch: pa.RecordBatch) -> dict[str, pa.Array]:
    """The columns that have a value in this answer, like the other readers give them."""
    return {
        name: column
        for name, column in zip(batch.schema.names, batch.columns, strict=True)
        if column.null_count < len(column)
    }


def _as_text(body: bytes, start: int) -> pa.StringArray | None:
    """*body* from *start* on as one Arrow string (no copy), or None when it is not all UTF-8
    (xml2arrow checks only the text it keeps; libxml2 read the root's tag)."""
    offsets = pa.array([start, len(body)], pa.int32()).buffers()[1]
    text = pa.StringArray.from_buffers(1, offsets, pa.py_buffer(body))
    try:
        text.validate(full=True)
    except pa.ArrowInvalid:
        return None
    return text
