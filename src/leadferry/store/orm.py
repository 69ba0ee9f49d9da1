"""The metadata store's tables, as SQLAlchemy ORM models.

Portable SQL only: the same models run on SQLite (the default) and PostgreSQL. Every change to
these models ships as an Alembic migration in ``migrations/versions``; a test checks they agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint names, so migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime in and out, whatever the backend keeps.

    SQLite has no time zone type and drops ``tzinfo``: values are stored as naive UTC there and
    made aware again when read. Naive datetimes are refused: they are a bug, not user input.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware datetime (UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self,
        value: datetime | None,
        dialect: Dialect,  # noqa: ARG002 (the signature SQLAlchemy calls)
    ) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        """On SQLite, one call a value from the stored ISO text to the aware time (what
        SQLAlchemy's parse then :meth:`process_result_value` give, in four): a page of the
        Data Center reads hundreds of times."""
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def aware(value: str | None) -> datetime | None:
            if value is None:
                return None
            moment = datetime.fromisoformat(value)
            return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

        return aware


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


class AccountRow(Base):
    """One vendor login. ``secrets`` is a Fernet token of the JSON of the secret fields."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    connector: Mapped[str] = mapped_column(String(64))
    config: Mapped[dict[str, Any]]
    secrets: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # The last connection test: when, whether the vendor accepted the credentials, and why not.
    tested_at: Mapped[datetime | None]
    test_ok: Mapped[bool | None] = mapped_column(Boolean)
    test_message: Mapped[str | None] = mapped_column(Text)


class DatasetRow(Base):
    """What a user made of a report: report, parameters, date selection, update method."""

    __tablename__ = "datasets"
    __table_args__ = (
        Index("ix_datasets_last_success_at", "last_success_at"),
        Index("ix_datasets_table_rows", "table_rows"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="RESTRICT"), index=True
    )
    report: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]]
    date_selection: Mapped[dict[str, Any] | None]
    timezone: Mapped[str | None] = mapped_column(String(64))
    update_method: Mapped[str] = mapped_column(String(16))
    merge_key: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # What the user chose for scheduling, retries and alerts.
    schedule: Mapped[dict[str, Any] | None]
    retry_every: Mapped[int | None] = mapped_column(Integer)
    retries: Mapped[int] = mapped_column(Integer, server_default="0")
    when_failing: Mapped[str] = mapped_column(String(16), server_default="keep")
    stale_after: Mapped[int | None] = mapped_column(Integer)
    alert_webhook: Mapped[str | None] = mapped_column(Text)
    alert_emails: Mapped[list[Any]] = mapped_column(JSON, server_default="[]")
    # What the scheduler keeps: claimed with compare-and-set updates.
    next_run_at: Mapped[datetime | None]
    last_slot: Mapped[datetime | None]
    retry_at: Mapped[datetime | None]
    retry_attempt: Mapped[int] = mapped_column(Integer, server_default="0")
    failing: Mapped[bool] = mapped_column(Boolean, server_default=false())
    alert_state: Mapped[dict[str, Any]] = mapped_column(JSON, server_default="{}")
    # Incremental datasets: the settings, and the cursor (the newest change loaded).
    incremental: Mapped[dict[str, Any] | None]
    cursor: Mapped[datetime | None]
    owner: Mapped[str | None] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(255), server_default="")
    """How people call it (free text); empty: its name."""
    # What the Data Center judges and sorts by, kept by the transactions that start and finish
    # its runs (store/runs.py), so listing thousands of datasets reads this table alone.
    last_run_id: Mapped[int | None] = mapped_column(Integer)
    last_run_status: Mapped[str | None] = mapped_column(String(16))
    last_run_finished_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    table_rows: Mapped[int | None] = mapped_column(BigInteger)
    """Rows in its main table after its latest successful run (None: not known)."""


class RunRow(Base):
    """One update of a dataset, from its claim (``running``) to its result."""

    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_dataset_id_id", "dataset_id", "id"),
        # At most one running run per dataset, even if two processes race past the checks.
        Index(
            "uq_runs_one_running_per_dataset",
            "dataset_id",
            unique=True,
            sqlite_where=text("status = 'running'"),
            postgresql_where=text("status = 'running'"),
        ),
        # A queue may deliver a job twice: the second delivery finds the first's run here.
        Index("uq_runs_job_key", "job_key", unique=True),
        Index("ix_runs_status", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    trigger: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    window_start: Mapped[datetime | None]
    window_end: Mapped[datetime | None]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    rows: Mapped[dict[str, Any]]
    error: Mapped[str | None] = mapped_column(Text)
    load_id: Mapped[str | None] = mapped_column(String(64))
    schema_changes: Mapped[list[Any]]
    pid: Mapped[int | None] = mapped_column(Integer)
    host: Mapped[str | None] = mapped_column(String(255))
    slot: Mapped[datetime | None]
    attempt: Mapped[int] = mapped_column(Integer, server_default="0")
    worker: Mapped[str | None] = mapped_column(String(255))
    heartbeat_at: Mapped[datetime | None]
    """Wall-clock time the running worker last said it is alive; NULL for runs without a lease."""
    job_key: Mapped[str | None] = mapped_column(String(64))
    progress: Mapped[dict[str, Any] | None]
    """While running: pages fetched, pages in all (when known) and rows so far."""
    cancel_requested: Mapped[str | None] = mapped_column(String(255))
    """Who asked a running run to stop; it stops at its next page."""


class UserRow(Base):
    """Someone who may log in to the web UI or the REST API, with one role."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ApiTokenRow(Base):
    """An API token of a user. Only its digest is kept: the token itself is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    prefix: Mapped[str] = mapped_column(String(16))
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]


class WebSessionRow(Base):
    """A logged-in browser. Only the digest of its session id (the cookie) is kept."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_digest: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    # Indexed: expired sessions are deleted by this column.
    expires_at: Mapped[datetime] = mapped_column(index=True)
