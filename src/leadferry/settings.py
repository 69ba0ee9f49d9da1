"""Process-wide settings, read from the environment (``LEADFERRY_*``)."""

from __future__ import annotations

from pathlib import Path

from platformdirs import user_data_dir
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    http_max_wait: float = Field(
        default=120.0,
        ge=0,
        description="Most seconds spent waiting between retries of one request.",
    )
    lock_timeout: float = Field(
        default=10.0, ge=0, description="Seconds a reader waits for a busy warehouse."
    )
    writer_timeout: float = Field(
        default=600.0, ge=0, description="Seconds a run waits for another run's load to finish."
    )

    @property
    def metadata_url(self) -> str:
        return f"sqlite:///{self.home / 'leadferry.sqlite'}"

    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def key_file(self) -> Path:
        return self.home / "secret.key"

    @property
    def pipelines_dir(self) -> Path:
        return self.home / "pipelines"
