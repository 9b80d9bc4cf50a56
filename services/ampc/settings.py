"""Runtime settings, read from AMPC_* environment variables (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where the broker is and how topics are shaped. Every field has an AMPC_ variable."""

    model_config = SettingsConfigDict(env_prefix="AMPC_", extra="ignore")

    bootstrap_servers: str | None = Field(
        default=None,
        description="Kafka bootstrap address; when unset, the embedded broker's address.",
    )
    data_dir: Path = Field(
        default=Path(".ampc"),
        description="Where the embedded broker keeps its data, logs and state file.",
    )
    cache_dir: Path = Field(
        default=Path.home() / ".cache" / "ampc",
        description="Where Maven copies the Kafka jars (outside git, reused across runs).",
    )
    topic_prefix: str = Field(
        default="ampc",
        pattern=r"^[a-z][a-z0-9-]{0,30}$",
        description="Prefix of every topic name; tests use their own to stay isolated.",
    )
    replication_factor: int = Field(default=1, ge=1, le=5)
    inbox_partitions: int = Field(default=3, ge=1, le=64)
    canonical_partitions: int = Field(default=6, ge=1, le=256)
    gateway_port: int = Field(default=6066, ge=0, le=65535, description="HTTP: metrics, health.")
    ledger_port: int = Field(default=6067, ge=0, le=65535, description="HTTP: read API.")
    park_timeout_s: float = Field(
        default=600.0,
        gt=0,
        description="How long the ledger lets an event wait for the entity it refers to "
        "before refusing it (UNKNOWN_ENTITY).",
    )
    log_level: str = Field(default="info", pattern=r"^(debug|info|warning|error)$")
