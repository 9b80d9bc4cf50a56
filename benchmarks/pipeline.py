"""Pipeline benchmark: inbox -> gateway -> ledger -> state topics, against a real Kafka broker.

    .venv/bin/python benchmarks/pipeline.py [--events 20000] [--latency-seconds 20]
        [--out benchmarks/results/pipeline.json] [--timeout 150]

A command, not a timed test. On a broker of its own (free ports, a temporary data dir, stopped
at the end even on failure) it measures, in one run:

1. the raw baseline's throughput: two plain aiokafka processes doing the least a gateway and a
   ledger must do (decode the CloudEvents record, produce the canonical record; decode it again,
   produce a state record), idempotent producers with acks=all, on a topic prefix of its own
   with the same topic layout;
2. the faust floor's throughput: the raw baseline's very work, but as two faust agents on
   ampc's own app settings (consumer thread, fetch gathering, idempotent producer, linger,
   commits) and nothing else: what faust costs before any of ampc's own work, on those
   settings;
3. pipeline throughput: the real `ampc serve gateway` and `ampc serve ledger` processes, N
   valid inbox events (demands and amendments from several nations, pools opened by CZI,
   pledges and payments by donors, each party writing to its own inbox), timed from the first
   write until every entity's final version is visible on the state topics;
4. latency at half the measured pipeline rate: each event's write time is kept and compared with
   the moment the state version it produces is read back from the state topic (the services
   of the throughput run, drained);
5. the raw baseline's and the faust floor's latency at that same rate, each on fresh processes
   and topics warmed by a burst of 4,000 events first.

The order is fixed: the services run on a broker already warmed by the raw loop and the floor.

Prints a rich table and writes benchmarks/results/pipeline.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord
from rich.console import Console
from rich.table import Table

from ampc.contract import events as ev
from ampc.contract.envelope import ContractViolation, KafkaRecord, decode, encode
from ampc.contract.types import Priority
from ampc.gateway.authority import canonical_key
from ampc.gateway.judge import INPUT_TYPES, PARTY_HEADER
from ampc.platform import broker
from ampc.platform.topics import TopicRegistry, TopicRole, apply_topics
from ampc.settings import Settings

SCRIPT: Final = Path(__file__).resolve()
RESULTS: Final = SCRIPT.parent / "results" / "pipeline.json"
THROUGHPUT_RATIO_TARGET: Final = 0.5
Stage = Literal["gateway", "ledger"]
P99_TARGET_MS: Final = 100.0

console = Console()

# ----------------------------------------------------------------------------------- workload

REQUESTERS: Final = ("PL", "CZ", "DE", "NL", "EE", "LT", "LV", "FR", "SK", "RO", "FI", "DK")
DONORS: Final = ("DK", "NL", "DE", "SE", "NO", "CA", "BE", "PT", "LT", "IS")
PRODUCTS: Final = ("155-HE", "155-CHARGE", "122-HE", "120-MORTAR")
PRIORITIES: Final = (Priority.ROUTINE, Priority.HIGH, Priority.ROUTINE, Priority.URGENT)
FIRST_WEEK: Final = dt.date(2026, 12, 7)  # a Monday: weeks are named by their Monday

# The family of an input event -> the state topic whose version it bumps (pipeline and raw).
STATE_KIND: Final = {
    ev.Family.DEMAND: "demands",
    ev.Family.FUNDING: "pools",
    ev.Family.CAPACITY: "plants",
    ev.Family.DELIVERY: "shipments",
}


@dataclass(frozen=True, slots=True)
class Planned:
    """One inbox event and the state version it produces once applied."""

    party: str
    event: ev.Event
    entity: str  # "<state kind>:<entity id>", as read back from the state topic
    version: int


def workload(n: int, tag: str) -> list[Planned]:
    """N valid events in rounds of 20: 1 pool opened by CZI, 4 pledges and 3 payments by
    donors, 9 demand submissions from rotating nations and 3 amendments of them.

    Every prefix of the list is valid on its own (amendments and payments follow what they
    refer to), so cutting it at N never sends an event the ledger must refuse. Entity ids carry
    `tag` and the round, so they are unique within and across phases.
    """
    planned: list[Planned] = []
    versions: dict[str, int] = {}
    round_no = 0
    while len(planned) < n:
        for party, event in _round(tag, round_no):
            entity = f"{STATE_KIND[event.family]}:{event.entity_id()}"
            versions[entity] = versions.get(entity, 0) + 1
            planned.append(Planned(party, event, entity, versions[entity]))
        round_no += 1
    return planned[:n]


def _demand(tag: str, round_no: int, j: int, pool_id: str) -> ev.DemandSubmitted:
    return ev.DemandSubmitted(
        demand_id=f"D-{tag}-{round_no}-{j}",
        requested_by=REQUESTERS[(round_no * 9 + j) % len(REQUESTERS)],
        recipient="UA",
        delivery_point="Rzeszow",
        product=PRODUCTS[(round_no + j) % len(PRODUCTS)],
        quantity=1000 + (round_no * 37 + j * 211) % 9000,
        due_week=FIRST_WEEK + dt.timedelta(weeks=4 + (round_no + j) % 40),
        priority=PRIORITIES[(round_no + j) % len(PRIORITIES)],
        pool_id=pool_id,
    )


def _round(tag: str, round_no: int) -> list[tuple[str, ev.Event]]:
    """One round of 20 (party, event), in the order the national systems send them."""
    pool_id = f"P-{tag}-{round_no}"
    donors = [DONORS[(round_no + i) % len(DONORS)] for i in range(4)]
    demands = [_demand(tag, round_no, j, pool_id) for j in range(9)]
    opened = ev.PoolOpened(pool_id=pool_id, owner="CZI", pool_name=f"CZI tranche {round_no}")
    pledges = [
        ev.ContributionPledged(
            pool_id=pool_id,
            contribution_id=f"C-{tag}-{round_no}-{donor}",
            donor=donor,
            amount_cents=(5 + i) * 100_000_000,
        )
        for i, donor in enumerate(donors)
    ]
    payments = [  # the fourth donor pays late: not in this round
        ev.ContributionPaid(
            pool_id=pool_id,
            contribution_id=f"C-{tag}-{round_no}-{donor}",
            donor=donor,
            amount_cents=(5 + i) * 50_000_000,
        )
        for i, donor in enumerate(donors[:3])
    ]
    amendments = [
        ev.DemandAmended(
            demand_id=demands[j].demand_id,
            requested_by=demands[j].requested_by,
            quantity=demands[j].quantity + 500,
            reason="framework call-off raised",
        )
        for j in (0, 4, 7)
    ]

    def by_requester(
        events: list[ev.DemandSubmitted] | list[ev.DemandAmended],
    ) -> list[tuple[str, ev.Event]]:
        return [(e.requested_by, e) for e in events]

    return [
        ("CZI", opened),
        *by_requester(demands[0:3]),
        *((p.donor, p) for p in pledges),
        *by_requester(demands[3:6]),
        *by_requester(amendments[0:1]),
        *by_requester(demands[6:9]),
        *by_requester(amendments[1:3]),
        *((p.donor, p) for p in payments),
    ]


def final_versions(planned: list[Planned]) -> dict[str, int]:
    """Entity -> the version it has once every planned event is applied."""
    finals: dict[str, int] = {}
    for item in planned:
        finals[item.entity] = max(item.version, finals.get(item.entity, 0))
    return finals


def encode_all(planned: list[Planned], registry: TopicRegistry) -> list[tuple[str, KafkaRecord]]:
    """(inbox topic, record) per event: each party writes as itself to its own inbox."""
    return [
        (registry.inbox(p.party), encode(p.event, source=f"/{p.party.lower()}")) for p in planned
    ]


def mix(planned: list[Planned]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for p in planned:
        counts[p.event.event_type()] = counts.get(p.event.event_type(), 0) + 1
    return counts


# ---------------------------------------------------------------------------- Kafka helpers


def producer(bootstrap: str) -> AIOKafkaProducer:
    """How a national system (and every ampc stage) writes: idempotent, acks=all."""
    return AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")


async def produce_all(bootstrap: str, records: list[tuple[str, KafkaRecord]]) -> float:
    """Write every record as fast as the producer takes them; seconds until all are acked."""
    started = time.perf_counter()
    writer = producer(bootstrap)
    await writer.start()
    try:
        futures = [
            await writer.send(topic, r.value, key=r.key, headers=r.headers) for topic, r in records
        ]
        await asyncio.gather(*futures)
    finally:
        await writer.stop()
    return time.perf_counter() - started


OnRecord = Callable[[str, ConsumerRecord[bytes, bytes], float], None]


class Watcher:
    """Reads topics from their end offsets at start-up onwards, stamping each record with the
    moment this process saw it. Assigned, not subscribed: no group join delays the first read."""

    def __init__(
        self,
        bootstrap: str,
        partitions: dict[str, int],
        on_record: OnRecord,
        *,
        prompt: bool = True,
    ) -> None:
        self.bootstrap = bootstrap
        self.partitions = partitions
        self.on_record = on_record
        self.prompt = prompt
        self._consumer: Any = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            group_id=None,
            # Prompt (latency): the broker answers as soon as any record arrives. Otherwise
            # (throughput) it gathers 64 KiB or 100 ms per answer: records that trickle in one
            # by one would else cost a fetch each, and this process's CPU is taken from the
            # 2 cores the measured processes need; the end is seen at most 100 ms late.
            fetch_min_bytes=1 if self.prompt else 64 * 1024,
            fetch_max_wait_ms=20 if self.prompt else 100,
        )
        await consumer.start()
        tps = [TopicPartition(t, p) for t, count in self.partitions.items() for p in range(count)]
        consumer.assign(tps)
        # Explicit offsets: seek_to_end is lazy and could skip records written before the
        # first fetch.
        for tp, offset in (await consumer.end_offsets(tps)).items():
            consumer.seek(tp, offset)
        self._consumer = consumer
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=100, max_records=5000)
            now = time.perf_counter()
            for tp, messages in batches.items():
                for message in messages:
                    self.on_record(tp.topic, message, now)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()


def topic_partitions(registry: TopicRegistry, roles: tuple[TopicRole, ...]) -> dict[str, int]:
    return {spec.name: spec.partitions for role in roles for spec in registry.by_role(role)}


_VERSION: Final = re.compile(rb'"version":(\d+)')


def state_version(value: bytes | None) -> int:
    # Entity states are small, but a regex is still cheaper than json.loads for the watcher,
    # which shares the machine with what it measures. "version" is the first such field.
    match = _VERSION.search(value or b"")
    return int(match.group(1)) if match else 0


@dataclass
class Progress:
    """What one throughput run has seen on the canonical, state and dead-letter topics."""

    registry: TopicRegistry
    pending: dict[str, int]
    events: int
    canonical: int = 0
    state: int = 0
    deadletter: int = 0
    canonical_done_at: float | None = None
    done_at: float | None = None
    deadletter_sample: str | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._canonical = {s.name for s in self.registry.by_role(TopicRole.CANONICAL)}
        self._state = {
            s.name: s.name.rsplit(".", 1)[1] for s in self.registry.by_role(TopicRole.STATE)
        }
        if not self.pending:
            self.done.set()

    def on_record(self, topic: str, message: ConsumerRecord[bytes, bytes], now: float) -> None:
        key, value = message.key, message.value
        if topic in self._canonical:
            self.canonical += 1
            if self.canonical == self.events:
                self.canonical_done_at = now
        elif topic == self.registry.deadletter:
            self.deadletter += 1
            if self.deadletter_sample is None:
                self.deadletter_sample = (value or b"")[:400].decode(errors="replace")
        elif topic in self._state:
            self.state += 1
            entity = f"{self._state[topic]}:{(key or b'').decode()}"
            wanted = self.pending.get(entity)
            if wanted is not None and state_version(value) >= wanted:
                del self.pending[entity]
                if not self.pending:
                    self.done_at = now
                    self.done.set()


# ---------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (0 if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()  # after "(comm)", whose text may hold spaces
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all cores, every process)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return (sum(ticks[:8]) - idle) / CLOCK_TICKS  # user..steal; guest is counted in user


OTHERS: Final = "other processes (not this benchmark)"


class CpuMeter:
    """CPU seconds each named process spent between `start` and `stop`, and what the rest of
    the machine used meanwhile: on a shared 2-core machine that is the noise in every number."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self._before: dict[str, float] = {}
        self._machine_before = 0.0
        self._started = 0.0

    def start(self) -> None:
        self._before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self._machine_before = machine_busy_seconds()
        self._started = time.perf_counter()

    def stop(self) -> dict[str, dict[str, float]]:
        wall = time.perf_counter() - self._started
        used = {name: cpu_seconds(pid) - self._before[name] for name, pid in self.pids.items()}
        used[OTHERS] = max(0.0, machine_busy_seconds() - self._machine_before - sum(used.values()))
        return {
            name: {
                "cpu_seconds": round(seconds, 2),
                "percent_of_one_core": round(100 * seconds / wall, 1),
            }
            for name, seconds in used.items()
        }


