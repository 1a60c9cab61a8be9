"""castra's settings, read from the environment (prefix ``CASTRA_``) or a ``.env`` file.

One ``Settings`` object is built per process (``get_settings()``) and passed down;
workflow code never reads it: what a workflow needs travels in its input.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CASTRA_", env_file=".env", extra="ignore")

    # Where the embedded stack keeps its state (Temporal SQLite, SecantusDB, secrets).
    data_dir: Path = Field(default_factory=lambda: Path.home() / ".castra")

    # Temporal. No address means "castra up starts the embedded dev server".
    temporal_address: str | None = None
    temporal_namespace: str = "default"
    temporal_task_queue: str = "castra"
    temporal_port: int = 7233
    temporal_ui_port: int = 8233
    temporal_ui_url: str | None = None  # for links; defaults to the embedded UI

    # MongoDB. No URI means "castra up starts the embedded SecantusDB server".
    mongodb_uri: str | None = None
    mongodb_port: int = 27017
    mongodb_database: str = "castra"

    # The API; workers reach it at public_url (defaults to http://api_host:api_port).
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_url: str | None = None

    # Secrets: the local encrypted store keeps its Fernet key in secrets_key, or in
    # data_dir/secrets.key, created on first start.
    secrets_backend: Literal["local"] = "local"
    secrets_key: str | None = None

    # Workers.
    provisioner: Literal["process"] = "process"
    worker_host: str = "127.0.0.1"
    worker_start_timeout_seconds: float = 30.0
    worker_heartbeat_interval_seconds: float = 5.0
    worker_heartbeat_timeout_seconds: float = 30.0

    # Default limits for an investigation (an automation may set its own).
    investigation_timeout_seconds: float = 3600.0
    step_timeout_seconds: float = 300.0

    # How often a trigger recorded while Temporal was unreachable is retried.
    dispatch_retry_seconds: float = 5.0

    log_level: str = "INFO"

    @property
    def effective_temporal_address(self) -> str:
        return self.temporal_address or f"127.0.0.1:{self.temporal_port}"

    @property
    def effective_mongodb_uri(self) -> str:
        return self.mongodb_uri or f"mongodb://127.0.0.1:{self.mongodb_port}/?directConnection=true"

    @property
    def effective_public_url(self) -> str:
        return (self.public_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")

    @property
    def effective_temporal_ui_url(self) -> str:
        return (self.temporal_ui_url or f"http://127.0.0.1:{self.temporal_ui_port}").rstrip("/")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
