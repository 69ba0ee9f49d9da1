"""The typed objects the store hands to its callers, and the rules their names follow.

Callers never see ORM objects: these frozen dataclasses are detached copies, safe to keep, pass
between threads and render.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from pydantic import SecretStr

from leadferry.dates import DateSelection
from leadferry.errors import ConfigError

TRIGGERS = ("manual", "scheduled", "retry", "backfill")
STATUSES = ("running", "success", "failed", "interrupted")
FINAL_STATUSES = ("success", "failed", "interrupted")
UPDATE_METHODS = ("replace", "append", "merge", "partition")
WHEN_FAILING = ("keep", "pause")

_DATASET_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
_RESERVED_DATASET_NAMES = frozenset(("new",))
_DATABASE_SCHEMAS = frozenset(("main", "temp", "information_schema", "pg_catalog", "system"))
"""Schemas DuckDB (and PostgreSQL) keep for themselves; with ``pg_...`` no dataset may take them."""
_ACCOUNT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True, slots=True)
class RunProgress:
    """How far a running run has got: pages fetched, pages in all (None until the vendor says)
    and rows fetched so far."""

    pages_done: int = 0
    pages_total: int | None = None
    rows: int = 0

    @classmethod
    def of(cls, stored: dict[str, Any] | None) -> RunProgress | None:
        if not stored:
            return None
        total = stored.get("pages_total")
        return cls(
            int(stored.get("pages_done", 0)),
            None if total is None else int(total),
            int(stored.get("rows", 0)),
        )

    def as_json(self) -> dict[str, Any]:
        return {"pages_done": self.pages_done, "pages_total": self.pages_total, "rows": self.rows}

    def describe(self) -> str:
        """``page 3 of 10, 1,234 rows so far``."""
        pages = f"page {self.pages_done:,}"
        if self.pages_total is not None:
            pages += f" of {self.pages_total:,}"
        return f"{pages}, {self.rows:,} rows so far"


@dataclass(frozen=True, slots=True)
class Run:
    """One update of a dataset. ``rows`` counts rows per table; times are aware UTC."""

    id: int
    dataset: str
    trigger: str
    status: str
    window_start: datetime | None
    window_end: datetime | None
    started_at: datetime
    finished_at: datetime | None
    rows: dict[str, int]
    error: str | None
    load_id: str | None
    schema_changes: list[str]
    pid: int | None
    host: str | None
    slot: datetime | None = None
    attempt: int = 0
    worker: str | None = None
    """Who ran it: a Celery worker's node name, else host:pid of the process."""
    job_key: str | None = None
    """The queued job it served (scheduled, retry and Run Now runs of ``serve``)."""
    progress: RunProgress | None = None
    """While it runs (on ``serve``'s workers): how far it has got."""
    cancel_requested: str | None = None
    """Who asked it to stop, while it runs."""

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish, or None while running."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


RUN_FIELDS = tuple(f.name for f in fields(Run))


@dataclass(frozen=True, slots=True)
class Account:
    """One vendor login. Secrets are ``SecretStr``: reprs and logs never show them.

    ``unreadable`` says why the secrets cannot be read (the key is wrong or missing); then
    ``secrets`` is empty, and everything but :meth:`credentials` still works.
    """

    id: int
    name: str
    connector: str
    config: dict[str, str]
    secrets: dict[str, SecretStr]
    created_at: datetime
    updated_at: datetime
    unreadable: str | None = None

    def credentials(self) -> dict[str, str]:
        """Config and secrets in clear, merged: what a connector needs to log in.

        Raises:
            ConfigError: the secrets cannot be read (the message says how to recover).
        """
        if self.unreadable is not None:
            raise ConfigError(self.unreadable)
        return self.config | {k: v.get_secret_value() for k, v in self.secrets.items()}


@dataclass(frozen=True, slots=True)
class AccountSummary:
    """An account as the Accounts view lists it: secrets masked, with its number of datasets."""

    name: str
    connector: str
    config: dict[str, str]
    masked: dict[str, str]
    dataset_count: int
    created_at: datetime
    readable: bool = True
    """False when the current key cannot read the secrets (``masked`` is then empty)."""
    tested_at: datetime | None = None
    """When its connection was last tested (None: never); ``test_ok`` and ``test_message``
    say how it went."""
    test_ok: bool | None = None
    test_message: str = ""


@dataclass(frozen=True, slots=True)
class ListedDataset:
    """A dataset as a line of the Data Center's list is judged: its latest run's status (None
    if it never ran), whether it is failing or stale (at the time asked) and when its last
    success finished."""

    name: str
    connector: str
    report: str
    last_status: str | None
    failing: bool
    stale: bool
    stale_after: int | None
    last_success: datetime | None


@dataclass(frozen=True, slots=True)
class StatusPage:
    """A page of the Data Center's list (see ``Store.list_statuses``): its lines, how many
    datasets match (``total``), how many of those need attention before the status filter
    (``flagged``) and how many exist at all (``datasets``)."""

    lines: list[ListedDataset]
    total: int
    flagged: int
    datasets: int


@dataclass(frozen=True, slots=True)
class AccountLine:
    """An account without its secrets: what lists need to filter and to find a zone."""

    name: str
    connector: str
    config: dict[str, str]


