"""The embedded Kafka broker (KRaft): configure, start or join one node, check it answers.

`ensure_kafka` runs the single combined controller+broker node of `make up` and the tests;
`local.services.kafka_cluster` runs three of them through the same `_ensure_node` path.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from local.services.processes import (
    LOCAL_DIR,
    PROJECT_ROOT,
    EmbeddedService,
    ServiceError,
    _ensure_embedded,
    _open_log,
    _Record,
    _ServiceFiles,
    port_open,
    wait_for_port,
)

log = logging.getLogger(__name__)

KAFKA_LIBS_DIR = LOCAL_DIR / "kafka" / "libs"
KAFKA_LOG4J_CONFIG = PROJECT_ROOT / "scripts" / "kafka" / "log4j2.xml"
KAFKA_START_TIMEOUT = 120.0  # first start on a cold CI machine: JVM + KRaft bootstrap


def _split_bootstrap(bootstrap: str) -> tuple[str, int]:
    """Host and port of the first address of a bootstrap list ("PLAINTEXT://h:p,h2:p2")."""
    first = bootstrap.split(",")[0].strip()
    first = re.sub(r"^[A-Za-z_]+://", "", first)
    host, sep, port = first.rpartition(":")
    if not sep or not port.isdigit():
        raise ServiceError(f"KAFKA_BOOTSTRAP_SERVERS must be host:port[,host:port…], got {bootstrap!r}")
    return host.strip("[]"), int(port)


def _admin(bootstrap: str):
    from confluent_kafka.admin import AdminClient

    # librdkafka's own log lines go to Python logging (they are only served on poll(), so a
    # short-lived admin client stays quiet instead of printing reconnect noise to stderr).
    return AdminClient(
        {"bootstrap.servers": bootstrap, "socket.connection.setup.timeout.ms": 5000},
        logger=logging.getLogger("local.services.librdkafka"),
    )


def _kafka_answers(bootstrap: str, timeout: float) -> str | None:
    """None when a broker answers a metadata request, else the reason it did not."""
    from confluent_kafka import KafkaException

    try:
        _admin(bootstrap).list_topics(timeout=timeout)
        return None
    except KafkaException as exc:
        return str(exc.args[0] if exc.args else exc)


def kafka_version() -> str | None:
    """The Kafka version installed by `make setup`, or None when it is not installed."""
    try:
        return (KAFKA_LIBS_DIR.parent / "VERSION").read_text().strip()
    except OSError:
        return None


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home, "bin", "java") if java_home else None
    if candidate and candidate.is_file():
        return str(candidate)
    found = shutil.which("java")
    if not found:
        raise ServiceError("no `java` on PATH (and JAVA_HOME unset): run `make setup`")
    return found


def _kafka_cluster_id() -> str:
    # What `kafka-storage.sh random-uuid` prints: a random UUID, base64url without padding,
    # never starting with "-" (it would parse as an option).
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


@dataclass(frozen=True)
class Replication:
    """Replication defaults of a cluster: its topics' replicas and the acks=all quorum."""

    factor: int = 1
    min_insync_replicas: int = 1


SINGLE_NODE = Replication()


@dataclass(frozen=True)
class KafkaNode:
    """One local KRaft node (controller and broker in one JVM): its id and its two ports."""

    node_id: int
    port: int
    controller_port: int
    # Service name: pid file, log and data dir under the state dir ("kafka" for the single node).
    name: str = "kafka"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def listeners(self) -> str:
        return f"127.0.0.1:{self.port},127.0.0.1:{self.controller_port}"


