"""What every connector declares, and the engine that pages, retries and batches for all of them.

A vendor module subclasses :class:`Connector`, declares its credential fields and reports as class
attributes, and overrides two hooks: :meth:`Connector.page_request` (how to ask for page N) and
:meth:`Connector.read_page` (how to turn an answer into column batches). Paging, bounded
concurrency, retries with backoff, status mapping and scrubbing live here, once.
"""

from __future__ import annotations

import itertools
import logging
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar

import httpx2
import pyarrow as pa

from leadferry.dates import DateWindow
from leadferry.errors import (
    AuthError,
    ConfigError,
    FatalAPIError,
    LeadferryError,
    NotFoundError,
    RetryableAPIError,
)
from leadferry.scrub import SECRETS, scrub, scrub_exception

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CredentialField:
    """One field of an account: what the Credentials pane asks for."""

    id: str
    label: str
    secret: bool = False
    required: bool = True
    default: str | None = None
    advanced: bool = False
    help: str = ""


Choice = tuple[str, str]
"""One value a lookup offers for a parameter, and the label to show it with."""


@dataclass(frozen=True, slots=True)
class Param:
    """One report parameter, as the Details pane shows it.

    ``lookup`` names the connector method that lists the values the vendor offers for it (see
    :meth:`Connector.look_up`), so forms can show a menu; a value outside the menu is still
    accepted. None: the parameter is entered freely.
    """

    id: str
    label: str
    type: type = str
    required: bool = False
    help: str = ""
    lookup: str | None = None

    def parse(self, value: Any) -> Any:
        """Convert a raw (often textual) value to this parameter's type; ConfigError names it."""
        if self.type is int:
            if isinstance(value, bool):
                raise ConfigError(f"parameter {self.id}: expected an integer, got {value!r}")
            try:
                return int(str(value).strip())
            except ValueError:
                raise ConfigError(
                    f"parameter {self.id}: expected an integer, got {value!r}"
                ) from None
        return str(value)


@dataclass(frozen=True, slots=True)
class Table:
    """A table a report loads: declared column types, and how its rows are identified.

    ``parent_key`` names the column that points at the parent table's ``primary_key`` for child
    tables (LeadExec sends point at their lead's ``uid``). ``more_columns`` says the vendor adds
    columns of its own beyond the declared ones (LeadExec's per-lead-type fields), so a column
    name cannot be refused before a run has seen them.
    """

    name: str
    columns: Mapping[str, pa.DataType] = field(default_factory=dict)
    primary_key: tuple[str, ...] = ()
    parent_key: str | None = None
    more_columns: bool = False


@dataclass(frozen=True, slots=True)
class Report:
    """A vendor report: its slug, its tables (the first is the main one) and its parameters."""

    slug: str
    label: str
    tables: tuple[Table, ...]
    params: tuple[Param, ...] = ()
    dated: bool = True
    description: str = ""
    day_column: str | None = None
    """Timestamp (or date) column whose local day decides the partition a row belongs to."""
    max_window_days: int | None = None
    """Longer windows are fetched in parts of this many days (per-day reports use 1)."""
    cursor_column: str | None = None
    """The change timestamp an incremental dataset follows; None: not incremental."""
    window_is_cursor: bool = False
    """Whether the report's window already filters the cursor column (SalesExec's Last Updated
    Leads); otherwise the connector filters it itself from :attr:`Connector.updated_since`."""

    @property
    def main_table(self) -> Table:
        return self.tables[0]

    @property
    def merge_key(self) -> tuple[str, ...]:
        return self.main_table.primary_key

    def param(self, param_id: str) -> Param:
        for param in self.params:
            if param.id == param_id:
                return param
        known = ", ".join(p.id for p in self.params) or "none"
        raise ConfigError(
            f"report {self.slug} has no parameter {param_id!r} (its parameters: {known})"
        )

    def parse_params(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Validate and type *raw* parameters; ConfigError names a missing or unknown one."""
        values = {key: self.param(key).parse(value) for key, value in raw.items()}
        for param in self.params:
            if param.required and param.id not in values:
                raise ConfigError(
                    f"report {self.slug} needs parameter {param.id} ({param.label}): "
                    f"add --param {param.id}=..."
                )
        return values


@dataclass(frozen=True, slots=True)
class TableBatch:
    """Rows for one table, as an Arrow record batch with declared column types."""

    table: str
    batch: pa.RecordBatch


@dataclass(slots=True)
class Page:
    """One answer from the vendor: its batches, and what it says about the total."""

    batches: list[TableBatch]
    rows: int
    total: int | None = None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded in attempts and in total waiting time."""

    attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_total_wait: float = 120.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_delay)
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