@dataclass
class Child:
    """A process this benchmark started, with its log."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def tail(self, lines: int = 15) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def spawn(name: str, command: list[str], env: dict[str, str], log: Path) -> Child:
    with log.open("ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    return Child(name, process, log)


def service_settings(bootstrap: str, prefix: str, work: Path) -> Settings:
    """Settings for a gateway and a ledger of their own: topic prefix, data dir, free ports."""
    return Settings(
        bootstrap_servers=bootstrap,
        topic_prefix=prefix,
        data_dir=work / "services",
        gateway_port=free_port(),
        ledger_port=free_port(),
    )


def service_env(settings: Settings) -> dict[str, str]:
    values = {
        "AMPC_BOOTSTRAP_SERVERS": settings.bootstrap_servers or "",
        "AMPC_TOPIC_PREFIX": settings.topic_prefix,
        "AMPC_INBOX_PARTITIONS": str(settings.inbox_partitions),
        "AMPC_CANONICAL_PARTITIONS": str(settings.canonical_partitions),
        "AMPC_DATA_DIR": str(settings.data_dir),
        "AMPC_GATEWAY_PORT": str(settings.gateway_port),
        "AMPC_LEDGER_PORT": str(settings.ledger_port),
    }
    return {**os.environ, **values}


def start_services(settings: Settings, work: Path) -> list[Child]:
    """`ampc serve gateway` and `ampc serve ledger`, as an operator runs them."""
    env = service_env(settings)
    return [
        spawn(
            name,
            [sys.executable, "-m", "ampc", "serve", name],
            env,
            work / f"{settings.topic_prefix}-{name}.log",
        )
        for name in ("gateway", "ledger")
    ]


def start_raw_stages(bootstrap: str, prefix: str, work: Path) -> list[Child]:
    """The raw baseline's two plain aiokafka processes, as the services are two processes."""
    children = []
    for stage in ("gateway", "ledger"):
        command = [
            sys.executable,
            str(SCRIPT),
            "--raw-stage",
            stage,
            "--bootstrap",
            bootstrap,
            "--prefix",
            prefix,
        ]
        log = work / f"{prefix}-raw-{stage}.log"
        children.append(spawn(f"raw {stage}", command, dict(os.environ), log))
    return children


