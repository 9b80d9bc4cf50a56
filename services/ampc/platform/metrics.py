"""Prometheus metrics shared by the streaming services (names `ampc_<thing>_<unit>`).

Labels are bounded: service, event type (from the contract's list, or `invalid`), party (from the
topic registry), reason (a RejectionCode). Never an event or entity id.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_IN = Counter(
    "ampc_events_in_total",
    "Records read by a service, by event type and sending party.",
    ["service", "type", "party"],
)
EVENTS_OUT = Counter(
    "ampc_events_out_total",
    "Records written by a service, by event type and destination topic role.",
    ["service", "type", "destination"],
)
EVENTS_REJECTED = Counter(
    "ampc_events_rejected_total",
    "Records dead-lettered, by reason and sending party.",
    ["service", "reason", "party"],
)
EVENTS_DUPLICATE = Counter(
    "ampc_events_duplicate_total",
    "Records dropped because they were already applied (same event id or source offset).",
    ["service"],
)
PROCESSING_SECONDS = Histogram(
    "ampc_event_processing_seconds",
    "Time from reading a record to having handed its outputs to the producer.",
    ["service"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
LOOP_STALL = Gauge(
    "ampc_event_loop_max_stall_seconds",
    "Longest time the service's event loop was late since start (where it was is logged).",
    ["service"],
)
GC_PAUSE = Histogram(
    "ampc_gc_pause_seconds",
    "Garbage collections, by generation: how long each held every thread of the service "
    "(generation 2 includes the deliberate ones after start-up and, in the optimizer, after "
    "each plan).",
    ["service", "generation"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
CONSUMER_LAG = Gauge(
    "ampc_consumer_lag_records",
    "Records not yet processed (high watermark minus position), per consumed topic.",
    ["service", "topic"],
)
PARKED_EVENTS = Counter(
    "ampc_ledger_parked_events_total",
    "Events parked to wait for the entity they refer to (e.g. a pledge read before its pool).",
)
RELEASED_EVENTS = Counter(
    "ampc_ledger_released_events_total",
    "Parked events applied or finally judged once their entity appeared.",
)
