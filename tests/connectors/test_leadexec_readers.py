"""LeadExec's three XML readers: known fields (xml2arrow), plain (Arrow kernels), element (lxml).

The first two prove an answer well-formed themselves; they must never accept what libxml2
rejects, and whatever they read they must read exactly like the element reader. Anything they
step aside from (None) goes to the next reader.
"""

from __future__ import annotations

import functools

import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from starlette.testclient import TestClient

from leadferry.connectors.base import Credentials, RetryPolicy
from leadferry.connectors.leadexec import LeadExecConnector
from leadferry.errors import FatalAPIError, RetryableAPIError
from tests.conftest import API_KEY, examples, leadexec_app

REPORT = LeadExecConnector.report("leads")
NAMES = ["UID", "DateAdded", "Price", "FirstName", "Notes", "Age", "x.y", "a-b", "_u", "Send"]
SEND_NAMES = ["ClientUID", "ClientName", "DateSent", "Price", "Notes"]


UNUSED_CLIENT = httpx2.Client()
"""The readers make no call; one client for all (each new one loads the CA bundle, 0.1 s)."""


def connector() -> LeadExecConnector:
    """A fresh connector: column types are decided by the first page each one reads."""
    return LeadExecConnector(UNUSED_CLIENT, Credentials("acme", {"api_key": API_KEY}))


def well_formed(body: bytes) -> bool:
    try:
        etree.fromstring(body, etree.XMLParser(huge_tree=True))
    except etree.XMLSyntaxError:
        return False
    return True


def texts(builder) -> tuple[int, dict[str, list], list[str]]:
    """A builder's rows, text columns, and the order of its undeclared columns (declared ones
    have their place in every batch)."""
    if builder.arrays:
        columns = {name: values.to_pylist() for name, values in builder.arrays.items()}
    else:
        columns = {
            name: values + [None] * (builder.rows - len(values))
            for name, values in builder.columns.items()
        }
    order = [name for name in columns if name not in builder.table.columns]
    return builder.rows, columns, order


def knowing(fields=NAMES, send_fields=SEND_NAMES) -> LeadExecConnector:
    """A connector whose known-fields reader has been told these field names."""
    reader = connector()
    reader.known.learn(fields, send_fields)
    return reader


@functools.cache
def knowing_every_field() -> LeadExecConnector:
    """One such connector for comparing text columns (compiling xml2arrow's paths takes a
    while); never for typed batches, whose types its earlier reads decided."""
    return knowing()


def refusal_of(read, body: bytes):
    """What *read* makes of *body*, and the one line it refused it with (else None)."""
    try:
        return read(body), None
    except FatalAPIError as exc:
        return None, str(exc)


def check(body: bytes, build: bool = False) -> bool:
    """Compare the readers on *body* (text columns, and typed batches when *build*); True when
    the plain reader read it."""
    plain, plain_refusal = refusal_of(connector()._read_plain, body)
    reader = knowing() if build else knowing_every_field()
    known, known_refusal = refusal_of(reader._read_known, body)
    if not well_formed(body):
        assert (plain, plain_refusal, known, known_refusal) == (None, None, None, None), body
        return False
    tree, tree_refusal = refusal_of(connector()._read_tree, body)
    if tree_refusal is not None:  # a root count that is not a number, say: every reader says so
        assert plain_refusal in (None, tree_refusal)
        assert known_refusal in (None, tree_refusal)
        return False
    assert plain_refusal is None, body
    assert known_refusal is None, body
    # The known-fields reader lists columns in the order it learned them (pages are typed in
    # the run's order anyway); the plain reader in the order the answer has them.
    for answer, compared in ((plain, 3), (known, 2)):
        if answer is None:
            continue
        assert (answer.total, answer.sent) == (tree.total, tree.sent)
        for got, want in ((answer.leads, tree.leads), (answer.sends, tree.sends)):
            assert texts(got)[:compared] == texts(want)[:compared], body
            if build and want.rows:
                assert got.build().equals(want.build())
    return plain is not None


# -- generated answers --------------------------------------------------------------------------

CHARS = st.sampled_from(list("ab Z09.-/:é€😀\t\n&<\"'") + ["]]", ">"])
SPACE = st.sampled_from(["", "", "", "\n", "  ", "\n\t"])