def start_faust_stages(settings: Settings, work: Path) -> list[Child]:
    """The faust floor's two processes (`faust_stage`), on the settings' topic prefix."""
    env = service_env(settings)
    return [
        spawn(
            f"faust floor {stage}",
            [sys.executable, str(SCRIPT), "--faust-stage", stage],
            env,
            work / f"{settings.topic_prefix}-floor-{stage}.log",
        )
        for stage in ("gateway", "ledger")
    ]


def processing_seconds(port: int, service: str) -> tuple[float, float]:
    """(sum, count) of the service's ampc_event_processing_seconds histogram (time inside the
    agent per record: decode, domain, hand-off to the producer)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    values = {"sum": 0.0, "count": 0.0}
    for part in values:
        pattern = rf'^ampc_event_processing_seconds_{part}{{service="{service}"}} (\S+)$'
        found = re.search(pattern, text, re.MULTILINE)
        values[part] = float(found.group(1)) if found else 0.0
    return values["sum"], values["count"]


# ------------------------------------------------------------ raw baseline and faust floor


class StageWork:
    """The least a gateway (stage "gateway") or a ledger (stage "ledger") does to one record:
    decode the CloudEvents record with the pydantic contract and make the one record it
    produces (canonical / state). Shared by the raw loop and the faust floor, so that the two
    differ only in what carries the records."""

    def __init__(self, stage: Stage, registry: TopicRegistry) -> None:
        self.stage = stage
        self.registry = registry
        self.role = TopicRole.INBOX if stage == "gateway" else TopicRole.CANONICAL
        self.party_of = {s.name: s.party or "" for s in registry.by_role(TopicRole.INBOX)}
        self.versions: dict[str, int] = {}  # the "state": how many events each entity has seen

    def topics(self) -> list[str]:
        return [spec.name for spec in self.registry.by_role(self.role)]

    def output(
        self, topic: str, key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]]
    ) -> tuple[str, bytes, bytes, list[tuple[str, bytes]]] | None:
        """(topic, key, value, headers) to produce for this record; None if it is invalid."""
        try:
            envelope = decode(key, value, headers, allowed_types=INPUT_TYPES)
        except ContractViolation:
            return None  # never happens with this workload; the gateway dead-letters
        payload = envelope.payload
        if self.stage == "gateway":
            return (
                self.registry.canonical(payload.family),
                canonical_key(payload).encode(),
                payload.model_dump_json().encode(),
                [*headers, (PARTY_HEADER, self.party_of[topic].encode())],
            )
        entity = payload.entity_id()
        kind = STATE_KIND[payload.family]
        version = self.versions[f"{kind}:{entity}"] = self.versions.get(f"{kind}:{entity}", 0) + 1
        return (
            self.registry.state(kind),
            entity.encode(),
            b'{"version":%d,"event":%s}' % (version, value),
            [],
        )


async def raw_stage(stage: Stage, bootstrap: str, prefix: str) -> None:
    """`StageWork` without faust: consume, decode, produce one record per input, idempotent
    with acks=all, committing offsets only once what was produced from them is acknowledged
    (at-least-once, as faust does, every second)."""
    work = StageWork(
        stage, TopicRegistry(Settings(topic_prefix=prefix, bootstrap_servers=bootstrap))
    )
    consumer = AIOKafkaConsumer(
        *work.topics(),
        bootstrap_servers=bootstrap,
        group_id=f"{prefix}-raw-{stage}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    writer = producer(bootstrap)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    await consumer.start()
    await writer.start()
    pending: list[asyncio.Future[Any]] = []
    last_commit = time.monotonic()
    try:
        while not stopping.is_set():
            batches = await consumer.getmany(timeout_ms=100, max_records=2000)
            for tp, messages in batches.items():
                for m in messages:
                    out = work.output(tp.topic, m.key, m.value, m.headers)
                    if out is not None:
                        topic, key, value, headers = out
                        pending.append(await writer.send(topic, value, key=key, headers=headers))
            if pending and (not batches or time.monotonic() - last_commit >= 1.0):
                await asyncio.gather(*pending)
                pending.clear()
                await consumer.commit()
                last_commit = time.monotonic()
    finally:
        await writer.stop()
        await consumer.stop()


def faust_stage(stage: Stage) -> None:
    """`StageWork` as a faust agent on ampc's own app (`create_app`: the same consumer thread,
    fetch gathering, idempotent producer, linger and commits as the services), and nothing
    else: no validation beyond decoding, no authority, no tables. What faust itself costs, the
    floor under the services. Settings come from the environment, as the services' do."""
    from ampc.platform.streaming import create_app, raw_topic, run_worker, send_record

    settings = Settings()
    work = StageWork(stage, TopicRegistry(settings))
    app = create_app(
        f"floor-{stage}",
        settings,
        web_port=settings.gateway_port if stage == "gateway" else settings.ledger_port,
        partitions=(
            settings.inbox_partitions if stage == "gateway" else settings.canonical_partitions
        ),
    )

    @app.agent(raw_topic(app, *work.topics()))
    async def pass_on(stream: Any) -> None:
        async for event in stream.events():
            m = event.message
            out = work.output(m.topic, m.key, m.value, m.headers)
            if out is not None:
                await send_record(app, *out)

    run_worker(app, settings.log_level)