@dataclass(frozen=True, slots=True)
class Credentials:
    """An account as a connector sees it: its name (for messages), config and secret values."""

    account: str
    values: Mapping[str, str]

    def __repr__(self) -> str:
        return f"Credentials(account={self.account!r}, fields={sorted(self.values)})"


@dataclass(slots=True)
class FetchProgress:
    """What a fetch has done so far, reported after every page."""

    pages_done: int = 0
    pages_total: int | None = None
    rows: int = 0


ProgressCallback = Callable[[FetchProgress], None]


def scrub_url(url: httpx2.URL | str) -> str:
    """The URL without its query string or user info, safe to show and log."""
    parsed = httpx2.URL(str(url))
    return str(parsed.copy_with(query=None, fragment=None, username=None, password=None))


def check_http_url(url: str, what: str) -> str:
    """*url* if requests can be sent to it: an http(s) URL with a host.

    Raises:
        ConfigError: anything else, naming *what* the URL is for.
    """
    try:
        parsed = httpx2.URL(url)
        usable = parsed.scheme in ("http", "https") and bool(parsed.host)
    except (httpx2.InvalidURL, ValueError, TypeError):
        usable = False
    if not usable:
        raise ConfigError(f"{what} must be an http:// or https:// URL with a host")
    return url


def refuse_cross_host_redirect(response: httpx2.Response) -> None:
    """An HTTP client's response hook: a redirect may stay on its host (or move from http to
    https there), never leave it, as the credentials in the query, headers or body would follow.

    Raises:
        FatalAPIError: the answer redirects to another host, or from https to http.
    """
    if not response.has_redirect_location:
        return
    here = response.request.url
    try:
        there = here.join(response.headers["location"])
    except (httpx2.InvalidURL, ValueError):
        return  # the client refuses a malformed location itself
    downgrade = here.scheme == "https" and there.scheme != "https"
    if (
        there.host != here.host
        or downgrade
        or (there.scheme == here.scheme and there.port != here.port)
    ):
        raise FatalAPIError(
            f"{here.host} redirected {response.request.method} {scrub_url(here)} to "
            f"{scrub_url(there)}: refused, so that the account's credentials are not sent "
            "there; if the vendor has moved, set the account's base URL to its new address"
        )


DATE_LABELS: Mapping[str, str] = MappingProxyType(
    {
        "duration": "Duration",
        "report_date": "Report Date",
        "date": "Select Specific Date",
        "days_back": "Days Back",
        "start_date_type": "Start Date",
        "end_date_type": "End Date",
        "from_date": "Select Specific Start Date",
        "to_date": "Select Specific End Date",
        "from_days_back": "Days Back to Start From",
        "to_days_back": "Days Back to End At",
    }
)
"""The Add DataSet page's date controls, named as the ClickPoint and SalesExec pages name them."""