@dataclass(frozen=True)
class KafkaQuorum:
    """How a node finds its controllers: one standalone node, or a static quorum of voters."""

    voters: tuple[KafkaNode, ...]
    replication: Replication = SINGLE_NODE

    @property
    def standalone(self) -> bool:
        return len(self.voters) == 1

    def properties(self) -> str:
        """The quorum line of server.properties."""
        if self.standalone:  # dynamic quorum of one, formatted with --standalone
            return f"controller.quorum.bootstrap.servers=127.0.0.1:{self.voters[0].controller_port}"
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.voters)
        return f"controller.quorum.voters={voters}"

    def formatted_for(self, node: KafkaNode, cluster_id: str | None) -> str:
        """What a node's log dir was formatted for: a change means it must be formatted afresh."""
        if self.standalone:
            return node.listeners  # as before clusters existed: existing single-node dirs stay valid
        return f"{node.listeners}|{self.properties()}|{cluster_id}"


def _kafka_properties(node: KafkaNode, quorum: KafkaQuorum, data_dir: Path) -> str:
    factor, min_isr = quorum.replication.factor, quorum.replication.min_insync_replicas
    return f"""\
# Written by local/services at each start of the embedded broker; edits are overwritten.
process.roles=broker,controller
node.id={node.node_id}
{quorum.properties()}
listeners=PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{node.port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={data_dir}
num.partitions=3
auto.create.topics.enable=false
default.replication.factor={factor}
min.insync.replicas={min_isr}
offsets.topic.replication.factor={factor}
offsets.topic.num.partitions=10
transaction.state.log.replication.factor={factor}
transaction.state.log.min.isr={min_isr}
share.coordinator.state.topic.replication.factor={factor}
share.coordinator.state.topic.min.isr={min_isr}
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
log.retention.hours=24
log.segment.bytes=67108864
"""


def ensure_kafka(
    bootstrap: str | None = None, *, state_dir: Path = LOCAL_DIR, timeout: float = KAFKA_START_TIMEOUT
) -> EmbeddedService | None:
    """Make sure a Kafka broker answers at `bootstrap` (default: $KAFKA_BOOTSTRAP_SERVERS).

    Returns None when a broker that is not ours already answers there; otherwise starts
    (or joins) the embedded single-node KRaft broker on 127.0.0.1:<port> with its
    controller on <port+1> ($KAFKA_CONTROLLER_PORT), waits until a metadata request
    succeeds and returns its handle. Raises `ServiceError` with the reason otherwise.
    """
    if bootstrap is None:
        from shared.config import Settings

        bootstrap = Settings().kafka_bootstrap_servers
    host, port = _split_bootstrap(bootstrap)
    node = KafkaNode(1, port, int(os.environ.get("KAFKA_CONTROLLER_PORT") or port + 1))
    return _ensure_node(
        node, KafkaQuorum((node,)), host=host, bootstrap=bootstrap, state_dir=state_dir, timeout=timeout
    )


