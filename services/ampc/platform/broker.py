"""A real Apache Kafka broker on loopback, resolved from Maven Central and run in KRaft mode.

`start` formats storage and launches one node (or three, with replication 3 and
min.insync.replicas 2) as background Java processes, waits until the cluster answers metadata
requests with every node, and records what it started in `<data_dir>/broker.json` so that `stop`
and `status` work from another process. Nothing here is a mock: tests run against this broker.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

KAFKA_VERSION: Final = "4.1.1"
DEFAULT_BROKER_PORT: Final = 19092
DEFAULT_CONTROLLER_PORT: Final = 19192
STATE_FILE: Final = "broker.json"
REPO_ROOT: Final = Path(__file__).resolve().parents[3]
POM: Final = REPO_ROOT / "deploy" / "kafka" / "pom.xml"


class BrokerError(RuntimeError):
    """The broker could not be resolved, started, reached or stopped; the message says why."""


@dataclass(frozen=True, slots=True)
class NodeInfo:
    node_id: int
    pid: int
    broker_port: int
    controller_port: int
    log_file: str


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    """A running local cluster, as recorded in the state file."""

    kafka_version: str
    cluster_id: str
    data_dir: str
    nodes: tuple[NodeInfo, ...]

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"127.0.0.1:{node.broker_port}" for node in self.nodes)

    def alive_nodes(self) -> list[NodeInfo]:
        return [node for node in self.nodes if _alive(node.pid)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # An orphaned node that has exited stays a zombie until init reaps it: that is not alive.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        state = ""
    if state in {"Z", "X"}:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it is our own child
        return False
    # A zombie child of this very process has exited but is not reaped yet.
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return waited == 0


def require_java() -> str:
    """The java executable, or a one-line error saying what to install."""
    java = shutil.which("java")
    if java is None:
        raise BrokerError(
            "Java 17 or newer is needed to run Kafka: install a JDK "
            "(Debian: apt-get install openjdk-17-jre-headless)"
        )
    output = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    match = re.search(r'version "(\d+)', output)
    if match and int(match.group(1)) < 17:
        raise BrokerError(f"Kafka {KAFKA_VERSION} needs Java 17 or newer; found {output.strip()}")
    return java


def resolve_kafka(cache_dir: Path) -> Path:
    """Directory holding the Kafka broker and tools jars, resolved with Maven once and cached."""
    libs = cache_dir / f"kafka-{KAFKA_VERSION}" / "libs"
    marker = libs / ".complete"
    if marker.exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError(
            "Maven is needed once to fetch the Kafka jars from Maven Central: install it "
            "(Debian: apt-get install maven)"
        )
    if not POM.exists():
        raise BrokerError(f"cannot find {POM}: run ampc from a checkout of the repository")
    staging = libs.with_name("libs.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(POM),
            f"-Dkafka.version={KAFKA_VERSION}",
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
            "-DincludeScope=runtime",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
        raise BrokerError("Maven could not resolve Kafka: " + " | ".join(tail))
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    marker.write_text(KAFKA_VERSION)
    return libs


def _cluster_id() -> str:
    """A KRaft cluster id (16 random bytes, URL-safe base64), never starting with '-', which
    the storage tool would read as an option."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def read_state(data_dir: Path) -> ClusterInfo | None:
    """The cluster recorded in `data_dir`, or None if nothing was started there."""
    path = data_dir / STATE_FILE
    if not path.exists():
        return None
    raw = json.loads(path.read_text())
    nodes = tuple(NodeInfo(**node) for node in raw.pop("nodes"))
    return ClusterInfo(nodes=nodes, **raw)


