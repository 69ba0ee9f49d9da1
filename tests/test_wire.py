"""The vendor client's wire (leadferry.run.wire): httpx2's client over urllib3's pool, against a
loopback server that answers as told."""

from __future__ import annotations

import gzip
import http.server
import logging
import socket
import threading
import time
from collections.abc import Iterator

import httpx2
import pytest

from leadferry.run.client import tls_context
from leadferry.run.wire import Urllib3Transport

BODY = b"<answer>" + b"x" * 3_000_000 + b"</answer>"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path.partition("?")[0]
        if path == "/whole":
            self._answer(BODY)
        elif path == "/gzip":
            self._answer(gzip.compress(BODY), ("Content-Encoding", "gzip"))
        elif path == "/cut":
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY[:1000])
            self.close_connection = True
        elif path == "/slow":
            time.sleep(1.0)
            self._answer(b"late")

    def do_POST(self) -> None:  # noqa: N802
        sent = self.rfile.read(int(self.headers["Content-Length"]))
        self._answer(sent + b"|" + ",".join(self.headers.get_all("X-Many")).encode())

    def _answer(self, body: bytes, *header: tuple[str, str]) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Set-Cookie", "a=1")
        self.send_header("Set-Cookie", "b=2")
        for name, value in header:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def client(connections: int = 2, read_timeout: float = 5.0) -> httpx2.Client:
    return httpx2.Client(
        timeout=httpx2.Timeout(read_timeout, connect=2.0),
        transport=Urllib3Transport(tls_context(), connections),
    )


def test_a_body_streams_whole_with_its_headers(server):
    with client() as http, http.stream("GET", f"{server}/whole") as response:
        chunks = list(response.iter_bytes())
        assert response.status_code == 200
        assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
        assert response.http_version == "HTTP/1.1"
    assert b"".join(chunks) == BODY
    assert len(chunks) > 1  # streamed, not read whole first


def test_a_compressed_body_is_decoded_once(server):
    with client() as http:
        assert http.get(f"{server}/gzip").content == BODY


def test_a_post_sends_its_body_and_repeated_headers(server):
    headers = [("X-Many", "one"), ("X-Many", "two")]
    with client() as http:
        answer = http.post(f"{server}/post", content=b"form=1", headers=headers)
    assert answer.content == b"form=1|one,two"


def test_a_body_cut_short_fails_while_reading(server):
    with client() as http, http.stream("GET", f"{server}/cut") as response:
        assert response.status_code == 200
        with pytest.raises(httpx2.RemoteProtocolError):
            response.read()


def test_a_half_read_answer_gives_its_connection_back(server):
    with client(connections=1) as http:
        for _ in range(3):  # with one connection, a place kept by the first would block
            with http.stream("GET", f"{server}/whole") as response:
                next(response.iter_bytes())
        assert http.get(f"{server}/whole").content == BODY


def test_a_refused_connection_and_a_silent_server_are_httpx2s_errors(server):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with client(read_timeout=0.2) as http:
        with pytest.raises(httpx2.ConnectError):
            http.get(f"http://127.0.0.1:{port}/")
        with pytest.raises(httpx2.ReadTimeout):
            http.get(f"{server}/slow")


def test_the_wire_logs_no_url_at_any_level(server, caplog):
    caplog.set_level(logging.DEBUG)
    with client() as http:
        http.get(f"{server}/whole?key=hush-hush")
    # httpx2's own line per request is kept at WARNING by the CLI (cli/root.py).
    wire = [record.getMessage() for record in caplog.records if record.name != "httpx2"]
    assert "hush-hush" not in " ".join(wire)
