"""Alerts: the pure decisions, and delivery to a real local webhook receiver and SMTP server."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email
import email.policy
import json
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from fastapi import FastAPI, Request, Response

from leadferry import alerts
from leadferry.alerts import (
    Alert,
    AlertTargets,
    deliver,
    failing_alert,
    recovered_alert,
    stale_alert,
    zero_rows_alert,
)
from leadferry.settings import Settings
from leadferry.store.records import Run
from tests.conftest import NOW, Vendors

# Webhooks are posted with their own short timeout; the in-process client has no network to
# time out, and starlette says so with a warning.
pytestmark = pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument")
SECRET = "tok-9f2e-SECRET"
SMTP_PASSWORD = "smtp-pa55-SECRET"
DAY = dt.timedelta(days=1)


def run(id: int, rows: int | None = 10, *, status: str = "success", days_ago: float = 0) -> Run:
    """A finished run of ``acme_leads``; ``days_ago`` orders runs in time."""
    started = NOW - dt.timedelta(days=days_ago)
    return Run(
        id=id,
        dataset="acme_leads",
        trigger="scheduled",
        status=status,
        window_start=started - DAY,
        window_end=started,
        started_at=started,
        finished_at=started + dt.timedelta(minutes=1),
        rows={"leads": rows} if rows is not None else {},
        error=None if status == "success" else "RetryableAPIError: GET /leads: 503\nmore",
        load_id=None,
        schema_changes=[],
        pid=None,
        host=None,
    )


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def alert() -> Alert:
    return failing_alert("acme_leads", run(7, 0, status="failed"), attempts=3, now=NOW)


# -- decisions ------------------------------------------------------------------------------------


def test_zero_rows_after_runs_with_rows_is_an_alert():
    previous = [run(3, 40, days_ago=3), run(5, 12, days_ago=1), run(4, 9, days_ago=2)]
    found = zero_rows_alert("acme_leads", run(6, 0), previous, NOW)
    assert found is not None
    assert found.kind == "zero_rows"
    assert found.at == NOW
    assert found.details["run_id"] == 6
    assert found.details["rows"] == 0
    assert found.details["previous_rows"] == [12, 9, 40]  # newest first
    assert found.details["window_end"] == NOW.isoformat()
    assert "0 rows" in found.message
    assert "\n" not in found.message


def test_zero_rows_after_zero_rows_is_no_alert():
    previous = [run(5, 0, days_ago=1), run(4, 30, days_ago=2), run(3, 30, days_ago=3)]
    assert zero_rows_alert("acme_leads", run(6, 0), previous, NOW) is None


def test_zero_rows_compares_only_the_last_successful_runs():
    previous = [
        run(5, 8, days_ago=1),
        run(4, None, status="failed", days_ago=1.5),  # failures do not count
        run(3, 8, days_ago=2),
        run(2, 8, days_ago=3),
        run(1, 0, days_ago=4),  # older than the lookback of 3
    ]
    assert zero_rows_alert("acme_leads", run(6, 0), previous, NOW) is not None
    assert zero_rows_alert("acme_leads", run(6, 0), previous, NOW, lookback=4) is None


@pytest.mark.parametrize(
    ("latest", "previous"),
    [
        (run(6, 0), []),  # nothing to compare with
        (run(6, 0), [run(5, None, status="failed", days_ago=1)]),
        (run(6, 3), [run(5, 8, days_ago=1)]),  # rows arrived
        (run(6, None, status="failed"), [run(5, 8, days_ago=1)]),  # a failure is not 0 rows
    ],
)
def test_no_zero_rows_alert_without_a_change(latest, previous):
    assert zero_rows_alert("acme_leads", latest, previous, NOW) is None


def test_a_dataset_that_never_ran_goes_stale_from_its_creation():
    created = NOW - dt.timedelta(days=3, hours=2)
    found = stale_alert("acme_leads", None, created, stale_after=2 * DAY, now=NOW)
    assert found is not None
    assert found.kind == "stale"
    assert found.details["last_success"] is None
    assert found.details["created_at"] == created.isoformat()
    assert found.details["age_seconds"] == int((NOW - created).total_seconds())
    assert "3 days 2 hours" in found.message
    assert "never succeeded" in found.message


def test_a_dataset_goes_stale_after_its_last_success():
    created = NOW - 30 * DAY
    last = NOW - dt.timedelta(hours=26)
    found = stale_alert("acme_leads", last, created, stale_after=DAY, now=NOW)
    assert found is not None
    assert found.details["last_success"] == last.isoformat()
    assert found.details["stale_after_seconds"] == 86_400
    assert "1 day 2 hours" in found.message


@pytest.mark.parametrize("hours", [1, 24])
def test_a_dataset_is_not_stale_within_the_period(hours):
    last = NOW - dt.timedelta(hours=hours)
    assert stale_alert("acme_leads", last, NOW - 30 * DAY, stale_after=DAY, now=NOW) is None
    created = NOW - dt.timedelta(hours=hours)
    assert stale_alert("acme_leads", None, created, stale_after=DAY, now=NOW) is None


def test_a_failing_alert_is_one_line_with_the_attempts(alert):
    assert alert.kind == "failing"
    assert alert.message == (
        "dataset acme_leads failed after 3 attempts: RetryableAPIError: GET /leads: 503 more"
    )
    assert alert.details["attempts"] == 3
    assert alert.details["status"] == "failed"
    assert alert.subject == "[leadferry] dataset acme_leads is failing"


def test_a_recovered_alert_names_the_run_and_the_trouble():
    since = NOW - DAY
    found = recovered_alert("acme_leads", run(8, 1_200), NOW, since=since)
    assert found.kind == "recovered"
    assert found.message.startswith("dataset acme_leads is working again: run 8 loaded 1,200 rows")
    assert found.details["since"] == since.isoformat()


def test_the_webhook_body_is_plain_json(alert):
    body = alert.as_json()
    assert json.loads(json.dumps(body)) == body
    assert body["event"] == "leadferry.alert"
    assert (body["kind"], body["dataset"], body["at"]) == ("failing", "acme_leads", NOW.isoformat())
    assert body["details"]["run_id"] == 7


def test_an_alert_needs_an_aware_time():
    with pytest.raises(ValueError, match="naive"):
        Alert("stale", "acme_leads", "m", dt.datetime(2026, 1, 1))  # noqa: DTZ001


# -- webhook --------------------------------------------------------------------------------------


@dataclass
class Receiver:
    """A webhook receiver: answers the given statuses in turn (then 200), keeps what it got."""

    statuses: list[int] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            self.received.append(
                {
                    "json": await request.json(),
                    "query": dict(request.query_params),
                    "content_type": request.headers["content-type"],
                }
            )
            return Response(status_code=self.statuses.pop(0) if self.statuses else 200)

        return app


@contextlib.contextmanager
def hooks(receiver: Receiver) -> Iterator[tuple[str, httpx2.Client]]:
    """The receiver's base URL (http://hooks.test), and a client that reaches it in-process."""
    vendors = Vendors()
    url = vendors.add("hooks.test", receiver.app())
    with contextlib.closing(vendors.client()) as client:
        yield url, client


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(home=tmp_path / "home")


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    """Retries go at once: these tests count attempts, the pause between them is not theirs."""
    monkeypatch.setattr(alerts, "WEBHOOK_BACKOFF", 0)