@dataclass(frozen=True, slots=True)
class PageDetails:
    """A page of the Data Center beyond its summaries (see ``Store.page_details``)."""

    datasets: list[Dataset]
    recent: dict[str, list[str]]
    accounts: list[AccountLine]


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    """What a user asks for when creating a dataset."""

    name: str
    account: str
    report: str
    params: dict[str, Any] = field(default_factory=dict)
    date_selection: DateSelection = field(default_factory=DateSelection)
    """Stored as its JSON (``DateSelection.as_json``); the default is Default (yesterday)."""
    timezone: str | None = None
    update_method: str = "replace"
    merge_key: str | None = None
    description: str = ""
    schedule: dict[str, Any] | None = None
    """A Schedule's JSON (leadferry.schedule); None is manual."""
    retry_every: int | None = None
    """Minutes between retries of a failed scheduled run; None: no retry."""
    retries: int = 0
    when_failing: str = "keep"
    """After the last failed retry: "keep" the schedule, or "pause" it until a success."""
    stale_after: int | None = None
    """Minutes without a successful run before a stale-data alert."""
    alert_webhook: str | None = None
    alert_emails: list[str] = field(default_factory=list)
    incremental: dict[str, Any] | None = None
    """``{"lookback_minutes": N, "start": "YYYY-MM-DD"}``: load only what changed since the
    cursor (minus the lookback); None loads the date selection's window."""
    owner: str | None = None
    """Who answers for the dataset (free text, as the "Name & describe" pane shows it)."""
    display_name: str = ""
    """How people call it (free text, shown beside its name); empty: its name."""

    @property
    def title(self) -> str:
        """What pages show it as: its display name, else its name."""
        return self.display_name or self.name


DATASET_SPEC_FIELDS = tuple(f.name for f in fields(DatasetSpec))
"""What a user says of a dataset, in one list: the store saves, edits and copies these."""


@dataclass(frozen=True, slots=True)
class User:
    """Someone who may log in; ``role`` is one of ``leadferry.auth.ROLES``."""

    id: int
    name: str
    role: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ApiToken:
    """An API token as lists show it: ``user`` is its user's name, ``prefix`` the first
    characters after ``lf_``. The token itself is shown once, when created, and never kept."""

    id: int
    user: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True, slots=True)
class WebSession:
    """A logged-in browser: whose it is, the token its forms must send back, when it ends."""

    user: User
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ScheduleState:
    """What the scheduler keeps for a dataset."""

    next_run_at: datetime | None = None
    last_slot: datetime | None = None
    retry_at: datetime | None = None
    retry_attempt: int = 0
    failing: bool = False
    alert_state: dict[str, Any] = field(default_factory=dict)
    cursor: datetime | None = None


SCHEDULE_STATE_FIELDS = tuple(f.name for f in fields(ScheduleState))


@dataclass(frozen=True, slots=True, kw_only=True)
class Dataset(DatasetSpec):
    """A saved dataset: its spec, plus its account's connector and its latest run."""

    id: int
    connector: str
    created_at: datetime
    updated_at: datetime
    last_run: Run | None = None
    state: ScheduleState = field(default_factory=ScheduleState)
    table_rows: int | None = None
    """Rows in its main table after its latest successful run (None: not known)."""

    @property
    def spec(self) -> DatasetSpec:
        return DatasetSpec(**{name: getattr(self, name) for name in DATASET_SPEC_FIELDS})


def check_dataset_name(name: str) -> None:
    """Raise ConfigError unless ``name`` can be a warehouse schema name (and a page address)."""
    if name in _RESERVED_DATASET_NAMES:
        raise ConfigError(f"{name!r} cannot name a dataset: /datasets/{name} is a page of its own")
    if name in _DATABASE_SCHEMAS or name.startswith("pg_"):
        raise ConfigError(
            f"{name!r} cannot name a dataset: the warehouse keeps a schema of that name for "
            "itself; choose another name"
        )
    if not _DATASET_NAME.fullmatch(name) or "__" in name:
        raise ConfigError(
            f"invalid dataset name {name!r}: it becomes the warehouse schema name, so use 1 to 63 "
            "lower-case letters, digits and single underscores, starting with a letter "
            "(for example acme_leads)"
        )


def check_account_name(name: str) -> None:
    """Raise ConfigError unless ``name`` is a valid account name."""
    if not _ACCOUNT_NAME.fullmatch(name):
        raise ConfigError(
            f"invalid account name {name!r}: use 1 to 64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )


def check_user_name(name: str) -> None:
    """Raise ConfigError unless ``name`` is a valid user name (the account names' rules)."""
    if not _ACCOUNT_NAME.fullmatch(name):
        raise ConfigError(
            f"invalid user name {name!r}: use 1 to 64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )


def check_dataset_fields(
    update_method: str, timezone: str | None, params: Any, when_failing: str = "keep"
) -> None:
    """Raise ConfigError for an unknown update method or time zone, or malformed params."""
    from leadferry.dates import zone

    check_update_method(update_method)
    if timezone is not None:
        zone(timezone)
    if when_failing not in WHEN_FAILING:
        raise ConfigError(f"unknown --when-failing {when_failing!r}: use keep or pause")
    if not isinstance(params, dict):
        raise ConfigError(f"dataset params must be a mapping, not {type(params).__name__}")


def check_update_method(method: str) -> None:
    """Raise ConfigError unless *method* is one of ``UPDATE_METHODS``."""
    if method not in UPDATE_METHODS:
        raise ConfigError(
            f"unknown update method {method!r}: use one of {', '.join(UPDATE_METHODS)}"
        )


def require_aware(value: datetime | None, what: str) -> None:
    """Raise ValueError for a naive datetime: every timestamp in leadferry is aware."""
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"{what} must be an aware datetime, got naive {value!r}")
