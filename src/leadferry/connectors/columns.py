"""Rows of text in, typed Arrow batches out.

Vendors send text (XML elements, JSON strings). A :class:`BatchBuilder` gathers one page of rows
column by column, then types each column in one vectorised pass: declared columns get their
declared type, the others (LeadExec's per-account lead fields) get the narrowest type that fits
every value of the first page they appear in. Later pages reuse that type, so a column keeps one
type for the whole run. A later value that does not fit keeps its page's column as text, so the
loader records it beside the typed one instead of dropping it.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

import pyarrow as pa
import pyarrow.compute as pc

from leadferry.connectors.base import Table
from leadferry.errors import FatalAPIError

logger = logging.getLogger(__name__)

TIMESTAMP = pa.timestamp("us", tz="UTC")
MONEY = pa.decimal128(18, 4)

# Tried in order; the first that parses a value wins.
_TIMESTAMP_FORMATS = (
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
    "%m-%d-%Y %H:%M:%S",
    "%m-%d-%Y",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d",
)
_PATTERNS = {
    # LeadExec's Boolean fields say true/false, its YesNo fields Yes/No: both are booleans.
    "bool": r"^(?i:true|false|yes|no)$",
    "int": r"^-?(0|[1-9][0-9]{0,17})$",
    "float": r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$",
    "timestamp": r"^([0-9]{1,2}[/-][0-9]{1,2}[/-][0-9]{4}|[0-9]{4}-[0-9]{2}-[0-9]{2})"
    r"([ T][0-9]{1,2}:[0-9]{2}(:[0-9]{2})?( ?[AaPp][Mm])?)?$",
}
# The words a boolean may be written with, lower-cased; the first two mean true.
_BOOLEAN_WORDS = pa.array(["true", "yes", "false", "no"])
_OFFSET = r"(Z|[+-][0-9]{2}:?[0-9]{2})$"
_OFFSET_AT_END = re.compile(_OFFSET)
# Digits that are identifiers, not numbers: leading zeros and formatting must survive.
_TEXT_NAMES = re.compile(r"phone|zip|postal|ssn|fax|mobile|cell|account|routing|pin", re.I)


@lru_cache(maxsize=4096)
def column_name(vendor_name: str) -> str:
    """The warehouse name of a vendor field: dlt's snake_case (``DateAdded`` -> ``date_added``)."""
    from dlt.common.normalizers.naming.snake_case import NamingConvention

    return str(NamingConvention().normalize_identifier(vendor_name))


def _all(mask: pa.Array) -> bool:
    """True when every value is true; an empty column fits every type."""
    return bool(pc.all(mask, min_count=0).as_py())


class ColumnNames(dict[str, str]):
    """:func:`column_name` as a dict, for the hot path: one lookup per value, computed once."""

    def __missing__(self, vendor_name: str) -> str:
        name = self[vendor_name] = column_name(vendor_name)
        return name


class ColumnTypes:
    """The type each undeclared column got when first seen in a run; shared by page threads.

    Columns also keep the order they were first seen in, so every page of a run lists them the
    same way whatever order its records spell them in (the loader then takes pages as they are).
    """

    def __init__(self) -> None:
        self._types: dict[tuple[str, str], pa.DataType] = {}
        self._lock = threading.Lock()

    def decide(self, table: str, column: str, values: pa.Array) -> pa.DataType:
        with self._lock:
            key = (table, column)
            if key not in self._types:
                self._types[key] = infer_type(column, values)
            return self._types[key]

    def in_order(self, table: str, columns: Iterable[str]) -> list[str]:
        """*columns* (all decided already) in the order they were first seen."""
        with self._lock:
            rank = {key: place for place, key in enumerate(self._types)}
        return sorted(columns, key=lambda column: rank[table, column])


def infer_type(column: str, values: pa.Array) -> pa.DataType:
    """The narrowest type that fits every non-null value of a text column."""
    present = pc.drop_null(values)
    if len(present) == 0 or _TEXT_NAMES.search(column):
        return pa.string()
    for kind, data_type in (
        ("bool", pa.bool_()),
        ("int", pa.int64()),
        ("float", pa.float64()),
        ("timestamp", TIMESTAMP),
    ):
        if _all(pc.match_substring_regex(present, _PATTERNS[kind])):
            return data_type
    return pa.string()


VARIANT_SUFFIX = "__v_text"
"""A column's values that do not fit its type keep their text in ``<column>__v_text`` (dlt's
name for a variant column), so a stray value never fails a load and is never dropped."""
_KINDS = {pa.bool_(): "bool", pa.int64(): "int", pa.float64(): "float", TIMESTAMP: "timestamp"}


def split_misfits(
    values: pa.Array, data_type: pa.DataType, timezone: str
) -> tuple[pa.Array, pa.Array]:
    """(*values* as *data_type* where they fit, else null; the text of those that do not)."""
    kind = _KINDS.get(data_type)
    none = pa.scalar(None, pa.string())
    if kind is not None:
        fits = pc.fill_null(pc.match_substring_regex(values, _PATTERNS[kind]), True)
        try:
            typed = to_type(pc.if_else(fits, values, none), data_type, timezone)
            return typed, pc.if_else(fits, none, values)
        except ValueError:
            pass  # the pattern let through what the type refuses: keep it all as text
    return pa.nulls(len(values), data_type), values


