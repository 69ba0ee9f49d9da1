"""Alerts: decide when a dataset needs attention, and tell someone.

Kinds: ``failing`` (a run failed after its retries), ``zero_rows`` (0 rows where the runs before
had rows), ``stale`` (no successful run for a chosen period, Manual datasets included) and
``recovered``. The decision helpers are pure: the caller passes run records and ``now`` in;
nothing here reads the store or the clock. :func:`deliver` POSTs JSON to a webhook and/or sends
one e-mail over SMTP, and returns problems as one-line messages instead of raising, so a broken
webhook never stops the scheduler. Webhook URLs may hold tokens: messages and logs show them
without their query string or user info, and never show the SMTP password.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any, Literal, Protocol

import httpx2

from leadferry.connectors.base import scrub_url
from leadferry.settings import Settings

logger = logging.getLogger(__name__)

AlertKind = Literal["failing", "zero_rows", "stale", "recovered"]

ZERO_ROWS_LOOKBACK = 3  # earlier successful runs that must all have had rows
WEBHOOK_TIMEOUT = SMTP_TIMEOUT = 10.0
WEBHOOK_ATTEMPTS = 3
WEBHOOK_BACKOFF = 0.25  # seconds before the second attempt; doubles after that

_SUBJECTS = {
    "failing": "dataset {} is failing",
    "zero_rows": "dataset {} loaded 0 rows",
    "stale": "dataset {} is stale",
    "recovered": "dataset {} recovered",
}


class RunLike(Protocol):
    """What the helpers read from a run; the store's ``Run`` record has all of it."""

    @property
    def id(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def total_rows(self) -> int: ...
    @property
    def started_at(self) -> datetime: ...
    @property
    def finished_at(self) -> datetime | None: ...
    @property
    def error(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Alert:
    """Something a person should know about a dataset, at an aware UTC time."""

    kind: AlertKind
    dataset: str
    message: str
    at: datetime
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in _SUBJECTS or self.at.tzinfo is None:
            raise ValueError(f"unknown kind or naive time: {self.kind!r}, {self.at}")

    @property
    def subject(self) -> str:
        """The e-mail subject, e.g. ``[leadferry] dataset acme_leads is failing``."""
        return "[leadferry] " + _SUBJECTS[self.kind].format(self.dataset)

    def as_json(self) -> dict[str, Any]:
        """The webhook body: plain JSON values only (times as ISO 8601 strings)."""
        return {
            "event": "leadferry.alert",
            "kind": self.kind,
            "dataset": self.dataset,
            "message": self.message,
            "at": _iso(self.at),
            "details": _plain(self.details),
        }

    def as_text(self) -> str:
        """The e-mail body: the message, then one ``key: value`` line per detail."""
        lines = [self.message, "", f"dataset: {self.dataset}", f"kind: {self.kind}"]
        lines.append(f"at: {_iso(self.at)}")
        lines += [f"{key}: {value}" for key, value in _plain(self.details).items()]
        return "\n".join(lines) + "\n"


# -- decisions ------------------------------------------------------------------------------------


def failing_alert(dataset: str, run: RunLike, attempts: int, now: datetime) -> Alert:
    """The alert for a run that failed after *attempts* tries (retries included)."""
    error = _one_line(run.error or "no error recorded")
    tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
    return Alert(
        "failing",
        dataset,
        f"dataset {dataset} failed after {tries}: {error}",
        _utc(now),
        _run_details(run) | {"attempts": attempts},
    )


def recovered_alert(
    dataset: str, run: RunLike, now: datetime, *, since: datetime | None = None
) -> Alert:
    """The alert for a successful *run* after trouble that started at *since* (when known)."""
    message = f"dataset {dataset} is working again: run {run.id} loaded {run.total_rows:,} rows"
    details = _run_details(run)
    if since is not None:
        message += f" (trouble since {_iso(since)})"
        details["since"] = _iso(since)
    return Alert("recovered", dataset, message, _utc(now), details)


def zero_rows_alert(
    dataset: str,
    latest: RunLike,
    previous: Sequence[RunLike],
    now: datetime,
    *,
    lookback: int = ZERO_ROWS_LOOKBACK,
) -> Alert | None:
    """An alert when *latest* succeeded with 0 rows while the runs before it had rows.

    *previous* holds earlier runs in any order; of them, the *lookback* most recent successful
    ones are compared, and every one (at least one) must have loaded rows. Returns None when the
    latest run failed, loaded rows, or 0 rows is nothing new.
    """
    if latest.status != "success" or latest.total_rows != 0:
        return None
    earlier = sorted(
        (run for run in previous if run.status == "success" and run.id != latest.id),
        key=lambda run: run.started_at,
        reverse=True,
    )[: max(lookback, 1)]
    if not earlier or any(run.total_rows == 0 for run in earlier):
        return None
    counts = [run.total_rows for run in earlier]
    listed = ", ".join(f"{n:,}" for n in counts)
    return Alert(
        "zero_rows",
        dataset,
        f"dataset {dataset} loaded 0 rows in run {latest.id}; "
        f"the {len(earlier)} successful run(s) before it loaded {listed}",
        _utc(now),
        _run_details(latest) | {"previous_rows": counts},
    )


def stale_alert(
    dataset: str,
    last_success: datetime | None,
    created_at: datetime,
    stale_after: timedelta,
    now: datetime,
) -> Alert | None:
    """An alert when the dataset has had no successful run for longer than *stale_after*.

    The period counts from the last success or, for a dataset that never succeeded, from its
    creation. Manual datasets go stale like scheduled ones.

    Raises:
        ValueError: *stale_after* is not positive.
    """
    if stale_after <= timedelta(0):
        raise ValueError(f"stale_after must be positive, got {stale_after}")
    since = last_success or created_at
    age = now - since
    if age <= stale_after:
        return None
    last = f"last success {_iso(last_success)}" if last_success else "it never succeeded"
    message = (
        f"dataset {dataset} has had no successful run for {_duration(age)} "
        f"(limit {_duration(stale_after)}; {last})"
    )
    details = {
        "last_success": _iso(last_success) if last_success else None,
        "created_at": _iso(created_at),
        "stale_after_seconds": int(stale_after.total_seconds()),
        "age_seconds": int(age.total_seconds()),
    }
    return Alert("stale", dataset, message, _utc(now), details)


# -- delivery -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertTargets:
    """Where a dataset's alerts go: a webhook URL and/or e-mail addresses."""

    webhook: str | None = None
    emails: list[str] = field(default_factory=list)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, webhook: str | None = None, emails: Sequence[str] | None = None
    ) -> AlertTargets:
        """A dataset's own targets, each falling back to the defaults in *settings* when unset."""
        return cls(
            webhook=webhook or settings.alert_webhook,
            emails=list(settings.alert_email if emails is None else emails),
        )

    def __bool__(self) -> bool:
        return bool(self.webhook or self.emails)

    def __repr__(self) -> str:  # the webhook URL may hold a token
        shown = _shown_url(self.webhook) if self.webhook else None
        return f"AlertTargets(webhook={shown!r}, emails={self.emails!r})"


def deliver(
    alert: Alert,
    targets: AlertTargets,
    settings: Settings,
    client: httpx2.Client | None = None,
) -> list[str]:
    """Send *alert* to the webhook and/or e-mail addresses in *targets*; never raises for them.

    The webhook gets :meth:`Alert.as_json` through *client* (a short-lived one when None);
    connection errors, timeouts, 429 and 5xx are retried with a short backoff, other answers are
    not. All addresses get one e-mail through the SMTP server in ``settings.smtp_*``.

    Returns:
        One line per target not reached, safe to show (no token, no password); each is also
        logged as a warning.
    """
    problems: list[str] = []
    if targets.webhook:
        problems += _post_webhook(alert, targets.webhook, client)
    if targets.emails:
        problems += _send_email(alert, targets.emails, settings)
    for problem in problems:
        logger.warning("alert %s for %s not delivered: %s", alert.kind, alert.dataset, problem)
    return problems


def _post_webhook(alert: Alert, url: str, client: httpx2.Client | None) -> list[str]:
    shown = _shown_url(url)
    own = client is None
    http = httpx2.Client(timeout=WEBHOOK_TIMEOUT) if client is None else client
    failure = ""
    try:
        for attempt in range(1, WEBHOOK_ATTEMPTS + 1):
            if attempt > 1:
                time.sleep(WEBHOOK_BACKOFF * 2 ** (attempt - 2))
            try:
                response = http.post(url, json=alert.as_json(), timeout=WEBHOOK_TIMEOUT)
            except (httpx2.InvalidURL, httpx2.UnsupportedProtocol):
                return [f"webhook {shown}: not a valid http(s) URL; check the alert webhook"]
            except httpx2.TransportError as exc:
                failure = _redact(_one_line(f"{type(exc).__name__}: {exc}"), url)
                logger.info("webhook %s, attempt %d: %s", shown, attempt, failure)
                continue
            if response.is_success:
                logger.info("alert %s for %s posted to %s", alert.kind, alert.dataset, shown)
                return []
            failure = f"{response.status_code} {response.reason_phrase}"
            if response.status_code != 429 and response.status_code < 500:
                return [f"webhook {shown}: {failure} (not retried; check the webhook URL)"]
            logger.info("webhook %s, attempt %d: %s", shown, attempt, failure)
        return [f"webhook {shown}: {failure} after {WEBHOOK_ATTEMPTS} attempts"]
    finally:
        if own:
            http.close()


def _send_email(alert: Alert, recipients: Sequence[str], settings: Settings) -> list[str]:
    to = ", ".join(recipients)
    if not settings.smtp_host:
        return [f"e-mail to {to}: no SMTP server configured (set LEADFERRY_SMTP_HOST)"]
    server = f"{settings.smtp_host}:{settings.smtp_port}"
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    sender = settings.smtp_sender
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = alert.subject
    message["Date"] = format_datetime(_utc(alert.at))
    # An explicit domain: make_msgid() would otherwise look up this host's FQDN, which can hang.
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "localhost")
    message.set_content(alert.as_text())
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_user:
                smtp.login(settings.smtp_user, password or "")
            refused = smtp.send_message(message, from_addr=sender, to_addrs=list(recipients))
    except smtplib.SMTPAuthenticationError:
        return [
            f"e-mail to {to} via {server}: login as {settings.smtp_user} was rejected "
            "(check LEADFERRY_SMTP_USER and LEADFERRY_SMTP_PASSWORD)"
        ]
    except OSError as exc:  # smtplib.SMTPException, refused connections, timeouts, TLS errors
        failure = _redact(_one_line(f"{type(exc).__name__}: {exc}"), password)
        return [f"e-mail to {to} via {server}: {failure}"]
    logger.info("alert %s for %s e-mailed to %s", alert.kind, alert.dataset, to)
    if refused:
        return [f"e-mail via {server}: recipient(s) refused: {', '.join(sorted(refused))}"]
    return []