def _server_properties(
    node_id: int, ports: Sequence[tuple[int, int]], data: Path, replication: int
) -> str:
    broker_port, controller_port = ports[node_id - 1]
    voters = ",".join(f"{i + 1}@127.0.0.1:{c}" for i, (_, c) in enumerate(ports))
    min_isr = 2 if replication >= 3 else 1
    settings = {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://127.0.0.1:{broker_port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{broker_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data),
        "num.partitions": "1",
        "default.replication.factor": str(replication),
        "min.insync.replicas": str(min_isr),
        "offsets.topic.replication.factor": str(replication),
        # Fewer offset partitions than the default 50: a local broker starts groups faster.
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": str(replication),
        "transaction.state.log.min.isr": str(min_isr),
        "share.coordinator.state.topic.replication.factor": str(replication),
        "share.coordinator.state.topic.min.isr": str(min_isr),
        "group.initial.rebalance.delay.ms": "0",
        # Every topic is declared in ampc's registry; a typo must fail, not create a topic.
        "auto.create.topics.enable": "false",
        "log.retention.check.interval.ms": "60000",
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


_LOG4J2: Final = """\
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""


def start(
    data_dir: Path,
    cache_dir: Path,
    nodes: int = 1,
    broker_port: int | None = DEFAULT_BROKER_PORT,
    heap: str = "768m",
    timeout_s: float = 90.0,
) -> ClusterInfo:
    """Start a local KRaft cluster of 1 or 3 nodes; return once every node answers.

    `broker_port=None` picks free ports (tests); otherwise node n listens on broker_port + n - 1.
    If a cluster recorded in `data_dir` is still running it is returned as it is.
    """
    if nodes not in (1, 3):
        raise BrokerError(f"a local cluster has 1 or 3 nodes, not {nodes}")
    existing = read_state(data_dir)
    if existing is not None and existing.alive_nodes():
        if len(existing.alive_nodes()) == len(existing.nodes):
            return existing
        raise BrokerError(
            f"a partly running cluster is recorded in {data_dir}; run `ampc broker stop` first"
        )
    java = require_java()
    libs = resolve_kafka(cache_dir)
    if broker_port is None:
        ports = [(free_port(), free_port()) for _ in range(nodes)]
    else:
        ports = [
            (broker_port + i, DEFAULT_CONTROLLER_PORT + (broker_port - DEFAULT_BROKER_PORT) + i)
            for i in range(nodes)
        ]
    busy = [port for pair in ports for port in pair if _port_in_use(port)]
    if busy:
        raise BrokerError(
            f"port(s) {', '.join(map(str, busy))} on 127.0.0.1 are in use; stop what holds them "
            "or choose another --port"
        )
    # A fresh cluster every start: formatting keeps no stale metadata from an older run.
    cluster_dir = data_dir / "kafka"
    shutil.rmtree(cluster_dir, ignore_errors=True)
    # The services' local state (RocksDB tables, faust offsets) belongs to the old cluster.
    shutil.rmtree(data_dir / "services", ignore_errors=True)
    cluster_dir.mkdir(parents=True)
    cluster_id = _cluster_id()
    replication = 3 if nodes == 3 else 1
    classpath = f"{libs}/*"
    started: list[NodeInfo] = []
    try:
        for node_id in range(1, nodes + 1):
            node_dir = cluster_dir / f"node-{node_id}"
            node_dir.mkdir()
            props = node_dir / "server.properties"
            props.write_text(_server_properties(node_id, ports, node_dir / "data", replication))
            log = node_dir / "server.log"
            log4j = node_dir / "log4j2.properties"
            log4j.write_text(_LOG4J2.format(log=log))
            jvm = [
                f"-Xmx{heap}",
                "-Xms128m",
                "-XX:+UseG1GC",
                "-XX:MaxGCPauseMillis=20",
                "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile=file:{log4j}",
            ]
            _run_tool(
                [
                    java,
                    *jvm,
                    "-cp",
                    classpath,
                    "kafka.tools.StorageTool",
                    "format",
                    f"--cluster-id={cluster_id}",
                    "-c",
                    str(props),
                ],
                "format storage",
            )
            console = (node_dir / "console.log").open("ab")
            process = subprocess.Popen(
                [java, *jvm, "-cp", classpath, "kafka.Kafka", str(props)],
                stdout=console,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # outlives the CLI that started it
            )
            console.close()
            started.append(
                NodeInfo(
                    node_id=node_id,
                    pid=process.pid,
                    broker_port=ports[node_id - 1][0],
                    controller_port=ports[node_id - 1][1],
                    log_file=str(log),
                )
            )
        info = ClusterInfo(
            kafka_version=KAFKA_VERSION,
            cluster_id=cluster_id,
            data_dir=str(data_dir),
            nodes=tuple(started),
        )
        (data_dir / STATE_FILE).write_text(json.dumps(asdict(info), indent=2, default=list) + "\n")
        wait_until_ready(info, timeout_s)
        return info
    except BaseException:
        _terminate_all([node.pid for node in started], grace_s=5)
        raise


def _run_tool(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-3:]
        raise BrokerError(f"Kafka could not {what}: " + " | ".join(tail))


def wait_until_ready(info: ClusterInfo, timeout_s: float) -> None:
    """Block until every node is alive and the cluster reports all of them in its metadata."""
    deadline = time.monotonic() + timeout_s
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        dead = [node for node in info.nodes if not _alive(node.pid)]
        if dead:
            raise BrokerError(
                f"Kafka node {dead[0].node_id} exited during start-up; see {dead[0].log_file}"
            )
        try:
            if asyncio.run(_cluster_size(info.bootstrap_servers)) == len(info.nodes):
                return
            last_error = "not every node has joined yet"
        except (TimeoutError, KafkaError, OSError) as error:
            last_error = f"{type(error).__name__}: {error}"
        time.sleep(0.5)
    raise BrokerError(
        f"Kafka did not become ready within {timeout_s:.0f} s ({last_error}); "
        f"see {info.nodes[0].log_file}"
    )


async def _cluster_size(bootstrap_servers: str) -> int:
    # Refused connections are expected while the JVM starts; aiokafka would log each one.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=5000)
    await asyncio.wait_for(admin.start(), timeout=10)
    try:
        cluster = await asyncio.wait_for(admin.describe_cluster(), timeout=10)
        return len(cluster["brokers"])
    finally:
        await admin.close()


def _terminate_all(pids: list[int], grace_s: float) -> None:
    """SIGTERM every node at once (Kafka shuts down cleanly on it), SIGKILL what outlives the
    grace period. All at once, because a node shutting down alone waits for a quorum that the
    others, already gone, can no longer give it."""
    living = [pid for pid in pids if _alive(pid)]
    for pid in living:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while living and time.monotonic() < deadline:
        living = [pid for pid in living if _alive(pid)]
        time.sleep(0.1)
    for pid in living:
        os.kill(pid, signal.SIGKILL)


def stop(data_dir: Path, grace_s: float = 30.0) -> ClusterInfo | None:
    """Stop the cluster recorded in `data_dir` cleanly; None if none was recorded."""
    info = read_state(data_dir)
    if info is None:
        return None
    _terminate_all([node.pid for node in info.nodes], grace_s)
    (data_dir / STATE_FILE).unlink(missing_ok=True)
    return info


def kill_node(info: ClusterInfo, node_id: int) -> None:
    """kill -9 one node: for fault tests that need an unclean broker death."""
    node = next(n for n in info.nodes if n.node_id == node_id)
    if _alive(node.pid):
        os.kill(node.pid, signal.SIGKILL)
