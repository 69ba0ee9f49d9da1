"""The shapes the REST API reads and writes (named as in FastAPI's full-stack template).

``...Create`` and ``...Update`` are request bodies: every string and number is bounded, so a
fuzzed or hostile body is refused with 422 before it reaches the store. ``...Public`` is what
a response may show: secrets appear masked, never in clear. Lists answer ``{"data", "count"}``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
)

from leadferry.dates import MAX_DAYS_BACK, DateSelection
from leadferry.errors import ConfigError

UpdateMethod = Literal["replace", "append", "merge", "partition"]
WhenFailing = Literal["keep", "pause"]
Weekday = Literal["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]
ScheduleKind = Literal["manual", "every", "daily", "weekdays", "weekly", "monthly", "cron", "rule"]

EARLIEST_DAY = dt.date(1970, 1, 1)
LATEST_DAY = dt.date(2999, 12, 31)
MAX_MINUTES = 525_600 * 10  # ten years, in minutes


def _text(max_length: int, min_length: int = 0) -> Any:
    """The type of a string of *min_length* to *max_length* characters."""
    return Annotated[str, StringConstraints(min_length=min_length, max_length=max_length)]


def _known_zone(name: str) -> str:
    from leadferry.dates import zone

    try:
        return zone(name).key
    except ConfigError as exc:
        raise ValueError(str(exc)) from None


TimeZone = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    AfterValidator(_known_zone),
    Field(description="An IANA time zone, such as America/Los_Angeles or UTC."),
]
Day = Annotated[dt.date, Field(ge=EARLIEST_DAY, le=LATEST_DAY)]
DaysBack = Annotated[int, Field(ge=0, le=MAX_DAYS_BACK)]
Minutes = Annotated[int, Field(ge=1, le=MAX_MINUTES)]
Slug = _text(64, 1)
AccountName = _text(64, 1)
DatasetName = _text(63, 1)
FieldValue = _text(4096)
ParamValue = Annotated[int, Strict(), Field(ge=-(2**53), le=2**53)] | _text(200)
Description = _text(2000)
Owner = _text(200)
DisplayName = _text(200)
MergeKey = _text(500, 1)
Interval = _text(16)
ClockTime = _text(5)
Cron = _text(200)
Rule = _text(500)
Params = Annotated[
    dict[Slug, ParamValue],
    Field(max_length=20, description='Report parameters by id, e.g. {"lid": 271}.'),
]


def _webhook(value: str) -> str:
    """An http(s) URL that an HTTP client can send to (refused here rather than at alert time)."""
    from leadferry.service.datasets import check_webhook

    try:
        return check_webhook(value)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None


WebhookURL = Annotated[str, StringConstraints(max_length=2000), AfterValidator(_webhook)]
Email = Annotated[str, StringConstraints(max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")]


class Body(BaseModel):
    """A request body: unknown fields are refused rather than silently ignored."""

    model_config = ConfigDict(extra="forbid")


# -- errors ----------------------------------------------------------------------------------


class Problem(BaseModel):
    """An error: what went wrong and what to do about it."""

    detail: str


class ValidationProblem(BaseModel):
    """A refused input: a message, or FastAPI's list of fields and what is wrong with each."""

    detail: str | list[dict[str, Any]]


