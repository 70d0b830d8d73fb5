"""The embedded Kafka broker (KRaft, one node): configure, start or join, check it answers."""

from __future__ import annotations

import base64
import logging
import os
import re
import shutil
import subprocess
import time
import uuid
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


def _kafka_properties(port: int, controller_port: int, data_dir: Path) -> str:
    return f"""\
# Written by local/services.py at each start of the embedded broker; edits are overwritten.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={data_dir}
num.partitions=3
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
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
    address = f"127.0.0.1:{port}"
    files = _ServiceFiles(Path(state_dir), "kafka")
    broker_dir = files.state_dir / "kafka"

    def check_foreign() -> None:
        reason = _kafka_answers(bootstrap, timeout=15)
        if reason:
            raise ServiceError(f"something answers at {host}:{port} but it is not a usable Kafka broker: {reason}")

    def start() -> tuple[subprocess.Popen, _Record]:
        if not any(KAFKA_LIBS_DIR.glob("kafka_2.13-*.jar")):
            raise ServiceError(f"Kafka is not installed in {KAFKA_LIBS_DIR}: run `make setup`")
        controller_port = int(os.environ.get("KAFKA_CONTROLLER_PORT") or port + 1)
        if port_open("127.0.0.1", controller_port):
            raise ServiceError(
                f"the embedded broker's controller port {controller_port} is taken by another program: "
                "set KAFKA_CONTROLLER_PORT to a free port"
            )
        java, classpath = _java(), f"{KAFKA_LIBS_DIR}/*"
        data_dir, logs_dir = broker_dir / "data", broker_dir / "logs"
        properties = broker_dir / "server.properties"
        logs_dir.mkdir(parents=True, exist_ok=True)
        properties.write_text(_kafka_properties(port, controller_port, data_dir))
        jvm_logging = [f"-Dlog4j2.configurationFile={KAFKA_LOG4J_CONFIG}", f"-Dkafka.logs.dir={logs_dir}"]

        # KRaft stores its own listener in the metadata log: a broker formatted for other
        # ports cannot start, so the (disposable, local) data is formatted afresh.
        listeners = f"127.0.0.1:{port},127.0.0.1:{controller_port}"
        formatted_for = broker_dir / "formatted-for"
        if (data_dir / "meta.properties").exists():
            previous = formatted_for.read_text().strip() if formatted_for.exists() else ""
            if previous != listeners:
                log.warning("kafka: listeners changed (%s -> %s): re-formatting %s", previous, listeners, data_dir)
                shutil.rmtree(data_dir)
        if not (data_dir / "meta.properties").exists():
            shutil.rmtree(data_dir, ignore_errors=True)
            fmt = subprocess.run(
                [java, *jvm_logging, "-cp", classpath, "kafka.tools.StorageTool", "format",
                 "-t", _kafka_cluster_id(), "-c", str(properties), "--standalone"],
                capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, check=False,
            )  # fmt: skip
            if fmt.returncode != 0:
                raise ServiceError(f"formatting the Kafka log dir failed:\n{fmt.stdout}{fmt.stderr}")
            formatted_for.write_text(listeners + "\n")

        heap = os.environ.get("KAFKA_HEAP_OPTS", "-Xms256m -Xmx512m").split()
        log.info("starting embedded Kafka %s at %s (log %s)", kafka_version() or "", address, files.log_file)
        with _open_log(files.log_file, f"kafka {address}") as output:
            process = subprocess.Popen(
                [java, *heap, "-XX:+UseG1GC", "-Djava.awt.headless=true", *jvm_logging,
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