def _ensure_node(
    node: KafkaNode,
    quorum: KafkaQuorum,
    *,
    host: str = "127.0.0.1",
    bootstrap: str | None = None,
    state_dir: Path = LOCAL_DIR,
    timeout: float = KAFKA_START_TIMEOUT,
    cluster_id: str | None = None,
    heap: str = "-Xms256m -Xmx512m",
) -> EmbeddedService | None:
    """Start or join one node of `quorum` (see `ensure_kafka`); `cluster_id` formats a node of a cluster.

    `heap` is the JVM's unless $KAFKA_HEAP_OPTS says otherwise.
    """
    port, address = node.port, node.address
    files = _ServiceFiles(Path(state_dir), node.name)
    broker_dir = files.state_dir / node.name

    def check_foreign() -> None:
        reason = _kafka_answers(bootstrap or address, timeout=15)
        if reason:
            raise ServiceError(f"something answers at {host}:{port} but it is not a usable Kafka broker: {reason}")

    def start() -> tuple[subprocess.Popen, _Record]:
        if not any(KAFKA_LIBS_DIR.glob("kafka_2.13-*.jar")):
            raise ServiceError(f"Kafka is not installed in {KAFKA_LIBS_DIR}: run `make setup`")
        if port_open("127.0.0.1", node.controller_port):
            raise ServiceError(
                f"the embedded broker's controller port {node.controller_port} is taken by another program: "
                "set KAFKA_CONTROLLER_PORT to a free port"
            )
        java, classpath = _java(), f"{KAFKA_LIBS_DIR}/*"
        data_dir, logs_dir = broker_dir / "data", broker_dir / "logs"
        properties = broker_dir / "server.properties"
        logs_dir.mkdir(parents=True, exist_ok=True)
        properties.write_text(_kafka_properties(node, quorum, data_dir))
        jvm_logging = [f"-Dlog4j2.configurationFile={KAFKA_LOG4J_CONFIG}", f"-Dkafka.logs.dir={logs_dir}"]

        # KRaft stores its own listener (and its quorum) in the metadata log: a node formatted
        # for other ports cannot start, so the (disposable, local) data is formatted afresh.
        signature = quorum.formatted_for(node, cluster_id)
        formatted_for = broker_dir / "formatted-for"
        if (data_dir / "meta.properties").exists():
            previous = formatted_for.read_text().strip() if formatted_for.exists() else ""
            if previous != signature:
                log.warning("kafka: listeners changed (%s -> %s): re-formatting %s", previous, signature, data_dir)
                shutil.rmtree(data_dir)
        if not (data_dir / "meta.properties").exists():
            shutil.rmtree(data_dir, ignore_errors=True)
            # A standalone node is a dynamic quorum of one; cluster nodes share a static voter list.
            mode = ["--standalone"] if quorum.standalone else []
            fmt = subprocess.run(
                [java, *jvm_logging, "-cp", classpath, "kafka.tools.StorageTool", "format",
                 "-t", cluster_id or _kafka_cluster_id(), "-c", str(properties), *mode],
                capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, check=False,
            )  # fmt: skip
            if fmt.returncode != 0:
                raise ServiceError(f"formatting the Kafka log dir failed:\n{fmt.stdout}{fmt.stderr}")
            formatted_for.write_text(signature + "\n")

        jvm_heap = (os.environ.get("KAFKA_HEAP_OPTS") or heap).split()
        log.info("starting embedded Kafka %s at %s (log %s)", kafka_version() or "", address, files.log_file)
        with _open_log(files.log_file, f"kafka {address}") as output:
            process = subprocess.Popen(
                [java, *jvm_heap, "-XX:+UseG1GC", "-Djava.awt.headless=true", *jvm_logging,
                 "-cp", classpath, "kafka.Kafka", str(properties)],
                stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                cwd=broker_dir, start_new_session=True,  # Ctrl-C in a terminal must not reach it
            )  # fmt: skip
        return process, _Record(process.pid, address, str(properties), "SIGTERM")

    def wait_ready(process: subprocess.Popen | None) -> None:
        alive = (lambda: process.poll() is None) if process is not None else None
        deadline = time.monotonic() + timeout
        wait_for_port("127.0.0.1", port, timeout, alive=alive)
        while (reason := _kafka_answers(address, timeout=2)) is not None:
            if alive is not None and not alive():
                raise ServiceError("the embedded Kafka broker exited during start-up")
            if time.monotonic() > deadline:
                raise ServiceError(f"the embedded Kafka broker is not ready after {timeout:.0f} s: {reason}")
            time.sleep(0.2)

    def ensure() -> EmbeddedService | None:
        return _ensure_embedded(
            files,
            host=host,
            port=port,
            address=address,
            start=start,
            wait_ready=wait_ready,
            check_foreign=check_foreign,
        )

    try:
        return ensure()
    except ServiceError as exc:
        # A broker killed mid-write (SIGKILL, power loss) can leave a torn metadata log that
        # KRaft refuses for ever. The local data is disposable: keep it aside, start afresh.
        if "CorruptRecordException" not in str(exc):
            raise
        aside = broker_dir / f"data.corrupt-{time.strftime('%Y%m%d-%H%M%S')}"
        log.warning(
            "kafka: the log dir is corrupt (%s); moved to %s, starting with an empty one",
            str(exc).splitlines()[0],
            aside,
        )
        (broker_dir / "data").rename(aside)
        return ensure()
