"""Process-wide settings, read from the environment (``LEADFERRY_*``)."""

from __future__ import annotations

from pathlib import Path

from platformdirs import user_data_dir
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
_DUCKDB_PREFIX = "duckdb://"


class Settings(BaseSettings):
    """Where leadferry keeps its state and how it talks to vendors."""

    model_config = SettingsConfigDict(env_prefix="LEADFERRY_", extra="ignore")

    home: Path = Field(
        default_factory=lambda: Path(user_data_dir("leadferry")),
        description="Folder of the metadata store, key file, dlt's work files and warehouse.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Fernet key for account secrets; when unset, a key file under home is used.",
    )
    concurrency: int = Field(
        default=4, ge=1, le=32, description="Pages fetched at once from one vendor after the first."
    )
    http_retries: int = Field(
        default=5,
        ge=0,
        le=20,
        description="Retries of a failed vendor request (429, 5xx, timeouts).",
    )
    http_backoff: float = Field(
        default=0.5, ge=0, description="Seconds before the first retry; doubles, with jitter."
    )
    http_timeout: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="Seconds a vendor may take to answer a request before it is retried.",
    )
    http_max_wait: float = Field(
        default=120.0,
        ge=0,
        description="Most seconds spent waiting between retries of one request.",
    )
    lock_timeout: float = Field(
        default=10.0, ge=0, description="Seconds a reader waits for a busy warehouse."
    )
    warehouse_memory: str = Field(
        default="96MB",
        description="DuckDB's memory limit while loading; beyond it, it spills to disk.",
    )
    writer_timeout: float = Field(
        default=600.0, ge=0, description="Seconds a run waits for another run's load to finish."
    )

    store_url: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy URL of the metadata store, e.g. "
        "postgresql+psycopg://user:pw@host/db (pip install 'leadferry[postgres]'); "
        "default: leadferry.sqlite under home.",
    )

    warehouse_url: SecretStr | None = Field(
        default=None,
        description="Where runs load: postgresql://user:pw@host/db for a shared PostgreSQL "
        "warehouse (pip install 'leadferry[postgres]'; a role without superuser), or "
        "duckdb:///path/to/file.duckdb; default: warehouse.duckdb under home.",
    )

    # Spreading runs over workers (``serve --executor celery`` and ``leadferry worker``).
    broker_url: SecretStr | None = Field(
        default=None,
        description="Redis URL of the Celery broker that serve sends runs to and workers take "
        "them from, e.g. redis://host:6379/0 (pip install 'leadferry[celery]').",
    )
    queue: str = Field(
        default="leadferry", min_length=1, description="Celery queue serve sends runs to."
    )
    account_concurrency: int = Field(
        default=0,
        ge=0,
        description="Most runs of one vendor account at once, across every node; 0: no cap.",
    )
    run_lease: float = Field(
        default=60.0,
        gt=0,
        description="Seconds a worker's run stays claimed without a heartbeat; after that it is "
        "interrupted and retried. Workers heartbeat every quarter of it.",
    )

    @property
    def metadata_url(self) -> str:
        if self.store_url is not None:
            return self.store_url.get_secret_value()
        return f"sqlite:///{self.home / 'leadferry.sqlite'}"

    @property
    def warehouse_postgres_url(self) -> str | None:
        """The PostgreSQL warehouse's libpq URL, or None when the warehouse is a DuckDB file."""
        url = self.warehouse_url.get_secret_value() if self.warehouse_url else ""
        scheme, _, rest = url.partition("://")
        if scheme in _POSTGRES_SCHEMES:
            return f"postgresql://{rest}"
        return None

    @property
    def warehouse_path(self) -> Path:
        """The DuckDB warehouse file (where dlt's DuckDB extract is pointed on PostgreSQL)."""
        url = self.warehouse_url.get_secret_value() if self.warehouse_url else ""
        if url.startswith(_DUCKDB_PREFIX):
            return Path(url.removeprefix(_DUCKDB_PREFIX)).expanduser()
        return self.home / "warehouse.duckdb"

    @field_validator("warehouse_url")
    @classmethod
    def _known_warehouse(cls, value: SecretStr | None) -> SecretStr | None:
        url = value.get_secret_value() if value else ""
        if (
            url
            and url.partition("://")[0] not in _POSTGRES_SCHEMES
            and not (url.startswith(_DUCKDB_PREFIX) and len(url) > len(_DUCKDB_PREFIX))
        ):
            raise ValueError(
                "use postgresql://user:password@host/database or duckdb:///path/to/file.duckdb"
            )
        return value

    @property
    def key_file(self) -> Path:
        return self.home / "secret.key"

    @property
    def pipelines_dir(self) -> Path:
        return self.home / "pipelines"

    # Alerts: where they go by default, and the SMTP server that sends the e-mails.
    smtp_host: str | None = Field(
        default=None, description="SMTP server that sends alert e-mails; unset disables e-mail."
    )
    smtp_port: int = Field(default=25, ge=1, le=65535, description="Port of the SMTP server.")
    smtp_user: str | None = Field(
        default=None, description="User name for SMTP login; unset sends without logging in."
    )
    smtp_password: SecretStr | None = Field(
        default=None, description="Password for SMTP login (never logged)."
    )
    smtp_starttls: bool = Field(
        default=False, description="Upgrade the SMTP connection with STARTTLS before logging in."
    )
    smtp_sender: str = Field(
        default="leadferry@localhost", description="From address of alert e-mails."
    )
    alert_webhook: str | None = Field(
        default=None,
        description="Webhook that receives every dataset's alerts as a JSON POST, unless the "
        "dataset names its own.",
    )
    alert_email: list[str] = Field(
        default_factory=list,
        description="Addresses that receive every dataset's alerts, unless the dataset names its "
        'own (a JSON list in the environment: ["ops@example.com"]).',
    )