def test_the_webhook_receives_the_alert_as_json(alert, settings):
    receiver = Receiver()
    with hooks(receiver) as (url, client):
        problems = deliver(
            alert, AlertTargets(webhook=f"{url}/hook?token={SECRET}"), settings, client
        )
    assert problems == []
    [got] = receiver.received
    assert got["content_type"] == "application/json"
    assert got["query"] == {"token": SECRET}
    assert got["json"] == alert.as_json()


def test_the_webhook_is_retried_after_server_errors(alert, settings):
    receiver = Receiver(statuses=[500, 503])
    with hooks(receiver) as (url, client):
        assert deliver(alert, AlertTargets(webhook=f"{url}/hook"), settings, client) == []
    assert len(receiver.received) == 3


def test_a_webhook_that_keeps_failing_is_a_problem(alert, settings, caplog):
    receiver = Receiver(statuses=[500, 500, 500])
    with hooks(receiver) as (url, client):
        [problem] = deliver(
            alert, AlertTargets(webhook=f"{url}/hook?token={SECRET}"), settings, client
        )
    assert problem == f"webhook {url}/hook: 500 Internal Server Error after 3 attempts"
    assert len(receiver.received) == 3
    assert SECRET not in caplog.text


def test_a_webhook_client_error_is_not_retried(alert, settings):
    receiver = Receiver(statuses=[404])
    with hooks(receiver) as (url, client):
        [problem] = deliver(alert, AlertTargets(webhook=f"{url}/hook"), settings, client)
    assert "404 Not Found (not retried" in problem
    assert len(receiver.received) == 1


def test_a_webhook_that_is_down_is_a_problem_without_its_token(alert, settings, caplog):
    caplog.set_level(logging.DEBUG)
    port = free_port()
    webhook = f"http://ops:hunter2@127.0.0.1:{port}/hook?token={SECRET}"
    [problem] = deliver(alert, AlertTargets(webhook=webhook), settings)
    assert problem.startswith(f"webhook http://127.0.0.1:{port}/hook: ConnectError")
    assert problem.endswith("after 3 attempts")
    assert "not delivered" in caplog.text
    for secret in (SECRET, "hunter2"):
        assert secret not in problem
        assert secret not in caplog.text
        assert secret not in repr(AlertTargets(webhook=webhook))