def escaped(chars: list[str], raw_gt: bool) -> str:
    out = []
    for char in chars:
        if char == "&#":
            out.append("&#233;")  # a character reference: the element reader decodes it
        elif char == "&":
            out.append("&amp;")
        elif char == "<":
            out.append("&lt;")
        elif char == ">":
            out.append(">" if raw_gt else "&gt;")
        elif char in "\"'" and raw_gt:
            out.append("&quot;" if char == '"' else "&apos;")
        else:
            out.append(char)
    return "".join(out)


RARELY = st.integers(0, 15).map(lambda n: n == 0)


@st.composite
def fields(draw, names: list[str], most: int, texts_only: bool) -> list[str]:
    """Fields with distinct names, but now and then one twice (the last one counts)."""
    unique = texts_only or not draw(RARELY)
    chosen = draw(st.lists(st.sampled_from(names), max_size=most, unique=unique))
    return [draw(field(name, texts_only)) for name in chosen]


@st.composite
def field(draw, name: str, texts_only: bool) -> str:
    forms = ["text", "text", "text", "open-close", "empty", "empty-space"]
    form = "text" if texts_only else draw(st.sampled_from(forms))
    if form == "open-close":
        return f"<{name}></{name}>"
    if form == "empty":
        return f"<{name}/>"
    if form == "empty-space":
        return f"<{name} />"
    alphabet = CHARS | st.just("&#") if draw(RARELY) else CHARS
    chars = draw(st.lists(alphabet, min_size=int(texts_only), max_size=6))
    value = escaped(chars, draw(RARELY)).replace("]]>", "]]&gt;")
    return f"<{name}>{value}</{name}>"


@st.composite
def lead(draw, texts_only: bool) -> str:
    if not texts_only and draw(st.integers(0, 20)) == 0:
        return "<Lead/>"
    space = draw(SPACE)
    parts = draw(fields(NAMES, 6, texts_only))
    if draw(st.booleans()):
        sends = [
            "<Send>" + space.join(draw(fields(SEND_NAMES, 4, texts_only))) + "</Send>"
            for _ in range(draw(st.integers(int(texts_only), 3)))
        ]
        parts.insert(draw(st.integers(0, len(parts))), "<Sends>" + space.join(sends) + "</Sends>")
    return "<Lead>" + space + space.join(parts) + space + "</Lead>"


@st.composite
def answer(draw, texts_only: bool = False) -> bytes:
    """An answer; with *texts_only*, one of text fields only (what the simulator sends)."""
    leads = draw(st.lists(lead(texts_only), max_size=6))
    space = draw(SPACE)
    declaration = draw(st.sampled_from(["", '<?xml version="1.0" encoding="utf-8"?>\n']))
    sent = len(leads) + draw(st.sampled_from([0, 0, 0, 1]))
    head = f'<Leads querytotal="{sent + 5}" takecount="1000" sentcount="{sent}">'
    tail = draw(st.sampled_from(["", "\n", " \n"]))
    return (declaration + head + space + space.join(leads) + "</Leads>" + tail).encode()


DAMAGE = [
    b"&", b"<", b">", b"<<", b"\x01", b"\x00", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xef\xbf\xbe",
    b"</UID>", b"</Lead>", b"<Lead>", b"<!--c-->", b"<![CDATA[x]]>", b"<?pi x?>", b"&#65;",
    b"&bogus;", b"&amp", b"\r\n", b'<a b="1">', b"]]>", b"<1a>", b"<a:b>", b"</Leads>", b"<Leads>",
    b"<Lead/>", b"<Sends>", b"</Sends>", b"<UID>1</UID>", b" x ", b"<>", b"</>", b"< UID>",
]  # fmt: skip


@st.composite
def damaged(draw, texts_only: bool = False) -> bytes:
    body = draw(answer(texts_only))
    how = draw(st.sampled_from(["cut", "insert", "insert", "delete"]))
    at = draw(st.integers(0, len(body)))
    if how == "cut":
        return body[:at]
    if how == "delete":
        return body[:at] + body[at + draw(st.integers(1, 12)) :]
    return body[:at] + draw(st.sampled_from(DAMAGE)) + body[at:]


