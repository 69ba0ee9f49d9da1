"""Secrets out of everything leadferry shows or writes: one scrubber that knows every spelling.

A secret reaches text in many spellings: in clear; percent-encoded (``%2B`` or ``%2b``, a space
as ``+`` or ``%20``, even twice over as ``%252B``); JSON- or Python-escaped (``\\u002b``,
``\\/``, ``\\x2b``); XML- or HTML-escaped (``&amp;``, ``&#43;``, ``&#x2B;``). Rather than list
whole spellings, the pattern of a secret lets each of its characters take any of them, so that a
mix matches too (a URL percent-encoded by one library, then JSON-escaped by a vendor's error
body).

Every secret the process handles is registered in :data:`SECRETS` (account secrets as they are
decrypted or handed to a connector, tokens a vendor grants); :func:`scrub` masks them all. It
runs at the boundaries: connector errors, the run history, every log record (through the record
factory, so whatever the logger or handler), web pages and API answers, and the CLI's error line.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import Any

MASK = "****"
SHORTEST_SECRET = 4
"""Shorter values are not masked: a 1-3 character secret protects nothing (it is guessed in a
few thousand tries), and masking every "k" or "12" would garble every message."""

_BACKSLASHED = frozenset("/\\\"'")
"""Characters JSON or Python may write with a backslash in front."""
_NAMED = {"&": "amp", "<": "lt", ">": "gt", '"': "quot", "'": "apos"}
_ESCAPE_STARTS = "%+\\&"
"""How a character's spellings other than itself begin."""
_SHORT_ESCAPES = {"\n": "n", "\t": "t", "\r": "r", "\b": "b", "\f": "f"}


def _character(char: str) -> str:
    """A pattern matching *char* in any of its spellings, the longest tried first (so that
    ``&amp;`` is masked whole, not as ``&`` followed by ``amp;``)."""
    code = ord(char)
    spellings = ["".join(f"%(?:25)?{byte:02x}" for byte in char.encode())]
    if char == " ":
        spellings.append(r"\+")
    if code < 0x10000:
        spellings.append(rf"\\u{code:04x}")
    else:
        high, low = divmod(code - 0x10000, 0x400)
        spellings.append(rf"\\u{0xD800 + high:04x}\\u{0xDC00 + low:04x}|\\U{code:08x}")
    if code < 0x100:
        spellings.append(rf"\\x{code:02x}")
    if char in _BACKSLASHED:
        spellings.append(re.escape("\\" + char))
    if char in _SHORT_ESCAPES:
        spellings.append(rf"\\{_SHORT_ESCAPES[char]}")
    spellings += [rf"&#0*{code};", rf"&#x0*{code:x};"]
    if char in _NAMED:
        spellings.append(f"&{_NAMED[char]};")
    spellings.append(re.escape(char))
    return "(?:" + "|".join(spellings) + ")"


def secret_pattern(secret: str) -> str:
    """A regular expression (to compile case-insensitively) matching *secret* in any spelling."""
    return "".join(_character(char) for char in secret)


class Scrubber:
    """Masks a set of secrets, in every spelling, in any text. Safe to share between threads."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._patterns: dict[str, str] = {}
        self._compiled: re.Pattern[str] | None = None
        self._lock = threading.Lock()
        self.add(*secrets)

    def add(self, *secrets: str | None) -> None:
        """Know these secrets too (values shorter than ``SHORTEST_SECRET`` are ignored)."""
        with self._lock:
            for secret in secrets:
                if secret and len(secret) >= SHORTEST_SECRET and secret not in self._patterns:
                    self._patterns[secret] = secret_pattern(secret)
                    self._compiled = None

    def clear(self) -> None:
        """Forget every secret (tests start each case with none, as a new process does)."""
        with self._lock:
            self._patterns.clear()
            self._compiled = None

    def __bool__(self) -> bool:
        return bool(self._patterns)

    def __call__(self, text: str) -> str:
        pattern = self._pattern()
        return text if pattern is None else pattern.sub(MASK, text)

    def _pattern(self) -> re.Pattern[str] | None:
        compiled = self._compiled  # compiled already: no lock needed to read it
        if compiled is not None or not self._patterns:
            return compiled
        with self._lock:
            if self._compiled is None and self._patterns:
                # Longest first: a secret that contains another is masked whole.
                ordered = sorted(self._patterns, key=len, reverse=True)
                # Where no spelling of any first character starts, no secret does: a look at
                # one character skips most of a text (six times faster on JSON answers).
                starts = {secret[0] for secret in ordered} | set(_ESCAPE_STARTS)
                first = "".join(re.escape(char) for char in sorted(starts))
                alternatives = "|".join(self._patterns[secret] for secret in ordered)
                self._compiled = re.compile(f"(?=[{first}])(?:{alternatives})", re.IGNORECASE)
            return self._compiled


SECRETS = Scrubber()
"""Every secret this process has handled."""


def scrub(text: str) -> str:
    """*text* with every secret this process knows masked, in whatever spelling."""
    return SECRETS(text)


def scrub_exception(exc: BaseException) -> BaseException:
    """*exc* with its message scrubbed in place (its type and attributes kept), for re-raising."""
    exc.args = tuple(scrub(arg) if isinstance(arg, str) else arg for arg in exc.args)
    return exc


def _scrub_argument(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value  # keeps %d and %.1f working
    text = str(value)
    cleaned = scrub(text)
    return value if cleaned == text else cleaned


def scrub_record(record: logging.LogRecord) -> None:
    """Mask secrets in a log record's message, arguments, traceback and stack, in place."""
    if not SECRETS:
        return
    record.msg = _scrub_argument(record.msg)
    if isinstance(record.args, tuple):
        record.args = tuple(_scrub_argument(arg) for arg in record.args)
    elif isinstance(record.args, dict):
        record.args = {key: _scrub_argument(arg) for key, arg in record.args.items()}
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = scrub(record.exc_text)
    if record.stack_info:
        record.stack_info = scrub(record.stack_info)


def _install_record_factory() -> None:
    """Scrub every log record as it is made: whatever logger or handler (leadferry's, dlt's,
    httpx2's, uvicorn's, a test's) ends up writing it, it never sees a secret."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "scrubs", False):
        return

    def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        scrub_record(record)
        return record

    make_record.scrubs = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(make_record)


_install_record_factory()