# ---------------------------------------------------------------------------- measurements


@dataclass
class Throughput:
    label: str
    events: int
    completed: bool
    load_seconds: float
    seconds: float
    events_per_s: float
    first_hop_seconds: float | None
    first_hop_events_per_s: float | None
    canonical_records: int
    state_records: int
    deadletters: int
    deadletter_sample: str | None
    cpu: dict[str, dict[str, float]]
    cpu_ms_per_event: dict[str, float] = field(default_factory=dict)
    in_agent_seconds_per_event: dict[str, float] = field(default_factory=dict)


async def wait_for_probe(
    bootstrap: str, registry: TopicRegistry, tag: str, children: list[Child], timeout_s: float
) -> float:
    """Send one demand through the stages and wait for its state: proves every consumer has
    joined its group and every stage is ready. Returns seconds waited."""
    probe = workload(1, tag)
    progress = Progress(registry, final_versions(probe), events=1)
    watcher = Watcher(bootstrap, topic_partitions(registry, (TopicRole.STATE,)), progress.on_record)
    await watcher.start()
    started = time.perf_counter()
    try:
        await produce_all(bootstrap, encode_all(probe, registry))
        deadline = started + timeout_s
        while not progress.done.is_set():
            dead = [c for c in children if c.process.poll() is not None]
            if dead:
                raise RuntimeError(f"{dead[0].name} exited during start-up:\n{dead[0].tail()}")
            if time.perf_counter() > deadline:
                raise RuntimeError(f"stages not ready after {timeout_s:.0f} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(progress.done.wait(), timeout=0.5)
    finally:
        await watcher.stop()
    return time.perf_counter() - started


async def measure_throughput(
    label: str,
    bootstrap: str,
    registry: TopicRegistry,
    planned: list[Planned],
    records: list[tuple[str, KafkaRecord]],
    pids: dict[str, int],
    timeout_s: float,
) -> Throughput:
    """Write every record, then wait until each entity's final version is on its state topic."""
    progress = Progress(registry, final_versions(planned), events=len(planned))
    roles = (TopicRole.CANONICAL, TopicRole.STATE, TopicRole.DEADLETTER)
    watcher = Watcher(
        bootstrap, topic_partitions(registry, roles), progress.on_record, prompt=False
    )
    await watcher.start()
    meter = CpuMeter(pids)
    meter.start()
    started = time.perf_counter()
    try:
        load_seconds = await produce_all(bootstrap, records)
        remaining = timeout_s - (time.perf_counter() - started)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(progress.done.wait(), timeout=max(remaining, 1.0))
    finally:
        cpu = meter.stop()
        await watcher.stop()
    completed = progress.done.is_set()
    end = progress.done_at if completed and progress.done_at else time.perf_counter()
    seconds = end - started
    # An incomplete run is reported at the rate of what it did finish, and flagged.
    finished = len(planned) if completed else progress.state
    first_hop = progress.canonical_done_at - started if progress.canonical_done_at else None
    return Throughput(
        label=label,
        events=len(planned),
        completed=completed,
        load_seconds=round(load_seconds, 3),
        seconds=round(seconds, 3),
        events_per_s=round(finished / seconds, 1),
        first_hop_seconds=round(first_hop, 3) if first_hop else None,
        first_hop_events_per_s=round(len(planned) / first_hop, 1) if first_hop else None,
        canonical_records=progress.canonical,
        state_records=progress.state,
        deadletters=progress.deadletter,
        deadletter_sample=progress.deadletter_sample,
        cpu=cpu,
        # A stage's CPU cost per record it handled: the first hop per canonical record, the
        # rest per state record. What the rate would be on an idle core, whatever the noise.
        cpu_ms_per_event={
            name: round(1000 * used["cpu_seconds"] / handled, 3)
            for name, used in cpu.items()
            if name != OTHERS
            and (handled := progress.canonical if "gateway" in name else progress.state)
        },
    )


WARM_UP_EVENTS: Final = 4000


async def warm_up(
    bootstrap: str, registry: TopicRegistry, pids: dict[str, int], timeout_s: float
) -> None:
    """A burst through freshly started stages before their latency is measured, as the
    services' latency run follows their throughput run: a process's first seconds (faust's
    start-up, the first fetch sessions, the heap settling) are not what latency means."""
    planned = workload(WARM_UP_EVENTS, "warm")
    records = encode_all(planned, registry)
    warm = await measure_throughput(
        "warm-up", bootstrap, registry, planned, records, pids, timeout_s
    )
    if not warm.completed:
        # its backlog would be measured as latency
        raise RuntimeError(f"the warm-up burst did not finish in {timeout_s:.0f} s")


@dataclass
class Latency:
    target_rate: float
    achieved_rate: float
    seconds: float
    sent: int
    observed: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    cpu: dict[str, dict[str, float]]
    services: str = ""
    legs_ms: dict[str, dict[str, float]] = field(default_factory=dict)


async def measure_latency(
    bootstrap: str,
    registry: TopicRegistry,
    rate: float,
    seconds: float,
    pids: dict[str, int],
) -> Latency:
    """Send the workload mix at `rate` events/s for `seconds`; for each event, the time from
    handing it to the producer to reading the state version it produces."""
    planned = workload(max(2, int(rate * seconds)), "lat")
    records = encode_all(planned, registry)  # before the clock starts: encoding is not load
    sent_at: dict[tuple[str, int], float] = {}
    latencies: list[float] = []
    all_seen = asyncio.Event()

    state = {s.name: s.name.rsplit(".", 1)[1] for s in registry.by_role(TopicRole.STATE)}
    # Where the time goes: the gateway's and the ledger's producers stamp each record with
    # the wall-clock moment they sent it (Kafka's CreateTime), so each event's latency splits
    # into the gateway (inbox write -> canonical sent), the ledger (canonical sent -> state
    # sent) and the last leg (state sent -> seen here: producer batching, broker, this fetch).
    event_of = {
        _ce_id(record.headers): (item.entity, item.version)
        for item, (_topic, record) in zip(planned, records, strict=True)
    }
    wall = time.time() - time.perf_counter()  # perf_counter -> wall clock
    canonical_sent: dict[tuple[str, int], float] = {}
    legs: dict[str, list[float]] = {"gateway": [], "ledger": [], "last": []}

    def on_record(topic: str, message: ConsumerRecord[bytes, bytes], now: float) -> None:
        if topic not in state:
            entity = event_of.get(_ce_id(message.headers))
            if entity is not None:
                canonical_sent[entity] = message.timestamp / 1000
            return
        entity = (f"{state[topic]}:{(message.key or b'').decode()}", state_version(message.value))
        sent = sent_at.pop(entity, None)
        if sent is not None:
            latencies.append(now - sent)
            through = canonical_sent.pop(entity, None)
            state_sent = message.timestamp / 1000
            if through is not None:
                legs["gateway"].append(through - (sent + wall))
                legs["ledger"].append(state_sent - through)
                legs["last"].append(now + wall - state_sent)
            if len(latencies) == len(planned):
                all_seen.set()

    watched = topic_partitions(registry, (TopicRole.STATE, TopicRole.CANONICAL))
    watcher = Watcher(bootstrap, watched, on_record)
    await watcher.start()
    writer = producer(bootstrap)
    await writer.start()
    meter = CpuMeter(pids)
    meter.start()
    futures = []
    try:
        started = time.perf_counter()
        for i, (item, (topic, record)) in enumerate(zip(planned, records, strict=True)):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent_at[(item.entity, item.version)] = time.perf_counter()
            futures.append(
                await writer.send(topic, record.value, key=record.key, headers=record.headers)
            )
        send_seconds = time.perf_counter() - started
        await asyncio.gather(*futures)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_seen.wait(), timeout=30)
    finally:
        cpu = meter.stop()
        await writer.stop()
        await watcher.stop()
    cuts = _cuts_ms(latencies)
    return Latency(
        target_rate=round(rate, 1),
        achieved_rate=round(len(planned) / send_seconds, 1),
        seconds=round(send_seconds, 2),
        sent=len(planned),
        observed=len(latencies),
        p50_ms=cuts.get("p50"),
        p95_ms=cuts.get("p95"),
        p99_ms=cuts.get("p99"),
        max_ms=round(1000 * max(latencies), 1) if latencies else None,
        cpu=cpu,
        legs_ms={leg: _cuts_ms(values) for leg, values in legs.items()},
    )


