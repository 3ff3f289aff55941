"""Settings: one pydantic-settings class, every value readable from a ``SKUPORT_*`` variable."""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime configuration of skuport."""

    model_config = SettingsConfigDict(env_prefix="SKUPORT_", extra="ignore")

    data_dir: Path = Field(
        default=Path("skuport-data"), description="Folder for the SQLite file, keys and files."
    )
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite in data_dir.")
    secret_key: str | None = Field(
        default=None,
        description="Comma-separated secret keys, newest first (rotation); generated and kept when unset.",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"
    log_format: Literal["text", "json"] = Field(
        default="text", description="text, or json: one object per line with jobId, runId, exportId, attempt."
    )
    token_ttl: str = "24h"
    plan_sku_limit: int = Field(default=0, description="Maximum number of records; 0 means no limit.")
    local_root: Path | None = Field(default=None, description="Root folder of the local destination.")
    tmp_dir: Path | None = Field(
        default=None, description="Folder of temporary export files (default: tmp/ in the data dir)."
    )
    allow_private_networks: bool = Field(
        default=False, description="Allow destinations on loopback, private, link-local, metadata addresses."
    )
    network_allow_list: str = Field(
        default="", description="Hosts, .domains and CIDRs that destinations may reach although internal."
    )
    webhook_allow_private: bool = Field(default=False, description="Alias of allow_private_networks.")
    webhook_allow_list: str = Field(default="", description="Added to network_allow_list.")
    executor: str = Field(default="inprocess", description="inprocess (thread pool) or memory (tests).")
    run_workers: int = 2
    export_workers: int = Field(
        default=1, description="Processes reading and encoding one large export (1: none)."
    )
    export_engine: Literal["auto", "rows"] = Field(
        default="auto",
        description="auto: csv, json, jsonl and xml exports are encoded a batch at a time by polars where "
        "the export allows it; rows: always the row-by-row Python engine.",
    )
    scheduler: bool = Field(
        default=False,
        description="Run the embedded scheduler and reaper in this process "
        "(`skuport serve` turns it on unless SKUPORT_SCHEDULER=false).",
    )
    scheduler_interval: float = Field(default=5.0, description="Seconds between scheduler ticks.")
    smtp_url: str | None = Field(
        default=None,
        description="Mail server of email notifications: smtp://user:password@host:587 (STARTTLS when "
        "offered) or smtps://…:465; ?from=feeds@example.com sets the sender.",
    )
    scheduler_batch_size: int = Field(
        default=500, ge=1, description="Due jobs claimed per transaction in a scheduler pass (1: one by one)."
    )
    scheduler_catchup_grace: int = Field(
        default=3600,
        description="Seconds a missed tick may be late and still get its one catch-up run after downtime.",
    )
    run_heartbeat_interval: float = Field(default=5.0, description="Seconds between run heartbeats.")
    run_stale_after: int = Field(default=90, description="Seconds without heartbeat before 'worker lost'.")
    run_timeout: int = Field(default=3600, description="Hard timeout of one export run, in seconds.")
    run_max_attempts: int = Field(default=3, description="Attempts per scheduled time (first run + retries).")
    run_retry_backoff: int = Field(
        default=30, description="Seconds before the first retry; doubles each time."
    )
    shutdown_grace: float = Field(
        default=10.0, description="Seconds running exports get to finish on shutdown."
    )
    shutdown_stop_wait: float = Field(
        default=30.0,
        description="After the grace, seconds cancelled work gets to stop (a network call in flight "
        "ends within its destination's timeout) before it is failed as 'shut down'.",
    )
    export_storage: str = Field(default="local", description="Storage of one-off export files: local or s3.")
    export_dir: Path | None = Field(default=None, description="Folder of the local export storage.")
    export_ttl: str = Field(default="7d", description="How long a one-off export file is kept.")
    export_url_ttl: str | None = Field(default=None, description="Lifetime of signed download URLs.")
    export_max_records: int = Field(default=1_000_000, description="Most records per export; 0: no limit.")
    export_max_active_per_user: int = Field(default=5, description="Exports pending or running per user.")
    export_metadata_max_bytes: int = Field(default=4096, description="Largest metadata object, as JSON.")
    compat_commercelayer_max_records: int = Field(
        default=10_000,
        ge=0,
        description="Most records per export of the Commerce Layer dialect (the vendor "
        "documents 10,000); 0: SKUPORT_EXPORT_MAX_RECORDS applies.",
    )
    export_sweep_interval: int = Field(default=300, description="Seconds between expired-file sweeps.")
    console_session_idle: int = Field(
        default=2 * 3600, ge=60, description="Seconds a console login lasts without being used."
    )
    console_session_max: int = Field(
        default=12 * 3600, ge=60, description="Seconds a console login lasts at most, used or not."
    )
    console_login_attempts: int = Field(
        default=5, ge=1, description="Failed console logins per user name or client address before 429."
    )
    console_login_window: int = Field(
        default=300, ge=1, description="Seconds over which failed console logins are counted."
    )
    export_s3_bucket: str | None = None
    export_s3_prefix: str = "exports/"
    export_s3_region: str | None = None
    export_s3_endpoint_url: str | None = None
    export_s3_access_key_id: str | None = None
    export_s3_secret_access_key: str | None = None

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file in the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'skuport.db').resolve()}"

    @property
    def secret_keys(self) -> list[str]:
        """All secret keys, newest first; a generated one is persisted in the data dir."""
        if self.secret_key:
            keys = [k.strip() for k in self.secret_key.split(",") if k.strip()]
            if keys:
                return keys
        return [_persisted_secret(self.data_dir)]


def _persisted_secret(data_dir: Path) -> str:
    """Read the generated secret from the data dir, creating it on first use (mode 0600)."""
    path = data_dir / "secret.key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, key.encode())
    finally:
        os.close(fd)
    return key


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