class Connector:
    """Base of every connector. Subclasses declare, then override the two page hooks."""

    name: ClassVar[str]
    label: ClassVar[str]
    fields: ClassVar[tuple[CredentialField, ...]]
    reports: ClassVar[tuple[Report, ...]]
    page_size: ClassVar[int] = 1000
    secret_name: ClassVar[str] = "credentials"
    """How the auth error names the credential: "the API key", "the username or password"."""
    date_labels: ClassVar[Mapping[str, str]] = DATE_LABELS
    """The date controls' labels on the Add DataSet page: a vendor whose own pages name them
    differently overrides some (``DATE_LABELS | {...}``)."""

    def __init__(
        self,
        client: httpx2.Client,
        credentials: Credentials,
        *,
        concurrency: int = 4,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.client = client
        self.credentials = credentials
        self.concurrency = max(1, concurrency)
        self.retry = retry or RetryPolicy()
        self.updated_since: datetime | None = None
        """Set by an incremental fetch: only rows changed at or after this instant."""
        SECRETS.add(*(credentials.values.get(item.id) for item in self.fields if item.secret))
        self.note: str | None = None
        """Set by a fetch that loaded other than what was asked (and why), for the run history."""

    # -- declarations ---------------------------------------------------------------------

    @classmethod
    def report(cls, slug: str) -> Report:
        for report in cls.reports:
            if report.slug == slug:
                return report
        known = ", ".join(r.slug for r in cls.reports)
        raise NotFoundError(f"{cls.label} has no report {slug!r} (its reports: {known})")

    @classmethod
    def field(cls, field_id: str) -> CredentialField:
        for item in cls.fields:
            if item.id == field_id:
                return item
        known = ", ".join(f.id for f in cls.fields)
        raise ConfigError(f"{cls.label} accounts have no field {field_id!r} (fields: {known})")

    @classmethod
    def lookup_param(cls, param_id: str) -> Param:
        """The parameter *param_id* of any report, when it declares a lookup.

        Raises:
            NotFoundError: no report has such a parameter, or it has no lookup.
        """
        found = [p for r in cls.reports for p in r.params if p.id == param_id and p.lookup]
        if not found:
            known = sorted({p.id for r in cls.reports for p in r.params if p.lookup})
            raise NotFoundError(
                f"{cls.label} lists no values for parameter {param_id!r} "
                f"(parameters with a list: {', '.join(known) or 'none'})"
            )
        return found[0]

    @classmethod
    def default_timezone(cls) -> str:
        return next((f.default for f in cls.fields if f.id == "timezone" and f.default), "UTC")

    def setting(self, field_id: str) -> str:
        """The account's value of *field_id*, or the field's declared default."""
        value = self.credentials.values.get(field_id) or self.field(field_id).default
        if value is None:
            raise ConfigError(f"account {self.credentials.account} has no {field_id}")
        return value

    @property
    def timezone(self) -> str:
        return self.credentials.values.get("timezone") or self.default_timezone()

    # -- hooks for vendor modules ---------------------------------------------------------

    def page_request(
        self, report: Report, params: Mapping[str, Any], window: DateWindow | None, page: int
    ) -> httpx2.Request:
        """Build the request for page number *page* (0-based) of *report*."""
        raise NotImplementedError

    def read_page(
        self, report: Report, response: httpx2.Response, window: DateWindow | None
    ) -> Page:
        """Turn a successful streamed answer into batches. Raise RetryableAPIError on truncation."""
        raise NotImplementedError

    def look_up(self, param_id: str, now: datetime) -> list[Choice]:
        """The values the vendor offers for parameter *param_id* (as of *now*), through the
        method its declaration names.

        Raises:
            NotFoundError: no parameter *param_id* declares a lookup.
            AuthError: the credentials were refused.
            ConnectorError: the vendor failed or could not be reached.
        """
        method: Callable[[datetime], list[Choice]] = getattr(
            self, str(self.lookup_param(param_id).lookup)
        )
        return method(now)

    def check_connection(self) -> None:
        """Make one cheap authenticated call; raise AuthError when the credentials are refused."""
        raise NotImplementedError

    def auth_error(self) -> AuthError:
        return AuthError(
            f"{self.label} rejected {self.secret_name} for account {self.credentials.account}"
        )

    def prepare(self, request: httpx2.Request) -> httpx2.Request:
        """Add authentication to a request just before it is sent (token connectors override)."""
        return request

    def refresh_auth(self, refused: httpx2.Request) -> bool:
        """Called once when the authenticated request *refused* was refused: drop its token and
        say True to retry that request, or False when there is nothing to renew (the default)."""
        return False

    # -- the engine -----------------------------------------------------------------------

    def fetch(
        self,
        report: Report,
        params: Mapping[str, Any],
        window: DateWindow | None,
        progress: ProgressCallback | None = None,
        updated_since: datetime | None = None,
    ) -> Iterator[TableBatch]:
        """Stream every row of *report* for *window* as batches, page by page.

        *updated_since* asks only for rows changed since then (incremental datasets), for
        reports whose window does not already say so.

        A window longer than the report's ``max_window_days`` is fetched part by part. Within a
        part, the first page tells the total; the remaining pages are then fetched by up to
        ``concurrency`` threads and yielded in order, so that memory stays bounded by the pages
        in flight: twice as many pages as threads, so that a thread goes on to the next page
        while the oldest one is still on its way. Without a total, pages are fetched one after
        another until a short page.

        Raises:
            AuthError: the credentials were refused.
            RetryableAPIError: the vendor kept failing after every retry.
            FatalAPIError: the vendor refused the request or sent something unreadable.
        """
        self.updated_since = updated_since
        state = FetchProgress()

        def advance(page: Page) -> Iterator[TableBatch]:
            state.pages_done += 1
            state.rows += page.rows
            if progress:
                progress(state)
            yield from page.batches

        parts: list[DateWindow | None] = [window]
        if window is not None and report.max_window_days:
            parts = list(window.split(report.max_window_days))
        for part in parts:
            for page in self._pages(report, params, part, state, len(parts) == 1):
                yield from advance(page)

    def _pages(
        self,
        report: Report,
        params: Mapping[str, Any],
        window: DateWindow | None,
        state: FetchProgress,
        count_pages: bool,
    ) -> Iterator[Page]:
        first = self.fetch_page(report, params, window, 0)
        yield first
        if first.total is None:
            number, page = 0, first
            while page.rows >= self.page_size:
                number += 1
                page = self.fetch_page(report, params, window, number)
                yield page
            return
        pages = max(1, math.ceil(first.total / self.page_size))
        if count_pages:
            state.pages_total = pages
        numbers = iter(range(1, pages))
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix=self.name) as pool:
            in_flight = [
                pool.submit(self.fetch_page, report, params, window, number)
                for number in itertools.islice(numbers, 2 * self.concurrency)
            ]
            try:
                while in_flight:
                    page = in_flight.pop(0).result()
                    for number in itertools.islice(numbers, 1):
                        in_flight.append(
                            pool.submit(self.fetch_page, report, params, window, number)
                        )
                    yield page
            finally:
                for future in in_flight:
                    future.cancel()

    def fetch_page(
        self, report: Report, params: Mapping[str, Any], window: DateWindow | None, page: int
    ) -> Page:
        """Fetch and read one page, retrying what may pass."""
        return self.call(
            lambda: self.page_request(report, params, window, page),
            lambda response: self.read_page(report, response, window),
        )

    def call(
        self,
        build: Callable[[], httpx2.Request],
        read: Callable[[httpx2.Response], T],
        *,
        authenticate: bool = True,
    ) -> T:
        """Send a request built by *build* and read it with *read*, retrying per the policy.

        Reading happens inside the retry loop, so a body cut short is retried like a 503. An
        authenticated request that is refused gets one :meth:`refresh_auth` and one more try.
        """
        waited = 0.0
        attempt = 0
        refreshed = False
        while True:
            request = self.prepare(build()) if authenticate else build()
            try:
                return self._send(request, read)
            except AuthError:
                if not authenticate or refreshed or not self.refresh_auth(request):
                    raise
                refreshed = True
            except RetryableAPIError as exc:
                delay = self.retry.delay(attempt, exc.retry_after)
                attempt += 1
                if attempt >= self.retry.attempts or waited + delay > self.retry.max_total_wait:
                    raise RetryableAPIError(
                        f"{exc} (gave up after {attempt} attempts and {waited:.0f}s of waiting)"
                    ) from None
                logger.info("%s; retrying in %.1fs", exc, delay)
                time.sleep(delay)
                waited += delay

    def _send(self, request: httpx2.Request, read: Callable[[httpx2.Response], T]) -> T:
        try:
            return self._exchange(request, read)
        except LeadferryError as exc:
            # A vendor's words may quote the request, and with it the credentials.
            scrub_exception(exc)
            raise

    def _exchange(self, request: httpx2.Request, read: Callable[[httpx2.Response], T]) -> T:
        where = f"{request.method} {scrub_url(request.url)}"
        try:
            response = self.client.send(request, stream=True)
        except httpx2.TimeoutException:
            raise RetryableAPIError(f"{self.label}: {where} timed out") from None
        except httpx2.TransportError as exc:
            raise RetryableAPIError(f"{self.label}: {where} failed: {type(exc).__name__}") from None
        # The one line per request -vv shows: neither httpx2's nor urllib3's own is (they hold
        # the URL unscrubbed).
        logger.debug("%s: HTTP %d", where, response.status_code)
        try:
            self.raise_for_status(response, where)
            started = time.perf_counter()
            result = read(response)
            logger.debug("%s: read in %.3fs", where, time.perf_counter() - started)
            return result
        except (httpx2.TimeoutException, httpx2.TransportError) as exc:
            raise RetryableAPIError(
                f"{self.label}: {where} broke off while reading: {type(exc).__name__}"
            ) from None
        finally:
            response.close()

    def raise_for_status(self, response: httpx2.Response, where: str) -> None:
        """Map an HTTP status to the error tree: the one place that does it."""
        status = response.status_code
        if status < 400:
            return
        if status in (401, 403):
            raise self.auth_error()
        if status == 429 or status >= 500:
            raise RetryableAPIError(
                f"{self.label}: {where} answered HTTP {status}",
                retry_after=_retry_after(response),
            )
        response.read()
        detail = " ".join(scrub(response.text).split())[:200]
        raise FatalAPIError(f"{self.label}: {where} answered HTTP {status}: {detail}")


def _retry_after(response: httpx2.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