def to_type(values: pa.Array, data_type: pa.DataType, timezone: str) -> pa.Array:
    """Convert a text column to *data_type*; raise ValueError when a value does not fit.

    Naive timestamps are read in *timezone* (the vendor's clock) and stored as UTC.
    """
    if pa.types.is_string(data_type):
        return values
    try:
        if pa.types.is_boolean(data_type):
            word = pc.index_in(pc.utf8_lower(values), value_set=_BOOLEAN_WORDS)
            if word.null_count != values.null_count:
                raise ValueError("not a boolean")
            return pc.less(word, 2)
        if pa.types.is_timestamp(data_type):
            return _to_timestamp(values, timezone)
        return pc.cast(pc.utf8_trim_whitespace(values), data_type)
    except pa.ArrowInvalid as exc:
        raise ValueError(str(exc)) from None


def _to_timestamp(values: pa.Array, timezone: str) -> pa.Array:
    # Few kernels per column: null counts, not masks, tell whether every value was read.
    if _has_offsets(values):
        return pc.cast(values, pa.timestamp("ns", tz="UTC")).cast(TIMESTAMP, safe=False)
    parsed: pa.Array | None = None
    for fmt in _TIMESTAMP_FORMATS:
        attempt = pc.strptime(values, format=fmt, unit="us", error_is_null=True)
        parsed = attempt if parsed is None else pc.coalesce(parsed, attempt)
        if parsed.null_count == values.null_count:
            break
    else:
        raise ValueError("not a date and time")
    local = pc.assume_timezone(parsed, timezone, ambiguous="earliest", nonexistent="earliest")
    return local.cast(TIMESTAMP)


def _has_offsets(values: pa.Array) -> bool:
    """True when every value ends with a UTC offset (``Z``, ``+02:00``); an empty column too."""
    present = values if values.null_count == 0 else pc.drop_null(values)
    if len(present) and not _OFFSET_AT_END.search(present[0].as_py()):
        return False  # the first value settles it without a pass over the column
    return _all(pc.match_substring_regex(present, _OFFSET))


class BatchBuilder:
    """Gathers rows of one table column by column, then builds one typed record batch."""

    def __init__(self, table: Table, types: ColumnTypes, timezone: str) -> None:
        self.table = table
        self.types = types
        self.timezone = timezone
        self.columns: dict[str, list[str | None]] = {}
        self.arrays: dict[str, pa.Array] = {}
        self.rows = 0

    def add(self, row: Mapping[str, str | None]) -> None:
        """Add one row of text values, keyed by warehouse column name."""
        rows = self.rows
        columns = self.columns
        for name, value in row.items():
            column = columns.get(name)
            if column is None:
                column = columns[name] = [None] * rows
            elif len(column) < rows:
                column.extend([None] * (rows - len(column)))
            column.append(value)
        self.rows = rows + 1

    def add_rows(self, rows: Sequence[Mapping[str, str | None]]) -> None:
        """Add many rows at once, column by column: the fast way to add a page.

        Same result as :meth:`add` for each row in turn: columns appear in first-seen order.
        """
        if not rows:
            return
        seen: dict[str, str | None] = {}
        for row in rows:
            seen.update(row)
        # Merged into a template, every row lists its values in the same order: transpose them.
        template = dict.fromkeys(seen)
        transposed = zip(*[(template | row).values() for row in rows], strict=True)
        before = self.rows
        for name, values in zip(seen, transposed, strict=True):
            column = self.columns.setdefault(name, [])
            if len(column) < before:
                column.extend([None] * (before - len(column)))
            column.extend(values)
        self.rows = before + len(rows)

    def add_column(self, name: str, values: list[str | None]) -> None:
        """Add a whole column at once (values for every row added so far)."""
        self.columns[name] = values

    def add_arrays(self, arrays: Mapping[str, pa.Array], rows: int) -> None:
        """Fill an empty builder with whole Arrow text columns of *rows* values each."""
        if self.rows or self.columns or self.arrays:
            raise ValueError("add_arrays fills an empty builder")
        self.arrays = dict(arrays)
        self.rows = rows

    def build(self) -> pa.RecordBatch:
        declared = self.table.columns
        texts = {name: self._text(name) for name in [*declared, *self.arrays, *self.columns]}
        undeclared = {
            name: self.types.decide(self.table.name, name, text)
            for name, text in texts.items()
            if name not in declared
        }
        arrays: list[pa.Array] = []
        names: list[str] = []
        for name, data_type in declared.items():
            try:
                arrays.append(to_type(texts[name], data_type, self.timezone))
            except ValueError as exc:
                raise FatalAPIError(
                    f"{self.table.name}.{name}: a value is not a {data_type}: {exc}"
                ) from None
            names.append(name)
        for name in self.types.in_order(self.table.name, undeclared):
            text, data_type = texts[name], undeclared[name]
            try:
                arrays.append(to_type(text, data_type, self.timezone))
                names.append(name)
            except ValueError:
                typed, misfits = split_misfits(text, data_type, self.timezone)
                logger.warning(
                    "%s.%s: %d values do not fit %s; they go to %s%s",
                    self.table.name,
                    name,
                    len(misfits) - misfits.null_count,
                    data_type,
                    name,
                    VARIANT_SUFFIX,
                )
                arrays += [typed, misfits]
                names += [name, name + VARIANT_SUFFIX]
        return pa.RecordBatch.from_arrays(arrays, names=names)

    def _text(self, name: str) -> pa.Array:
        """Column *name* as Arrow text, nulls where a row has no value."""
        text = self.arrays.get(name)
        if text is not None:
            return text
        raw = self.columns.get(name) or []
        if len(raw) < self.rows:
            raw.extend([None] * (self.rows - len(raw)))
        return pa.array(raw, pa.string())