LEGS: Final = {
    "gateway": "inbox write -> canonical sent",
    "ledger": "canonical sent -> state sent",
    "last": "state sent -> seen",
}


def _ce_id(headers: Any) -> str:
    return next((bytes(v).decode() for k, v in headers if k == "ce_id"), "")


def _cuts_ms(seconds: list[float]) -> dict[str, float]:
    """p50 / p95 / p99 in ms (record timestamps are whole milliseconds)."""
    if len(seconds) < 2:
        return {}
    cuts = statistics.quantiles([1000 * x for x in seconds], n=100, method="inclusive")
    return {"p50": round(cuts[49], 1), "p95": round(cuts[94], 1), "p99": round(cuts[98], 1)}


# ---------------------------------------------------------------------------- orchestration


@contextlib.contextmanager
def own_broker(work: Path) -> Iterator[broker.ClusterInfo]:
    """A single-node broker on free ports in `work`, stopped however the block ends."""
    data_dir = work / "broker"
    data_dir.mkdir()
    console.print("starting Kafka on free ports ...")
    info = broker.start(data_dir, Settings().cache_dir, nodes=1, broker_port=None)
    try:
        yield info
    finally:
        broker.stop(data_dir, grace_s=15)


async def latency_on_fresh_stages(
    what: str,
    settings: Settings,
    start: Callable[[Settings], list[Child]],
    children: list[Child],
    rate: float,
    args: argparse.Namespace,
    broker_pid: dict[str, int],
) -> Latency:
    """Stages `start`ed on the settings' own topics, warmed by a burst, then timed at `rate`.
    They are in `children` while they run (so a failure shows their logs) and stopped after."""
    bootstrap = settings.bootstrap_servers or ""
    registry = TopicRegistry(settings)
    await apply_topics(bootstrap, registry.specs)
    started = start(settings)
    children += started
    await wait_for_probe(bootstrap, registry, f"probe-{settings.topic_prefix}", children, 180)
    pids = {c.name: c.process.pid for c in started} | broker_pid
    await warm_up(bootstrap, registry, pids, args.timeout)
    await asyncio.sleep(2)
    latency = await measure_latency(bootstrap, registry, rate, args.latency_seconds, pids)
    latency.services = f"{what}, fresh topics, warmed by {WARM_UP_EVENTS:,} events, same rate"
    stop_alive(started, children)
    return latency