# -- helpers --------------------------------------------------------------------------------------


def _run_details(run: RunLike) -> dict[str, Any]:
    """The run's facts for an alert; the window when the record has one (the store's Run does)."""
    details: dict[str, Any] = {
        "run_id": run.id,
        "status": run.status,
        "rows": run.total_rows,
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at) if run.finished_at else None,
        "error": run.error,
    }
    for name in ("window_start", "window_end"):
        value = getattr(run, name, None)
        if value is not None:
            details[name] = _iso(value)
    return details


def _plain(value: Any) -> Any:
    """*value* with datetimes as ISO strings, for JSON and text."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return _iso(value) if isinstance(value, datetime) else value


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"expected a timezone-aware time, got {moment}")
    return moment.astimezone(UTC)


def _iso(moment: datetime) -> str:
    return _utc(moment).isoformat()


def _duration(span: timedelta) -> str:
    """A rough human length: ``3 days 4 hours``, ``5 hours 12 minutes``, ``40 minutes``."""
    minutes = int(span.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [(days, "day"), (hours, "hour")] if days else [(hours, "hour"), (minutes, "minute")]
    words = [f"{n} {unit}{'' if n == 1 else 's'}" for n, unit in parts if n]
    return " ".join(words) or "less than a minute"


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _shown_url(url: str) -> str:
    try:
        return scrub_url(url)
    except httpx2.InvalidURL:
        return "(an invalid URL)"


def _redact(text: str, secret: str | None) -> str:
    """*text* with the raw *secret* (a full webhook URL, a password) masked, just in case."""
    if not secret:
        return text
    return text.replace(secret, _shown_url(secret) if "://" in secret else "***")
