"""The scrubber: every spelling of any secret is masked, in any text; log records too."""

from __future__ import annotations

import json
import logging

from hypothesis import given
from hypothesis import strategies as st

from leadferry.scrub import MASK, SECRETS, SHORTEST_SECRET, Scrubber, scrub_record
from tests.fake_vendors import CANARY, spellings

# Any text but lone surrogates (no encoder can write them); no "*", which the mask is made of.
secrets = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="*"),
    min_size=SHORTEST_SECRET,
)
texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@given(secret=secrets)
def test_every_spelling_of_a_secret_is_masked_whole(secret: str) -> None:
    scrubber = Scrubber([secret])
    for spelled in spellings(secret):
        assert scrubber(spelled) == MASK, spelled


@given(secret=secrets, before=texts, after=texts)
def test_no_spelling_survives_in_surrounding_text(secret: str, before: str, after: str) -> None:
    scrubber = Scrubber([secret])
    for spelled in spellings(secret):
        cleaned = scrubber(before + spelled + after)
        assert MASK in cleaned
        assert not any(other in cleaned for other in spellings(secret)), (spelled, cleaned)


@given(secret=secrets, text=texts)
def test_text_without_the_secret_is_left_alone(secret: str, text: str) -> None:
    if any(spelled.lower() in text.lower() for spelled in spellings(secret)):
        return
    assert Scrubber([secret])(text) == text


@given(secret=secrets)
def test_mixed_spellings_are_masked(secret: str) -> None:
    """A URL percent-encoded by one library, then JSON-escaped in a vendor's answer."""
    from urllib.parse import quote

    spelled = json.dumps(quote(secret, safe="/"))[1:-1]
    assert Scrubber([secret])(spelled) == MASK


def test_the_issue_canary_in_a_vendor_answer() -> None:
    answer = (
        "Bad request GET https://api.example/?key=KEY-canary%2B%2F%3D123456&lid=1 "
        '{"url": "https:\\/\\/api.example\\/?key=KEY-canary%2b%2f%3d123456"} '
        "<url>https://api.example/?key=KEY-canary%2B%2F%3D123456&amp;lid=1</url> "
        "form: key=KEY-canary%2B%2F%3D123456 clear: KEY-canary+/=123456"
    )
    cleaned = Scrubber([CANARY])(answer)
    assert cleaned.count(MASK) == 5
    assert "canary" not in cleaned


def test_a_longer_secret_containing_a_shorter_one_is_masked_whole() -> None:
    assert Scrubber(["abcd", "xxabcdxx"])("[xxabcdxx]") == f"[{MASK}]"


def test_empty_and_very_short_values_are_not_masked() -> None:
    scrubber = Scrubber(["", None, "k", "abc"])
    assert not scrubber
    assert scrubber("anything") == "anything"


def test_log_records_are_scrubbed_whatever_logs_them(caplog) -> None:
    SECRETS.add(CANARY)
    logger = logging.getLogger("some.library")
    with caplog.at_level(logging.INFO, logger="some.library"):
        logger.info("GET %s gave %d", "https://x/?key=KEY-canary%2B%2F%3D123456", 400)
        logger.info({"mapping": CANARY})
        try:
            raise ValueError(f"vendor said {CANARY}")
        except ValueError:
            logger.exception("failed for %(who)s", {"who": CANARY})
    text = caplog.text
    assert "canary" not in text
    assert "GET https://x/?key=**** gave 400" in text
    assert "ValueError: vendor said ****" in text


def test_a_record_made_elsewhere_can_be_scrubbed_in_place() -> None:
    SECRETS.add(CANARY)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "key %s", (CANARY,), None)
    record.stack_info = f"frame with {CANARY}"
    scrub_record(record)
    assert record.getMessage() == "key ****"
    assert record.stack_info == "frame with ****"