async def throughput_on_fresh_stages(
    label: str,
    settings: Settings,
    start: Callable[[Settings], list[Child]],
    children: list[Child],
    planned: list[Planned],
    records: list[tuple[str, KafkaRecord]],
    args: argparse.Namespace,
    broker_pid: dict[str, int],
) -> Throughput:
    """A burst of `records` through stages `start`ed on the settings' own topics, timed until
    every entity's final state is visible; the stages are stopped after (see
    `latency_on_fresh_stages` for `children`)."""
    bootstrap = settings.bootstrap_servers or ""
    registry = TopicRegistry(settings)
    await apply_topics(bootstrap, registry.specs)
    started = start(settings)
    children += started
    waited = await wait_for_probe(
        bootstrap, registry, f"probe-{settings.topic_prefix}", children, 180
    )
    console.print(f"{label} stages ready after {waited:.1f} s; measuring ...")
    pids = {c.name: c.process.pid for c in started} | broker_pid
    result = await measure_throughput(
        label, bootstrap, registry, planned, records, pids, args.timeout
    )
    stop_alive(started, children)
    console.print(f"{label}: {result.events_per_s:,.0f} events/s")
    return result


def stop_alive(started: list[Child], children: list[Child]) -> None:
    """Stop `started`, after checking that none died during its run (a dead stage's numbers
    are not its own), and take them out of `children`."""
    dead = [c for c in started if c.process.poll() is not None]
    if dead:
        raise RuntimeError(f"{dead[0].name} died during the run:\n{dead[0].tail()}")
    for child in started:
        child.stop()
        children.remove(child)


def on_prefix(
    records: list[tuple[str, KafkaRecord]], old: str, new: str
) -> list[tuple[str, KafkaRecord]]:
    """The very same records (event ids included) on another topic prefix's topics."""
    return [(topic.replace(old, new, 1), record) for topic, record in records]