def test_an_invalid_webhook_url_is_a_problem(alert, settings):
    [problem] = deliver(alert, AlertTargets(webhook=f"ftp://host/hook?token={SECRET}"), settings)
    assert problem == "webhook ftp://host/hook: not a valid http(s) URL; check the alert webhook"


def test_deliver_uses_the_given_client_and_leaves_it_open(alert, settings):
    receiver = Receiver()
    with hooks(receiver) as (url, client):
        assert deliver(alert, AlertTargets(webhook=f"{url}/hook"), settings, client) == []
        assert not client.is_closed
    assert len(receiver.received) == 1


# -- e-mail ---------------------------------------------------------------------------------------


class Inbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@dataclass
class Mailer:
    host: str
    port: int
    inbox: Inbox


def authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.password == SMTP_PASSWORD.encode()
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535


@pytest.fixture
def smtp_server() -> Iterator[Mailer]:
    """A real SMTP server on loopback (login optional, without TLS: it is a test)."""
    inbox = Inbox()
    loop = asyncio.new_event_loop()
    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        loop=loop,
        authenticator=authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield Mailer("127.0.0.1", port, inbox)
    finally:
        controller.stop()
        loop.close()


def test_an_alert_is_e_mailed_to_every_recipient(alert, smtp_server, tmp_path):
    settings = Settings(
        home=tmp_path, smtp_host=smtp_server.host, smtp_port=smtp_server.port, smtp_sender="lf@x.io"
    )
    targets = AlertTargets(emails=["ops@example.com", "ana@example.com"])
    assert deliver(alert, targets, settings) == []
    [envelope] = smtp_server.inbox.envelopes
    assert envelope.mail_from == "lf@x.io"
    assert envelope.rcpt_tos == ["ops@example.com", "ana@example.com"]
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert message["Subject"] == "[leadferry] dataset acme_leads is failing"
    assert message["To"] == "ops@example.com, ana@example.com"
    body = message.get_content().replace("\r\n", "\n")
    assert body.startswith(alert.message + "\n")
    assert "run_id: 7\n" in body
    assert "attempts: 3\n" in body


def test_e_mail_logs_in_with_the_smtp_password(alert, smtp_server, tmp_path):
    settings = Settings(
        home=tmp_path,
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        smtp_user="leadferry",
        smtp_password=SMTP_PASSWORD,
    )
    assert deliver(alert, AlertTargets(emails=["ops@example.com"]), settings) == []
    assert len(smtp_server.inbox.envelopes) == 1


def test_a_rejected_smtp_login_is_a_problem_without_the_password(
    alert, smtp_server, tmp_path, caplog
):
    settings = Settings(
        home=tmp_path,
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        smtp_user="leadferry",
        smtp_password="wrong-" + SMTP_PASSWORD,
    )
    [problem] = deliver(alert, AlertTargets(emails=["ops@example.com"]), settings)
    assert "login as leadferry was rejected" in problem
    assert SMTP_PASSWORD not in problem
    assert SMTP_PASSWORD not in caplog.text
    assert smtp_server.inbox.envelopes == []


def test_an_smtp_server_that_is_down_is_a_problem(alert, tmp_path):
    port = free_port()
    settings = Settings(home=tmp_path, smtp_host="127.0.0.1", smtp_port=port)
    [problem] = deliver(alert, AlertTargets(emails=["ops@example.com"]), settings)
    assert problem.startswith(f"e-mail to ops@example.com via 127.0.0.1:{port}: ")
    assert "ConnectionRefusedError" in problem


def test_e_mail_without_an_smtp_server_is_a_problem(alert, settings):
    [problem] = deliver(alert, AlertTargets(emails=["ops@example.com"]), settings)
    assert "set LEADFERRY_SMTP_HOST" in problem


def test_the_default_targets_come_from_settings(alert, smtp_server, tmp_path, monkeypatch):
    receiver = Receiver(statuses=[410])
    with hooks(receiver) as (url, client):
        monkeypatch.setenv("LEADFERRY_ALERT_WEBHOOK", f"{url}/hook?token={SECRET}")
        monkeypatch.setenv("LEADFERRY_ALERT_EMAIL", '["ops@example.com"]')
        monkeypatch.setenv("LEADFERRY_SMTP_HOST", smtp_server.host)
        monkeypatch.setenv("LEADFERRY_SMTP_PORT", str(smtp_server.port))
        settings = Settings(home=tmp_path)
        targets = AlertTargets.from_settings(settings)
        assert AlertTargets.from_settings(settings, emails=[]).emails == []
        problems = deliver(alert, targets, settings, client)
    # the e-mail still goes out when the webhook fails
    assert problems == [f"webhook {url}/hook: 410 Gone (not retried; check the webhook URL)"]
    assert smtp_server.inbox.envelopes[0].rcpt_tos == ["ops@example.com"]
    assert not AlertTargets()