FAST = settings(
    max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@FAST
@given(answer())
def test_the_readers_agree_on_well_formed_answers(body):
    check(body)


@FAST
@given(damaged())
def test_the_plain_reader_never_accepts_what_libxml2_rejects(body):
    check(body)


@FAST
@given(answer(texts_only=True))
def test_the_readers_agree_on_answers_of_text_fields(body):
    check(body)


@FAST
@given(damaged(texts_only=True))
def test_the_fast_readers_never_accept_damaged_answers_of_text_fields(body):
    check(body)


def test_plain_answers_are_read_by_the_plain_reader():
    assert check(
        b'<Leads querytotal="2" takecount="1000" sentcount="2"><Lead><UID>1</UID>'
        b"<Notes>a &amp; b &lt;c&gt; &quot;d&apos;\n</Notes><Empty/><None></None>"
        b"<Sends><Send><ClientUID>7</ClientUID></Send><Send/></Sends></Lead>"
        b"<Lead><UID>2</UID><Age>41</Age></Lead></Leads>\n"
    )


@pytest.mark.parametrize(
    "body",
    [
        b"<Lead><UID>1</Uid></Lead></Leads>",
        b"<Lead><UID>1</UID></Leads></Lead>",
        b"<Lead><UID>1<UID></Lead></Leads>",
        b"<Lead><UID>1</UID></Lead></Leads><Lead/>",
        b"<Lead><UID>1</UID></Lead></Leads><",
        b"<Lead><UID>1</UID></Lead></Leads>x",
        b"<Lead><<UID>1</UID></Lead></Leads>",
        b"<Lead><UID>1 & 2</UID></Lead></Leads>",
        b"<Lead><UID>1 &nbsp; 2</UID></Lead></Leads>",
        b"<Lead><UID>1\x02</UID></Lead></Leads>",
        b"<Lead><UID>1\xff</UID></Lead></Leads>",
        b"<Lead><UID>\xef\xbf\xbf</UID></Lead></Leads>",
        b"<Lead><UID>a]]>b</UID></Lead></Leads>",
        b"<Lead><1UID>1</1UID></Lead></Leads>",
        b"<Lead><UID>1</UID></Lead>",
        b"<Lead><UID>1</UID>",
        b"<Lead><UID>1</UI",
    ],
)
def test_malformed_answers_are_left_to_libxml2(body):
    body = b'<Leads querytotal="1" takecount="1000" sentcount="1">' + body
    assert not well_formed(body)
    assert connector()._read_plain(body) is None


@pytest.mark.parametrize(
    "body",
    [
        b"<Lead><UID>&#49;</UID></Lead>",  # a character reference
        b"<Lead><UID>1</UID><Notes>a > b</Notes></Lead>",  # ">" in text
        b"<Lead><UID>1</UID><UID>2</UID></Lead>",  # a field twice: the last one counts
        b"<Lead><UID>1</UID><Notes><!-- c -->x</Notes></Lead>",
        b"<Lead><UID>1</UID><Notes><![CDATA[<x>]]></Notes></Lead>",
        b'<Lead><UID kind="n">1</UID></Lead>',
        b"<Lead><UID>1</UID><Extra><Lead><UID>2</UID></Lead></Extra></Lead>",
        b"<Other/><Lead><UID>1</UID></Lead>",
        "<Lead><UID>1</UID><Prénom>Zoé</Prénom></Lead>".encode(),
    ],
)
def test_unusual_answers_go_to_the_element_reader(body):
    body = b'<Leads querytotal="1" takecount="1000" sentcount="1">' + body + b"</Leads>"
    assert well_formed(body)
    assert connector()._read_plain(body) is None
    assert connector()._read_tree(body).leads.rows >= 1


def test_the_simulators_pages_are_read_by_the_fast_readers_like_the_element_reader():
    _, app = leadexec_app(leads=3_000)
    reader = connector()
    with TestClient(app, base_url="http://leadexec.test") as client:
        for skip in (0, 1000, 2000):
            response = client.get(
                "/", params={"key": API_KEY, "lid": 271, "skip": skip, "take": 1000}
            )
            assert check(response.content, build=True)
            # The first page teaches the known-fields reader, which reads the next ones.
            read = reader._read_known(response.content) or reader._read_plain(response.content)
            want = reader._read_tree(response.content)
            assert read.leads.build().equals(want.leads.build())
            assert read.sends.build().equals(want.sends.build())
    assert reader._read_known(response.content) is not None


def known_fields_answer(leads: bytes) -> bytes:
    return b'<Leads querytotal="1" takecount="1000" sentcount="1">' + leads + b"</Leads>\n"


def test_answers_of_known_fields_are_read_by_the_known_fields_reader():
    body = known_fields_answer(
        b"<Lead><UID>1</UID><Notes>a &amp; b &lt;c&gt; &quot;d&apos; =\n</Notes>"
        b"<Sends><Send><ClientUID>7</ClientUID></Send><Send></Send></Sends></Lead>"
        b"<Lead ><UID >2</UID><Age>41</Age></Lead>"
    )
    assert knowing()._read_known(body) is not None
    check(body, build=True)


@pytest.mark.parametrize(
    "leads",
    [
        b"<Lead><UID>1</UID><Unknown>x</Unknown></Lead>",  # a field not known yet
        b"<Lead><UID>1</UID><Notes/></Lead>",  # an empty element
        b"<Lead><UID>1</UID><Notes></Notes></Lead>",
        b"<Lead/><Lead><UID>1</UID></Lead>",
        b"<Lead><UID>1</UID><Sends></Sends></Lead>",
        b"<Lead><UID>1</UID><UID>2</UID></Lead>",  # a field twice
        b"<Lead><UID>1</UID><Sends><Send/></Sends><Sends><Send/></Sends></Lead>",
        b"<Lead><UID>1</UID><Notes><!-- c -->x</Notes></Lead>",
        b"<Lead><UID>1</UID><Notes><![CDATA[<x>]]></Notes></Lead>",
        b"<Lead><UID>1</UID><?pi x?></Lead>",
        b"<Lead><UID>&#49;</UID></Lead>",  # a character reference
        b'<Lead><UID kind="n">1</UID></Lead>',  # an attribute below the root
        b"<Lead><UID>1</UID><Notes><b>x</b></Notes></Lead>",
        b"<Lead><UID>1</UID></Lead><Other><UID>2</UID></Other>",
        b"<Lead><UID>1</UID><Lead><UID>2</UID></Lead></Lead>",
    ],
)
def test_anything_but_known_fields_goes_to_the_other_readers(leads):
    body = known_fields_answer(leads)
    assert well_formed(body)
    assert knowing()._read_known(body) is None
    check(body)


@pytest.mark.parametrize(
    "body",
    [
        known_fields_answer(b"<Lead><UID>1</UID></Lead>")[:-9] + b"\n",  # cut after a lead
        known_fields_answer(b"<Lead><UID>1</UID></Lead>") + b"x",
        known_fields_answer(b"<Lead><UID>1</UID></Lead>") + b"<Leads></Leads>",
        known_fields_answer(b"<Lead><UID>1\r\n</UID></Lead>"),
        known_fields_answer(b"<Lead><UID>1\x01</UID></Lead>"),
        known_fields_answer("<Lead><UID>1\ufffe</UID></Lead>".encode()),
        known_fields_answer(b"<Lead><UID>1\xff</UID></Lead>"),
        known_fields_answer(b"<Lead><UID>1</UID>\xff</Lead>"),
        known_fields_answer(b'<Lead><UID k="\xff">1</UID></Lead>'),
        known_fields_answer(b"<Lead><UID>a]]>b</UID></Lead>"),
        known_fields_answer(b"<Lead><UID>1 &nbsp; 2</UID></Lead>"),
        known_fields_answer(b"<Lead><UID>1 & 2</UID></Lead>"),
        known_fields_answer(b"<Lead><UID>1</Notes></Lead>"),
        known_fields_answer(b"<Lead><UID x >1</UID></Lead>"),  # an attribute without a value
        known_fields_answer(b"<Lead>< UID>1</UID></Lead>"),
    ],
)
def test_the_known_fields_reader_never_accepts_what_libxml2_rejects(body):
    if b"\r" not in body:  # CR LF is XML, but read as LF: not for this reader
        assert not well_formed(body)
    assert knowing()._read_known(body) is None


def test_a_new_field_is_read_by_the_plain_reader_and_known_from_then_on():
    reader = knowing(["UID"], [])
    body = known_fields_answer(b"<Lead><UID>1</UID><Age>41</Age></Lead>")
    assert reader._read_known(body) is None
    assert reader._read_plain(body) is not None
    answer = reader._read_known(body)
    assert answer is not None
    assert texts(answer.leads)[1] == {"uid": ["1"], "age": ["41"]}


def test_a_cut_answer_is_retryable_with_libxml2s_reason():
    body = b'<Leads querytotal="1" takecount="1000" sentcount="1"><Lead><UID>1</UI'
    client = httpx2.Client(
        transport=httpx2.MockTransport(lambda request: httpx2.Response(200, content=body))
    )
    reader = LeadExecConnector(
        client,
        Credentials("acme", {"api_key": API_KEY, "base_url": "http://leadexec.test/"}),
        retry=RetryPolicy(attempts=2, base_delay=0, max_delay=0),
    )
    with pytest.raises(RetryableAPIError, match="cut short or is not XML.*after 2 attempts"):
        reader.fetch_page(REPORT, {"lid": 1}, None, 0)