async def benchmark(
    args: argparse.Namespace, info: broker.ClusterInfo, work: Path
) -> dict[str, Any]:
    bootstrap = info.bootstrap_servers
    run = f"b{os.getpid() % 100000}"
    pipe = service_settings(bootstrap, f"{run}-pipe", work)
    raw = pipe.model_copy(update={"topic_prefix": f"{run}-raw"})
    pipe_registry = TopicRegistry(pipe)
    await apply_topics(bootstrap, pipe_registry.specs)

    planned = workload(args.events, "tp")
    encode_started = time.perf_counter()
    pipe_records = encode_all(planned, pipe_registry)
    encode_seconds = time.perf_counter() - encode_started
    # The very same bytes (event ids included) on the raw prefix's inboxes.
    raw_records = on_prefix(pipe_records, pipe.topic_prefix, raw.topic_prefix)
    console.print(f"{args.events:,} events encoded in {encode_seconds:.1f} s: {mix(planned)}")
    broker_pid = {"kafka broker": info.nodes[0].pid, "benchmark (load + watch)": os.getpid()}
    children: list[Child] = []
    try:
        # 1. raw baseline: two plain aiokafka processes, as the services are two processes.
        raw_result = await throughput_on_fresh_stages(
            "raw",
            raw,
            lambda settings: start_raw_stages(bootstrap, settings.topic_prefix, work),
            children,
            planned,
            raw_records,
            args,
            broker_pid,
        )

        # 2. the faust floor: the raw loop's work in faust agents on ampc's app settings.
        floor = service_settings(bootstrap, f"{run}-floor", work)
        floor_result = await throughput_on_fresh_stages(
            "faust floor",
            floor,
            lambda settings: start_faust_stages(settings, work),
            children,
            planned,
            on_prefix(pipe_records, pipe.topic_prefix, floor.topic_prefix),
            args,
            broker_pid,
        )

        # 3. the services.
        children += start_services(pipe, work)
        waited = await wait_for_probe(bootstrap, pipe_registry, "probe", children, 180)
        console.print(f"gateway and ledger ready after {waited:.1f} s; measuring ...")
        pids = {c.name: c.process.pid for c in children} | broker_pid
        ports = {"gateway": pipe.gateway_port, "ledger": pipe.ledger_port}
        agent_before = {name: processing_seconds(port, name) for name, port in ports.items()}
        pipe_result = await measure_throughput(
            "pipeline", bootstrap, pipe_registry, planned, pipe_records, pids, args.timeout
        )
        for name, port in ports.items():
            total, count = processing_seconds(port, name)
            done = count - agent_before[name][1]
            if done:
                per_event = (total - agent_before[name][0]) / done
                pipe_result.in_agent_seconds_per_event[name] = round(per_event, 6)
        console.print(f"pipeline: {pipe_result.events_per_s:,.0f} events/s")

        # 4. latency at half the sustained rate, with nothing queued ahead of it: an
        # incomplete throughput run leaves a backlog that would be measured instead, so then
        # the latency run gets fresh services on a prefix of its own.
        latency_settings, latency_registry = pipe, pipe_registry
        if not pipe_result.completed:
            for child in children:
                child.stop()
            children.clear()
            latency_settings = service_settings(bootstrap, f"{run}-lat", work)
            latency_registry = TopicRegistry(latency_settings)
            await apply_topics(bootstrap, latency_registry.specs)
            children += start_services(latency_settings, work)
            await wait_for_probe(bootstrap, latency_registry, "probe-lat", children, 180)
            pids = {c.name: c.process.pid for c in children} | broker_pid
            await warm_up(bootstrap, latency_registry, pids, args.timeout)
        await asyncio.sleep(2)
        latency = await measure_latency(
            bootstrap,
            latency_registry,
            max(1.0, pipe_result.events_per_s / 2),
            args.latency_seconds,
            pids,
        )
        latency.services = (
            "the throughput run's, drained"
            if latency_settings is pipe
            else "restarted on a fresh prefix (the incomplete throughput run left a backlog), "
            f"warmed by a burst of {WARM_UP_EVENTS:,} events"
        )
        dead = [c for c in children if c.process.poll() is not None]
        if dead:
            raise RuntimeError(f"{dead[0].name} died during the run:\n{dead[0].tail()}")
        for child in children:
            child.stop()
        children.clear()

        # 5. and 6. the raw loop's and the faust floor's latency at the same rate: what the
        # machine and the broker cost two hops of plain aiokafka, and what faust adds to that.
        raw_latency = await latency_on_fresh_stages(
            "raw aiokafka stages",
            raw.model_copy(update={"topic_prefix": f"{run}-rawlat"}),
            lambda settings: start_raw_stages(bootstrap, settings.topic_prefix, work),
            children,
            latency.target_rate,
            args,
            broker_pid,
        )
        floor_latency = await latency_on_fresh_stages(
            "faust floor stages",
            service_settings(bootstrap, f"{run}-floorlat", work),
            lambda settings: start_faust_stages(settings, work),
            children,
            latency.target_rate,
            args,
            broker_pid,
        )
    except BaseException:
        for child in children:
            console.print(f"[red]--- {child.name} log tail ---[/red]\n{child.tail()}")
        raise
    finally:
        for child in children:
            child.stop()
    return {
        "settings": {
            "inbox_partitions": pipe.inbox_partitions,
            "canonical_partitions": pipe.canonical_partitions,
            "replication_factor": pipe.replication_factor,
            "inbox_topics": len(pipe_registry.by_role(TopicRole.INBOX)),
            "broker_nodes": len(info.nodes),
            "kafka_version": info.kafka_version,
        },
        "workload": {
            "events": len(planned),
            "mix": mix(planned),
            "entities": len(final_versions(planned)),
        },
        "raw": raw_result,
        "faust_floor": floor_result,
        "pipeline": pipe_result,
        "latency": latency,
        "raw_latency": raw_latency,
        "faust_floor_latency": floor_latency,
    }


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def verdicts(
    raw: Throughput, floor: Throughput, pipe: Throughput, latency: Latency
) -> dict[str, Any]:
    ratio = pipe.events_per_s / raw.events_per_s if raw.events_per_s else 0.0
    p99 = latency.p99_ms
    complete = latency.observed == latency.sent
    return {
        "ratio_pipeline_to_raw": round(ratio, 3),
        # The faust floor against the raw loop: the most the services could reach on faust.
        "ratio_faust_floor_to_raw": (
            round(floor.events_per_s / raw.events_per_s, 3) if raw.events_per_s else 0.0
        ),
        "targets": {
            "throughput_ratio": {
                "target": f">= {THROUGHPUT_RATIO_TARGET}",
                "value": round(ratio, 3),
                "met": pipe.completed and raw.completed and ratio >= THROUGHPUT_RATIO_TARGET,
            },
            "p99_latency_ms_at_half_load": {
                "target": f"<= {P99_TARGET_MS:.0f}",
                "value": p99,
                # Unseen events count against the target: their latency is unknown, not small.
                "met": p99 is not None and complete and p99 <= P99_TARGET_MS,
            },
        },
    }


