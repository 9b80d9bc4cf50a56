"""Runtime settings, read from AMPC_* environment variables (pydantic-settings)."""

from __future__ import annotations

import datetime as dt
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
    fetch_gather_ms: float = Field(
        default=20.0,
        ge=0,
        le=1500,
        description="While records flow, how long a service's fetch may wait for a batch of "
        "records before the broker answers with what it has: latency added per hop in "
        "exchange for far fewer fetches (each costs CPU in the service and the broker). An "
        "idle service's fetch is still answered at the first record. 0: never gather.",
    )
    producer_linger_ms: float = Field(
        default=20.0,
        ge=0,
        le=1000,
        description="How long a faust service's producer lets a batch gather before sending "
        "it: a produce request then carries many records instead of one or two (less CPU in "
        "the service and the broker), at this much latency per hop.",
    )
    park_timeout_s: float = Field(
        default=600.0,
        gt=0,
        description="How long the ledger lets an event wait for the entity it refers to "
        "before refusing it (UNKNOWN_ENTITY).",
    )
    optimizer_port: int = Field(
        default=6068, ge=0, le=65535, description="HTTP: what-if, latest plan, metrics."
    )
    tracker_port: int = Field(default=6069, ge=0, le=65535, description="HTTP: metrics, health.")
    replan_window_s: float = Field(
        default=2.0,
        ge=0,
        le=600,
        description="How long routine triggers wait to be planned together (urgent: at once).",
    )
    replan_preempt: bool = Field(
        default=True,
        description="Abandon a routine re-plan in progress when an urgent trigger arrives, and "
        "plan both at once, instead of finishing it first (a large routine solve takes a "
        "minute or more).",
    )
    replan_time_limit_s: float = Field(
        default=30.0, gt=0, le=3600, description="Solver seconds per re-plan (all levels)."
    )
    state_wait_s: float = Field(
        default=15.0,
        ge=0,
        le=600,
        description="How long a re-plan waits for the ledger's state to show the events that "
        "triggered it before it plans with what it has (and says so).",
    )
    plan_start_week: dt.date | None = Field(
        default=None,
        description="First week of the planning horizon; when unset, the current ISO week.",
    )
    plan_weeks: int = Field(default=52, ge=1, le=260, description="Weeks in the horizon.")
    frozen_horizon_weeks: int = Field(
        default=4, ge=0, le=52, description="Weeks whose production orders a re-plan never moves."
    )
    transit_file: Path | None = Field(
        default=None,
        description="JSON transit table (weeks between nations); default: ampc's built-in table.",
    )
    slip_threshold_weeks: int = Field(
        default=2,
        ge=0,
        le=52,
        description="A shipment arriving this many weeks after its demand is due (or after the "
        "plan's arrival, whichever is later) raises DELIVERY_SLIPPED.",
    )
    behind_threshold_percent: float = Field(
        default=10.0,
        gt=0,
        le=100,
        description="A plant line behind its planned production by more than this share "
        "raises PLANT_BEHIND_PLAN and asks for a re-plan.",
    )
    log_level: str = Field(default="info", pattern=r"^(debug|info|warning|error)$")