_PROBLEMS = {
    401: "No valid API token or session.",
    403: "The user's role does not allow this.",
    404: "No such account, dataset, run, token, connector or report.",
    409: "A name already taken, an account still in use, or a dataset already running.",
    422: "Invalid input; the message names the field.",
    502: "The vendor refused the request or could not be reached.",
}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The error answers a route may give, for the OpenAPI document."""
    return {
        code: {
            "model": ValidationProblem if code == 422 else Problem,
            "description": _PROBLEMS[code],
        }
        for code in codes
    }


# -- connectors and reports --------------------------------------------------------------------


class CredentialFieldPublic(BaseModel):
    id: str
    label: str
    secret: bool
    required: bool
    default: str | None
    advanced: bool
    help: str


class ParamPublic(BaseModel):
    id: str
    label: str
    type: Literal["integer", "string"]
    required: bool
    help: str
    lookup: bool = Field(
        description="Whether /accounts/{name}/lookups/{id} lists the values the vendor offers."
    )


class TablePublic(BaseModel):
    name: str
    primary_key: list[str]
    parent_key: str | None


class ReportPublic(BaseModel):
    slug: str
    label: str
    description: str
    dated: bool = Field(description="Whether the report takes a date selection.")
    params: list[ParamPublic]
    tables: list[TablePublic] = Field(description="The first is the main table.")
    merge_key: list[str] = Field(description="The default merge key (the main table's key).")
    incremental: bool = Field(description="Whether a dataset of it can load only changes.")
    partitioned: bool = Field(description="Whether the partition update method applies.")


class ReportsPublic(BaseModel):
    data: list[ReportPublic]
    count: int


class ConnectorPublic(BaseModel):
    name: str
    label: str
    fields: list[CredentialFieldPublic]
    reports: list[ReportPublic]


class ConnectorsPublic(BaseModel):
    data: list[ConnectorPublic]
    count: int


# -- accounts --------------------------------------------------------------------------------


Fields = Annotated[
    dict[Slug, FieldValue],
    Field(
        max_length=32,
        description="Credential field values by id (GET /connectors lists them), secrets "
        'included: {"api_key": "...", "timezone": "UTC"}.',
    ),
]


class AccountCreate(Body):
    name: AccountName
    connector: Slug
    fields: Fields = {}
    test: bool = Field(
        default=True,
        description="Test the connection first and save only if the vendor accepts the "
        "credentials (502 otherwise); false saves the account untested.",
    )


class AccountUpdate(Body):
    name: AccountName | None = Field(default=None, description="A new name (rename).")
    fields: Fields | None = Field(
        default=None, description="Fields to change; a secret given replaces the stored one."
    )


class AccountTestPublic(BaseModel):
    at: str = Field(description="When (UTC).")
    ok: bool
    message: str = Field(description="The vendor's reason when it refused.")


class AccountPublic(BaseModel):
    name: str
    connector: str
    config: dict[str, str]
    secrets: dict[str, str] = Field(description="Masked: the last characters at most.")
    secrets_readable: bool = Field(
        default=True,
        description="False when the secret key cannot read the secrets (it was replaced or "
        "lost): rotate them (POST fields again) to use the account.",
    )
    datasets: int = Field(description="How many datasets use the account.")
    last_test: AccountTestPublic | None = Field(
        default=None, description="How its last connection test went; null: never tested."
    )


class AccountsPublic(BaseModel):
    data: list[AccountPublic]
    count: int


class LookupChoice(BaseModel):
    value: str = Field(description="What the parameter takes.")
    label: str = Field(description="How the vendor names it.")


class LookupChoices(BaseModel):
    data: list[LookupChoice]
    count: int
    read_at: str = Field(description="When the vendor was asked (answers are kept 5 minutes).")


class ConnectionTest(BaseModel):
    ok: bool
    connector: str = Field(description="The connector's label.")
    error: str | None = Field(default=None, description="Why the vendor refused, when not ok.")


# -- dates, schedules, incremental -------------------------------------------------------------


class DateSelectionIn(Body):
    """A date selection (docs/dates.md): nothing is Default (yesterday); else ``date``,
    ``days_back``, or a range of one start and one end. End dates are included."""

    date: Day | None = None
    days_back: DaysBack | None = None
    from_date: Day | None = None
    from_days_back: DaysBack | None = None
    to_date: Day | None = None
    to_days_back: DaysBack | None = None


def date_selection_of(given: DateSelectionIn | None) -> DateSelection:
    """The :class:`DateSelection` a body's ``date_selection`` asks for (none or null: Default).

    Raises:
        InvalidWindowError: its fields do not make one selection (named).
    """
    return DateSelection.parse(given.model_dump(exclude_none=True) if given else None)


def _bounded_instant(value: dt.datetime) -> dt.datetime:
    if not 2000 <= value.year <= 2999:
        raise ValueError("give a date and time between the years 2000 and 2999")
    return value


class ScheduleIn(Body):
    """A schedule (docs/scheduling.md); times are wall-clock times in ``timezone``."""

    kind: ScheduleKind = "manual"
    every: Minutes | Interval | None = Field(
        default=None, description="every: minutes, or 15m, 2h, 1d."
    )
    at: ClockTime | None = Field(default=None, description="HH:MM start time.")
    days: Annotated[list[Weekday], Field(min_length=1, max_length=7)] | None = None
    day: Annotated[int, Field(ge=1, le=31)] | None = Field(
        default=None, description="monthly: the day of the month (past a month's end: its last)."
    )
    cron: Cron | None = None
    rule: Rule | None = Field(default=None, description="An RRULE, FREQ=DAILY or longer.")
    timezone: TimeZone = "UTC"
    active_hours: (
        Annotated[list[Annotated[int, Field(ge=0, le=24)]], Field(min_length=2, max_length=2)]
        | None
    ) = Field(default=None, description="[start, end): run only in these local hours.")
    start_at: Annotated[dt.datetime, AfterValidator(_bounded_instant)] | None = Field(
        default=None, description="No run before this (without an offset: local time)."
    )

    def as_fields(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class IncrementalIn(Body):
    lookback_minutes: Annotated[int, Field(ge=0, le=MAX_MINUTES)] = 60
    start: Day | None = Field(default=None, description="The first run loads changes since.")

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


# -- datasets --------------------------------------------------------------------------------


class _DatasetFields(Body):
    params: Params | None = None
    date_selection: DateSelectionIn | None = None
    timezone: TimeZone | None = None
    update_method: UpdateMethod | None = None
    merge_key: MergeKey | None = None
    description: Description | None = None
    owner: Owner | None = None
    display_name: DisplayName | None = Field(
        default=None, description="How people call it (free text); empty or null: its name."
    )
    incremental: IncrementalIn | None = Field(
        default=None, description="Load only what changed (merge datasets of some reports)."
    )
    schedule: ScheduleIn | None = Field(default=None, description="None: manual (Run Now).")
    retry_every: Annotated[int, Field(ge=1, le=10_080)] | None = Field(
        default=None, description="Minutes between retries of a failed scheduled run."
    )
    retries: Annotated[int, Field(ge=0, le=100)] | None = Field(
        default=None, description="Retries at most; 0 (or retry_every null) does not retry."
    )
    when_failing: WhenFailing | None = Field(
        default=None, description="After the last failed retry: keep the schedule, or pause."
    )
    stale_after: Minutes | None = Field(
        default=None, description="Alert after this many minutes without a successful run."
    )
    alert_webhook: WebhookURL | None = None
    alert_emails: Annotated[list[Email], Field(max_length=20)] | None = None


class DatasetCreate(_DatasetFields):
    name: DatasetName = Field(description="Unique; also the warehouse schema name.")
    account: AccountName
    report: Slug


class DatasetUpdate(_DatasetFields):
    """Fields given change; others keep their value. ``null`` clears a field."""

    account: AccountName | None = Field(
        default=None, description="Another account of the same connector."
    )
    report: Slug | None = None


class RetryPublic(BaseModel):
    every_minutes: int
    retries: int


class LastRunPublic(BaseModel):
    status: str
    started_at: str
    finished_at: str
    seconds: float | None
    window: str | None
    rows: dict[str, int] = Field(description="Rows loaded by the run, per table.")
    error: str | None


class DatasetPublic(BaseModel):
    name: str
    display_name: str = Field(description="How people call it; its name unless one was given.")
    status: str = Field(
        description="As the Data Center's badge shows it: running, failing, failed, stale, "
        "never (never ran) or success."
    )
    attention: list[str] = Field(description="Why it needs attention; empty when all is well.")
    last_success: str | None = Field(description="When its last successful run finished.")
    account: str
    connector: str
    report: str
    params: dict[str, Any]
    date_selection: dict[str, Any]
    dates: str = Field(description="The date selection in words.")
    timezone: str | None
    update_method: str
    merge_key: str | None
    description: str
    owner: str | None
    schedule: str = Field(description="The schedule in words.")
    schedule_settings: dict[str, Any] | None = Field(
        description="The schedule as ScheduleIn takes it; null is manual."
    )
    next_run: str | None = Field(
        description="When it runs next on its own; null: manual or paused."
    )
    paused: bool = Field(description="Its retries ran out and its schedule waits for a resume.")
    retry: RetryPublic | None
    when_failing: str
    failing: bool
    stale_after_minutes: int | None
    alert_webhook: str | None = Field(description="Without its query string.")
    alert_emails: list[str]
    incremental: dict[str, Any] | None
    cursor: str | None
    last_run: LastRunPublic | None


class DatasetDetails(DatasetPublic):
    effective_timezone: str = Field(description="Its own zone, its account's or its vendor's.")
    next_window: dict[str, Any] | None = Field(
        default=None,
        description="The window its next run will load (at its scheduled time); null for "
        "undated reports and paused datasets.",
    )
    next_runs: list[str] = Field(description="The next five scheduled runs, in its zone.")


class DatasetListed(DatasetPublic):
    recent_runs: list[str] = Field(description="The statuses of its last five runs, oldest first.")


class DatasetsPublic(BaseModel):
    data: list[DatasetListed]
    count: int = Field(description="How many datasets this answer holds.")
    total: int = Field(description="How many datasets match the filters, on every page.")
    offset: int
    limit: int | None


# -- runs, history, previews -----------------------------------------------------------------


class RunProgressPublic(BaseModel):
    pages_done: int = Field(description="Pages fetched so far.")
    pages_total: int | None = Field(description="Pages in all, once the vendor has said.")
    rows: int = Field(description="Rows fetched so far.")


class RunPublic(BaseModel):
    id: int
    dataset: str
    number: int = Field(description="Its place in its dataset's history, 1 for the first run.")
    status: str
    trigger: str
    window_start: str | None
    window_end: str | None
    rows: dict[str, int] = Field(description="Rows loaded by the run, per table.")
    error: str | None
    started_at: str
    finished_at: str | None
    seconds: float | None
    load_id: str | None
    slot: str | None
    attempt: int
    worker: str | None = Field(
        description="Who ran it: a Celery worker's node name, else HOST:PID of the process."
    )
    schema_changes: list[str]
    progress: RunProgressPublic | None = Field(
        description="While it runs on the service's workers: how far it has got."
    )


class HistorySummary(BaseModel):
    runs: int
    success_rate: float | None = Field(description="Of the finished runs listed, 0 to 1.")
    average_seconds: float | None = Field(description="Of the successful runs listed.")


class RunsPublic(BaseModel):
    data: list[RunPublic]
    count: int
    total: int = Field(description="How many runs match the filters, on every page.")
    summary: HistorySummary


class BackfillIn(Body):
    first: Day = Field(description="The first day to load, in the dataset's zone.")
    last: Day = Field(description="The last day to load (included).")
    chunk_days: int = Field(
        default=7, ge=1, le=MAX_DAYS_BACK, description="Days per run (the last may be shorter)."
    )


class BackfillQueued(BaseModel):
    dataset: str
    trigger: Literal["backfill"]
    status: Literal["queued"]
    chunks: list[str] = Field(description="The days of each run, in order.")
    history: str = Field(description="Where its runs appear: GET this URL.")


class CancelResult(BaseModel):
    dataset: str
    outcome: Literal["dropped", "asked"] = Field(
        description="dropped: its run still waited for a worker and will not start; asked: "
        "its running run stops at its next page, recorded failed with who stopped it."
    )


class RunQueued(BaseModel):
    dataset: str
    trigger: Literal["manual"]
    status: Literal["queued"]
    history: str = Field(description="Where its run appears: GET this URL.")


class PreviewRequest(Body):
    account: AccountName
    report: Slug
    params: Params = {}
    date_selection: DateSelectionIn | None = None
    timezone: TimeZone | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 10


class PreviewPublic(BaseModel):
    columns: list[str]
    rows: list[list[Any]]


# -- users and tokens --------------------------------------------------------------------------


class UserPublic(BaseModel):
    id: int
    name: str
    role: str
    created_at: dt.datetime


class UsersPublic(BaseModel):
    data: list[UserPublic]
    count: int


class TokenCreate(Body):
    name: Slug = Field(description="What the token is for, e.g. ci-export.")


class TokenPublic(BaseModel):
    id: int
    name: str
    prefix: str = Field(description="Its first characters after lf_, to tell tokens apart.")
    created_at: dt.datetime
    last_used_at: dt.datetime | None


class TokenCreated(TokenPublic):
    token: str = Field(description="The token itself: shown this once, never again.")


class TokensPublic(BaseModel):
    data: list[TokenPublic]
    count: int