def as_json(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return {k: as_json(getattr(value, k)) for k in value.__dataclass_fields__}
    if isinstance(value, dict):
        return {str(k): as_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_json(v) for v in value]
    return value


def print_report(report: dict[str, Any]) -> None:
    raw: Throughput = report["raw"]
    pipe: Throughput = report["pipeline"]
    latency: Latency = report["latency"]
    targets = report["verdicts"]["targets"]

    def met(ok: bool) -> str:
        return "[green]yes[/green]" if ok else "[red]NO[/red]"

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:,.1f} ms"

    table = Table(
        title=f"ampc pipeline, {pipe.events:,} events, {report['machine']['cores']} cores"
    )
    for column in ("metric", "value", "target", "met?"):
        table.add_column(column)
    flag = "" if pipe.completed else " (INCOMPLETE)"
    table.add_row(
        "pipeline throughput (inbox -> state)",
        f"{pipe.events_per_s:,.0f} events/s{flag}",
        f">= {THROUGHPUT_RATIO_TARGET} x raw = {THROUGHPUT_RATIO_TARGET * raw.events_per_s:,.0f}",
        met(targets["throughput_ratio"]["met"]),
    )
    flag = "" if raw.completed else " (INCOMPLETE)"
    table.add_row(
        "raw aiokafka baseline (2 hops)", f"{raw.events_per_s:,.0f} events/s{flag}", "", ""
    )
    floor: Throughput = report["faust_floor"]
    flag = "" if floor.completed else " (INCOMPLETE)"
    table.add_row(
        "faust floor (the raw loop's work in faust agents)",
        f"{floor.events_per_s:,.0f} events/s{flag}",
        "",
        "",
    )
    table.add_row(
        "faust floor / raw", f"{report['verdicts']['ratio_faust_floor_to_raw']:.2f}", "", ""
    )
    table.add_row(
        "pipeline / raw",
        f"{report['verdicts']['ratio_pipeline_to_raw']:.2f}",
        f">= {THROUGHPUT_RATIO_TARGET}",
        met(targets["throughput_ratio"]["met"]),
    )
    for result in (pipe, floor, raw):
        hop = result.first_hop_events_per_s
        table.add_row(
            f"{result.label}: first hop (canonical visible)",
            "-" if hop is None else f"{hop:,.0f} events/s",
            "",
            "",
        )
    table.add_row(
        "latency load (half of pipeline rate)",
        f"{latency.achieved_rate:,.0f} events/s for {latency.seconds:.0f} s",
        "",
        "",
    )
    table.add_row("latency p50", ms(latency.p50_ms), "", "")
    table.add_row("latency p95", ms(latency.p95_ms), "", "")
    table.add_row(
        "latency p99",
        ms(latency.p99_ms),
        f"<= {P99_TARGET_MS:.0f} ms",
        met(targets["p99_latency_ms_at_half_load"]["met"]),
    )
    table.add_row("latency: state seen / sent", f"{latency.observed} / {latency.sent}", "", "")
    raw_latency: Latency | None = report.get("raw_latency")
    floor_latency: Latency | None = report.get("faust_floor_latency")
    for label, other in (("raw loop", raw_latency), ("faust floor", floor_latency)):
        if other is not None:
            table.add_row(
                f"{label} latency p50 / p95 / p99, same rate",
                " / ".join(ms(x) for x in (other.p50_ms, other.p95_ms, other.p99_ms)),
                "",
                "",
            )
    legs = (("services", latency), ("raw loop", raw_latency), ("faust floor", floor_latency))
    for label, measured in legs:
        for leg, cuts in (measured.legs_ms if measured is not None else {}).items():
            if cuts:
                table.add_row(
                    f"{label}, {LEGS[leg]}: p50 / p95 / p99",
                    " / ".join(ms(cuts[q]) for q in ("p50", "p95", "p99")),
                    "",
                    "",
                )
    console.print(table)

    cpu = Table(title="CPU per process: % of one core (2 cores = 200 %), ms of CPU per event")
    columns = ("process", "raw run", "raw ms/event", "floor run", "floor ms/event")
    for column in (*columns, "pipeline run", "pipeline ms/event", "latency run"):
        cpu.add_column(column)
    for name in dict.fromkeys([*raw.cpu, *floor.cpu, *pipe.cpu]):

        def share(phase: dict[str, dict[str, float]], process: str = name) -> str:
            entry = phase.get(process)
            return "" if entry is None else f"{entry['percent_of_one_core']:.0f} %"

        def cost(per_event: dict[str, float], process: str = name) -> str:
            return f"{per_event[process]:.2f}" if process in per_event else ""

        cpu.add_row(
            name,
            share(raw.cpu),
            cost(raw.cpu_ms_per_event),
            share(floor.cpu),
            cost(floor.cpu_ms_per_event),
            share(pipe.cpu),
            cost(pipe.cpu_ms_per_event),
            share(latency.cpu),
        )
    console.print(cpu)
    if pipe.in_agent_seconds_per_event:
        inside = ", ".join(
            f"{name} {1000 * s:.2f} ms" for name, s in pipe.in_agent_seconds_per_event.items()
        )
        console.print(f"time inside the agents per event: {inside}")
    for result in (raw, floor, pipe):
        if result.deadletters:
            console.print(
                f"[red]{result.label}: {result.deadletters} dead letters[/red], e.g. "
                f"{result.deadletter_sample}"
            )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=20_000, help="N inbox events (20000)")
    parser.add_argument(
        "--latency-seconds", type=float, default=20.0, help="length of the latency run (20)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON")
    parser.add_argument(
        "--timeout", type=float, default=150.0, help="give up on a throughput run after (150 s)"
    )
    # The raw baseline's stages run in their own processes through this same file.
    parser.add_argument("--raw-stage", choices=("gateway", "ledger"), help=argparse.SUPPRESS)
    # So do the faust floor's (their settings come from the environment).
    parser.add_argument("--faust-stage", choices=("gateway", "ledger"), help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.events < 20:
        parser.error("--events must be at least 20 (one round of the mix)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.raw_stage:
        asyncio.run(raw_stage(args.raw_stage, args.bootstrap, args.prefix))
        return 0
    if args.faust_stage:
        faust_stage(args.faust_stage)
        return 0
    report: dict[str, Any] = {
        "benchmark": "pipeline",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "parameters": {"events": args.events, "latency_seconds": args.latency_seconds},
    }
    work = Path(tempfile.mkdtemp(prefix="ampc-bench-pipeline-"))
    ok = False
    try:
        with own_broker(work) as info:
            report |= asyncio.run(benchmark(args, info, work))
        ok = True
    finally:
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            console.print(f"[red]failed; logs kept in {work}[/red]")
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report["verdicts"] = verdicts(
        report["raw"], report["faust_floor"], report["pipeline"], report["latency"]
    )
    print_report(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(as_json(report), indent=2) + "\n")
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
