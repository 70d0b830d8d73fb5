"""Lifecycle of the embedded Kafka broker (KRaft) and PostgreSQL cluster of a local run.

`make up`, the test suite and the benchmarks call `ensure_kafka()` / `ensure_postgres()`.
When something that is not ours already answers at the configured address it is used as
is (`None` is returned). Otherwise the project's own broker / cluster (installed by
`make setup` under `.local/`) is started, or joined if another process of this project
started it, and an `EmbeddedService` handle is returned.

Sharing: a developer's `make up` and one or more test sessions may use the same embedded
service at once. Each handle holds a *lease*; `EmbeddedService.stop()` releases it and
stops the process only when no live lease is left. So a test session never stops the
broker of a running `make up`, and the last user cleans up. `stop_all()` (`make down`)
stops every embedded service of a state directory regardless of leases.

State directory (default `.local/`, git-ignored):
    kafka/libs/, kafka/VERSION       broker class path, resolved by scripts/setup.sh
    kafka/server.properties, kafka/data/, kafka/logs/server.log
    postgres/data/, postgres/superuser.password
    run/<name>.json                  pid file: pid, address, how to recognise the process
    run/<name>.leases/               one empty file per handle in use
    run/<name>.lock                  serialises start/stop between processes
    logs/<name>.log                  the process's stdout and stderr
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import ipaddress
import json
import logging
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse, urlunparse

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
LOCAL_DIR = PROJECT_ROOT / ".local"
KAFKA_LIBS_DIR = LOCAL_DIR / "kafka" / "libs"
KAFKA_LOG4J_CONFIG = PROJECT_ROOT / "scripts" / "kafka" / "log4j2.xml"
KAFKA_TOPICS_MANIFEST = PROJECT_ROOT / "infra" / "knative" / "base" / "kafkatopics.yaml"

# Used only when infra/knative/base/kafkatopics.yaml (the Strimzi KafkaTopics of the
# cluster, the single source of truth once it exists) is absent.
PROJECT_TOPICS: dict[str, int] = {
    "price-crawler.price.request": 6,
    "price-crawler.metadata.request": 3,
    "price-crawler.audit.request": 3,
    "price-crawler.price.updated": 3,
    "price-crawler.price.dead-letter": 1,
    "price-crawler.metadata.dead-letter": 1,
    "price-crawler.audit.dead-letter": 1,
}

# Settings of the project's own PostgreSQL cluster, passed as `-c name=value` on each start
# so that a change here applies at the next start. Sized for tests and benchmarks on a
# small machine.
POSTGRES_SETTINGS: dict[str, str] = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",  # TCP only: no socket-path length limit, no /var/run/postgresql
    "max_connections": "200",
    "shared_buffers": "256MB",
    # LOCAL DEV CLUSTER ONLY: a crash may lose the last few hundred ms of commits (never
    # corrupts; fsync stays on). Never use this setting for a real deployment.
    "synchronous_commit": "off",
    "timezone": "UTC",
    "log_timezone": "UTC",
    "log_line_prefix": "%m [%p] %q%u@%d ",
}
POSTGRES_SUPERUSER = "postgres"

KAFKA_START_TIMEOUT = 120.0  # first start on a cold CI machine: JVM + KRaft bootstrap
POSTGRES_START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


class ServiceError(RuntimeError):
    """An embedded service could not be started, reached or stopped; the message says why."""


# --------------------------------------------------------------------------------------------
# Small network helpers


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when a TCP connection to host:port succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, timeout: float = 30.0, *, alive: Callable[[], bool] | None = None) -> None:
    """Wait until host:port accepts TCP connections; raise `ServiceError` on timeout.

    `alive`, if given, is polled too: when it returns False (the process that should open
    the port died) waiting stops at once.
    """
    deadline = time.monotonic() + timeout
    while not port_open(host, port):
        if alive is not None and not alive():
            raise ServiceError(f"the process that should listen on {host}:{port} exited")
        if time.monotonic() > deadline:
            raise ServiceError(f"nothing listens on {host}:{port} after {timeout:.0f} s")
        time.sleep(0.1)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _is_local_host(host: str) -> bool:
    if host in ("", "localhost", "0.0.0.0", "::"):
        return True
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


# --------------------------------------------------------------------------------------------
# Pid files, leases, locks


@dataclass(frozen=True)
class _Record:
    """What a pid file says about a running embedded service."""

    pid: int
    address: str
    marker: str  # a string in the process's command line (its data dir / config path)
    stop_signal: str


@dataclass(frozen=True)
class _ServiceFiles:
    state_dir: Path
    name: str

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.json"

    @property
    def lease_dir(self) -> Path:
        return self.run_dir / f"{self.name}.leases"

    @property
    def lock_file(self) -> Path:
        return self.run_dir / f"{self.name}.lock"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "logs" / f"{self.name}.log"

    def read(self) -> _Record | None:
        """The record of the running service, or None (a stale pid file is removed)."""
        try:
            record = _Record(**json.loads(self.pid_file.read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as exc:
            log.warning("ignoring unreadable pid file %s: %s", self.pid_file, exc)
            record = None
        if record is not None and _process_running(record.pid, record.marker):
            return record
        self.pid_file.unlink(missing_ok=True)
        shutil.rmtree(self.lease_dir, ignore_errors=True)
        return None

    def write(self, record: _Record) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.pid_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(record.__dict__))
        tmp.replace(self.pid_file)

    def forget(self) -> None:
        self.pid_file.unlink(missing_ok=True)
        shutil.rmtree(self.lease_dir, ignore_errors=True)

    def add_lease(self) -> Path:
        self.lease_dir.mkdir(parents=True, exist_ok=True)
        lease = self.lease_dir / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        lease.touch()
        return lease

    def live_leases(self) -> list[Path]:
        """Leases whose holder process is alive; those of dead holders are removed."""
        live = []
        for lease in self.lease_dir.glob("*-*") if self.lease_dir.is_dir() else ():
            holder = int(lease.name.split("-", 1)[0])
            if process_alive(holder):
                live.append(lease)
            else:
                lease.unlink(missing_ok=True)
        return live

    @contextlib.contextmanager
    def locked(self, timeout: float = 180.0) -> Iterator[None]:
        """Hold this service's inter-process lock (start/stop of one service at a time)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.lock_file, "a") as handle:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise ServiceError(f"another process has held {self.lock_file} for {timeout:.0f} s") from None
                    time.sleep(0.1)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def process_alive(pid: int) -> bool:
    """True when process `pid` exists and is not a zombie (an unreaped child counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    except OSError:
        return True  # no /proc access: assume alive, the signal will tell
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def _process_running(pid: int, marker: str) -> bool:
    """True when `pid` is alive and is still the process we started (not a reused pid)."""
    if not process_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return marker in cmdline


def _terminate(pid: int, stop_signal: signal.Signals, timeout: float, process: subprocess.Popen | None = None) -> None:
    """Ask `pid` to stop with `stop_signal`; SIGKILL its process group after `timeout`."""

    def running() -> bool:
        if process is not None:
            return process.poll() is None
        return process_alive(pid)

    try:
        os.kill(pid, stop_signal)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while running() and time.monotonic() < deadline:
        time.sleep(0.1)
    if not running():
        return
    log.warning("pid %d did not stop within %.0f s after %s: killing it", pid, timeout, stop_signal.name)
    with contextlib.suppress(ProcessLookupError):
        # Embedded services are session leaders: killing the group also ends PG's backends.
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while running() and time.monotonic() < deadline:
        time.sleep(0.1)


def _log_tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text)


class EmbeddedService:
    """A running embedded Kafka broker or PostgreSQL cluster, leased by this process.

    `address` is where it listens ("127.0.0.1:<port>"); `log_path` has its output.
    `started` is True when this handle's `ensure_*` call started the process, False when it
    joined one that another process of this project had started.
    """

    def __init__(
        self,
        files: _ServiceFiles,
        record: _Record,
        lease: Path,
        *,
        address: str,
        started: bool,
        process: subprocess.Popen | None,
    ):
        self.name = files.name
        self.address = address
        self.pid = record.pid
        self.started = started
        self.log_path = files.log_file
        self._files = files
        self._record = record
        self._lease: Path | None = lease
        self._process = process

    def __repr__(self) -> str:
        return f"EmbeddedService({self.name!r}, {self.address!r}, pid={self.pid}, started={self.started})"

    def stop(self, timeout: float = STOP_TIMEOUT) -> bool:
        """Release this handle; stop the process if no other user is left.

        Returns True when the process was stopped, False when it was left running for its
        other users (or this handle was already released).
        """
        if self._lease is None:
            return False
        with self._files.locked():
            self._lease.unlink(missing_ok=True)
            self._lease = None
            others = self._files.live_leases()
            if others:
                log.info("%s left running: still used by %d other lease(s)", self.name, len(others))
                return False
            if _process_running(self._record.pid, self._record.marker):
                log.info("stopping %s (pid %d)", self.name, self.pid)
                _terminate(self.pid, signal.Signals[self._record.stop_signal], timeout, self._process)
            elif self._process is not None:
                self._process.poll()
            self._files.forget()
            return True


def _ensure_embedded(
    files: _ServiceFiles,
    *,
    host: str,
    port: int,
    address: str,
    start: Callable[[], tuple[subprocess.Popen, _Record]],
    wait_ready: Callable[[subprocess.Popen | None], None],
    check_foreign: Callable[[], None],
    after_ready: Callable[[], None] = lambda: None,
) -> EmbeddedService | None:
    """The common flow of ensure_kafka / ensure_postgres (see the module docstring)."""
    if not _is_local_host(host):  # another machine's server: use it or say why not
        if not port_open(host, port, timeout=3):
            raise ServiceError(
                f"{files.name} at {host}:{port} is not reachable, and an embedded one can only "
                "be started on this machine (localhost / 127.0.0.1)"
            )
        check_foreign()
        return None
    with files.locked():
        record = files.read()
        if record is not None and record.address != address:
            raise ServiceError(
                f"the embedded {files.name} of {files.state_dir} already runs at {record.address}, "
                f"not {address}: stop it first (make down) or point the configuration at it"
            )
        if record is None and port_open(host, port):
            check_foreign()
            log.info("%s: using the server already answering at %s:%d", files.name, host, port)
            return None
        if record is None:
            process, record = start()
            files.write(record)
            try:
                wait_ready(process)
                after_ready()
            except BaseException as exc:  # Ctrl-C included: never leave a half-started server
                _terminate(process.pid, signal.Signals[record.stop_signal], 10, process)
                files.forget()
                if isinstance(exc, ServiceError):
                    raise ServiceError(
                        f"{exc}\n  log {files.log_file} ends with:\n{_log_tail(files.log_file)}"
                    ) from None
                raise
            started = True
        else:
            # Started by another process of ours (make up, another test session): it may
            # still be starting.
            wait_ready(None)
            after_ready()
            process, started = None, False
        lease = files.add_lease()
        return EmbeddedService(files, record, lease, address=address, started=started, process=process)


def _open_log(path: Path, title: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "ab")
    handle.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} {title} =====\n".encode())
    handle.flush()
    return handle


# --------------------------------------------------------------------------------------------
# Kafka


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

    return _ensure_embedded(
        files, host=host, port=port, address=address, start=start, wait_ready=wait_ready, check_foreign=check_foreign
    )


@dataclass(frozen=True)
class TopicSpec:
    """A topic to create: partitions and topic-level config (replication is always 1 locally)."""

    partitions: int
    config: Mapping[str, str] = field(default_factory=dict)


# Cluster settings that cannot hold on a single local broker.
_CLUSTER_ONLY_TOPIC_CONFIG = {"min.insync.replicas"}


def project_topics(manifest: Path = KAFKA_TOPICS_MANIFEST) -> dict[str, TopicSpec]:
    """The project's topics: from the Strimzi KafkaTopic manifests if present, else `PROJECT_TOPICS`."""
    if not manifest.is_file():
        return {name: TopicSpec(partitions) for name, partitions in PROJECT_TOPICS.items()}
    import yaml

    topics = {}
    for doc in yaml.safe_load_all(manifest.read_text()):
        if not isinstance(doc, dict) or doc.get("kind") != "KafkaTopic":
            continue
        spec = doc.get("spec") or {}
        name = spec.get("topicName") or doc["metadata"]["name"]
        config = {
            str(k): str(v).lower() if isinstance(v, bool) else str(v)
            for k, v in (spec.get("config") or {}).items()
            if k not in _CLUSTER_ONLY_TOPIC_CONFIG
        }
        topics[name] = TopicSpec(int(spec.get("partitions", 1)), config)
    if not topics:
        raise ServiceError(f"{manifest} holds no KafkaTopic")
    return topics


def create_topics(
    bootstrap: str,
    topics: Mapping[str, int],
    config: Mapping[str, str] | None = None,
    *,
    timeout: float = 30.0,
) -> list[str]:
    """Create each topic {name: partitions} that does not exist yet; return those created.

    Idempotent: existing topics are left as they are (a warning is logged when their
    partition count differs). Waits until every partition has a leader, so producers
    can use the topics at once.
    """
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import NewTopic

    if not topics:
        return []
    admin = _admin(bootstrap)
    new = [
        NewTopic(name, num_partitions=partitions, replication_factor=1, config=dict(config or {}))
        for name, partitions in topics.items()
    ]
    created = []
    for name, future in admin.create_topics(new, operation_timeout=timeout, request_timeout=timeout).items():
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise ServiceError(f"creating topic {name} failed: {exc.args[0].str()}") from exc
    _wait_for_leaders(admin, topics, timeout)
    return created


def _wait_for_leaders(admin, topics: Mapping[str, int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = dict(topics)
    while pending:
        metadata = admin.list_topics(timeout=timeout)
        for name in list(pending):
            topic = metadata.topics.get(name)
            if topic is None or topic.error is not None or not topic.partitions:
                continue
            if all(p.leader >= 0 for p in topic.partitions.values()):
                if len(topic.partitions) != pending[name]:
                    log.warning("topic %s has %d partitions, not %d", name, len(topic.partitions), pending[name])
                del pending[name]
        if pending and time.monotonic() > deadline:
            raise ServiceError(f"topics without leaders after {timeout:.0f} s: {', '.join(pending)}")
        if pending:
            time.sleep(0.1)


def create_project_topics(bootstrap: str) -> list[str]:
    """Create the project's topics (see `project_topics`); return those created."""
    created = []
    by_config: dict[tuple, dict[str, int]] = {}
    for name, spec in project_topics().items():
        by_config.setdefault(tuple(sorted(spec.config.items())), {})[name] = spec.partitions
    for config, topics in by_config.items():
        created += create_topics(bootstrap, topics, dict(config))
    return created


def delete_topics(bootstrap: str, names: list[str], *, timeout: float = 30.0) -> None:
    """Delete topics; missing ones are ignored."""
    from confluent_kafka import KafkaError, KafkaException

    if not names:
        return
    admin = _admin(bootstrap)  # kept referenced: destroying the client fails its pending futures
    for name, future in admin.delete_topics(list(names), operation_timeout=timeout).items():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise ServiceError(f"deleting topic {name} failed: {exc.args[0].str()}") from exc


# --------------------------------------------------------------------------------------------
# PostgreSQL


@dataclass(frozen=True)
class _PgUrl:
    host: str
    port: int
    user: str
    password: str | None
    database: str

    @classmethod
    def parse(cls, url: str) -> _PgUrl:
        parsed = urlparse(url)
        if parsed.scheme not in ("postgres", "postgresql"):
            raise ServiceError(f"DATABASE_URL must start with postgresql://, got {url!r}")
        return cls(
            host=parsed.hostname or "localhost",
            port=parsed.port or 5432,
            user=unquote(parsed.username or "postgres"),
            password=unquote(parsed.password) if parsed.password is not None else None,
            database=unquote(parsed.path.lstrip("/")) or "postgres",
        )


def _pg_connect(host: str, port: int, user: str, password: str | None, database: str, timeout: float = 5.0):
    import pg8000.native

    return pg8000.native.Connection(
        user=user, password=password, host=host, port=port, database=database,
        timeout=timeout, application_name="price-crawler-local",
    )  # fmt: skip


def _pg_error_code(exc: Exception) -> str | None:
    detail = exc.args[0] if exc.args else None
    return detail.get("C") if isinstance(detail, dict) else None


def _pg_error_text(exc: Exception) -> str:
    detail = exc.args[0] if exc.args else None
    return detail.get("M", str(detail)) if isinstance(detail, dict) else str(exc)


def _postgres_bindir() -> Path:
    """Directory of the newest installed PostgreSQL server binaries ($POSTGRES_BINDIR wins)."""
    if os.environ.get("POSTGRES_BINDIR"):
        return Path(os.environ["POSTGRES_BINDIR"])
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    if debian:
        return debian[-1].parent
    found = shutil.which("postgres") or shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    raise ServiceError("PostgreSQL server binaries not found (apt-get install postgresql): run `make setup`")


def _postgres_os_user() -> pwd.struct_passwd | None:
    """The OS user PostgreSQL runs as: `postgres` when we are root (it refuses root), else None (us)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        home = "/var/lib/postgresql"
        useradd = ["useradd", "--system", "--user-group", "--home-dir", home, "--shell", "/bin/bash", "postgres"]
        subprocess.run(useradd, check=True, capture_output=True)
        return pwd.getpwnam("postgres")


def _as_user(user: pwd.struct_passwd | None) -> dict:
    """Popen arguments that run the child as `user` (no supplementary groups)."""
    if user is None:
        return {}
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _check_traversable(path: Path, user: pwd.struct_passwd) -> None:
    for parent in path.parents:
        st = parent.stat()
        if st.st_uid == user.pw_uid or st.st_mode & 0o001 or (st.st_gid == user.pw_gid and st.st_mode & 0o010):
            continue
        raise ServiceError(
            f"PostgreSQL runs as OS user {user.pw_name!r}, who cannot enter {parent}: "
            f"make it traversable (chmod o+x {parent}) or set the state directory elsewhere"
        )


def _pg_environment() -> dict[str, str]:
    # PG* variables of the caller (PGDATA, PGPORT, …) must not redirect the server.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _initdb(bindir: Path, data_dir: Path, password_file: Path, os_user: pwd.struct_passwd | None) -> None:
    pg_root = data_dir.parent
    pg_root.mkdir(parents=True, exist_ok=True)
    for directory in (pg_root.parent, pg_root):
        directory.chmod(directory.stat().st_mode | 0o755)
    shutil.rmtree(data_dir, ignore_errors=True)  # leftovers of an interrupted initdb
    data_dir.mkdir(mode=0o700)
    password_file.write_text(secrets.token_urlsafe(24) + "\n")
    password_file.chmod(0o600)
    if os_user is not None:
        _check_traversable(data_dir, os_user)
        for path in (data_dir, password_file):
            os.chown(path, os_user.pw_uid, os_user.pw_gid)
    log.info("initialising a PostgreSQL cluster in %s", data_dir)
    result = subprocess.run(
        [str(bindir / "initdb"), "-D", str(data_dir), "-U", POSTGRES_SUPERUSER, f"--pwfile={password_file}",
         "--auth-host=scram-sha-256", "--auth-local=peer", "--encoding=UTF8", "--no-locale"],
        capture_output=True, text=True, cwd=pg_root, env=_pg_environment(), stdin=subprocess.DEVNULL,
        timeout=120, check=False, **_as_user(os_user),
    )  # fmt: skip
    if result.returncode != 0:
        shutil.rmtree(data_dir, ignore_errors=True)
        raise ServiceError(f"initdb failed:\n{result.stdout}{result.stderr}")


def _ensure_role_and_database(conn, user: str, password: str, database: str) -> None:
    """Create (or update the password of) the application role, and its database."""
    from pg8000.native import identifier, literal

    role_exists = conn.run("SELECT 1 FROM pg_roles WHERE rolname = :r", r=user)
    verb = "ALTER" if role_exists else "CREATE"
    conn.run(f"{verb} ROLE {identifier(user)} LOGIN CREATEDB PASSWORD {literal(password)}")
    if not conn.run("SELECT 1 FROM pg_database WHERE datname = :d", d=database):
        conn.run(f"CREATE DATABASE {identifier(database)} OWNER {identifier(user)}")


def ensure_postgres(
    database_url: str | None = None, *, state_dir: Path = LOCAL_DIR, timeout: float = POSTGRES_START_TIMEOUT
) -> EmbeddedService | None:
    """Make sure PostgreSQL serves `database_url` (default: $DATABASE_URL).

    Returns None when a server that is not ours already answers there (its database is
    created if missing and the role may). Otherwise starts (or joins) the project's own
    cluster in `<state_dir>/postgres/data` on 127.0.0.1:<port> (initdb on first use, run
    as the `postgres` OS user when we are root), makes sure the URL's role (LOGIN
    CREATEDB, with the URL's password) and database exist, and returns its handle.
    Raises `ServiceError` with the reason otherwise.
    """
    if database_url is None:
        from shared.config import Settings

        database_url = Settings().database_url
    url = _PgUrl.parse(database_url)
    files = _ServiceFiles(Path(state_dir), "postgres")
    pg_root = files.state_dir / "postgres"
    data_dir, password_file = pg_root / "data", pg_root / "superuser.password"
    address = f"127.0.0.1:{url.port}"

    def superuser_connection():
        try:
            password = password_file.read_text().strip()
        except OSError as exc:
            raise ServiceError(f"the embedded cluster's superuser password is missing ({exc})") from None
        return _pg_connect("127.0.0.1", url.port, POSTGRES_SUPERUSER, password, "postgres")

    def check_foreign() -> None:
        import pg8000.native

        try:
            _pg_connect(url.host, url.port, url.user, url.password, url.database).close()
            return
        except pg8000.native.DatabaseError as exc:
            if _pg_error_code(exc) != "3D000":  # anything but "database does not exist"
                raise ServiceError(
                    f"PostgreSQL at {url.host}:{url.port} refused {url.user!r}: {_pg_error_text(exc)}"
                ) from None
        except (OSError, pg8000.native.InterfaceError) as exc:
            raise ServiceError(f"something answers at {url.host}:{url.port} but it is not PostgreSQL: {exc}") from None
        create_database(database_url, url.database, replace=False, admin_database="postgres")

    def start() -> tuple[subprocess.Popen, _Record]:
        if not url.password:
            raise ServiceError("the embedded PostgreSQL needs a password in DATABASE_URL (user:password@…)")
        if port_open("127.0.0.1", url.port):
            raise ServiceError(f"127.0.0.1:{url.port} is taken by another program")
        bindir, os_user = _postgres_bindir(), _postgres_os_user()
        if not (data_dir / "PG_VERSION").exists():
            _initdb(bindir, data_dir, password_file, os_user)
        elif os_user is not None:
            _check_traversable(data_dir, os_user)
        settings = [arg for name, value in POSTGRES_SETTINGS.items() for arg in ("-c", f"{name}={value}")]
        log.info("starting embedded PostgreSQL at %s (log %s)", address, files.log_file)
        with _open_log(files.log_file, f"postgres {address}") as output:
            process = subprocess.Popen(
                [str(bindir / "postgres"), "-D", str(data_dir), "-p", str(url.port), *settings],
                stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, cwd=pg_root,
                env=_pg_environment(), start_new_session=True, **_as_user(os_user),
            )  # fmt: skip
        # SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients to disconnect.
        return process, _Record(process.pid, address, str(data_dir), "SIGINT")

    def wait_ready(process: subprocess.Popen | None) -> None:
        import pg8000.native

        alive = (lambda: process.poll() is None) if process is not None else None
        deadline = time.monotonic() + timeout
        wait_for_port("127.0.0.1", url.port, timeout, alive=alive)
        while True:  # the port opens before the server accepts sessions ("starting up")
            try:
                superuser_connection().close()
                return
            except (pg8000.native.DatabaseError, pg8000.native.InterfaceError, OSError) as exc:
                if alive is not None and not alive():
                    raise ServiceError("the embedded PostgreSQL exited during start-up") from None
                if time.monotonic() > deadline:
                    raise ServiceError(f"the embedded PostgreSQL is not ready after {timeout:.0f} s: {exc}") from None
                time.sleep(0.1)

    def after_ready() -> None:
        conn = superuser_connection()
        try:
            _ensure_role_and_database(conn, url.user, url.password or "", url.database)
        finally:
            conn.close()

    return _ensure_embedded(
        files, host=url.host, port=url.port, address=address,
        start=start, wait_ready=wait_ready, check_foreign=check_foreign, after_ready=after_ready,
    )  # fmt: skip


def with_database(database_url: str, database: str) -> str:
    """`database_url` naming another database on the same server."""
    return urlunparse(urlparse(database_url)._replace(path="/" + database))


def create_database(server_url: str, name: str, *, replace: bool = False, admin_database: str | None = None) -> str:
    """Create database `name` on the server of `server_url` (as its user); return its URL.

    With `replace`, an existing database of that name is dropped first. The user needs
    CREATEDB (the embedded cluster grants it). `admin_database` is the database to connect
    to for the statement (default: the one `server_url` names).
    """
    from pg8000.native import identifier

    url = _PgUrl.parse(server_url)
    conn = _pg_connect(url.host, url.port, url.user, url.password, admin_database or url.database)
    try:
        exists = conn.run("SELECT 1 FROM pg_database WHERE datname = :d", d=name)
        if exists and replace:
            conn.run(f"DROP DATABASE {identifier(name)} WITH (FORCE)")
        if not exists or replace:
            conn.run(f"CREATE DATABASE {identifier(name)}")
    except Exception as exc:
        raise ServiceError(f"cannot create database {name!r} as {url.user!r}: {_pg_error_text(exc)}") from exc
    finally:
        conn.close()
    return with_database(server_url, name)


def drop_database(database_url: str, *, admin_database: str = "postgres") -> None:
    """Drop the database `database_url` names, closing its open sessions; missing is fine."""
    from pg8000.native import identifier

    url = _PgUrl.parse(database_url)
    conn = _pg_connect(url.host, url.port, url.user, url.password, admin_database)
    try:
        conn.run(f"DROP DATABASE IF EXISTS {identifier(url.database)} WITH (FORCE)")
    finally:
        conn.close()


def empty_database(database_url: str, keep: tuple[str, ...] = ("schema_migrations",)) -> list[str]:
    """TRUNCATE every table of the database except `keep`, restarting identities; return them.

    One statement (CASCADE), so foreign keys between the tables do not matter.
    """
    from pg8000.native import identifier

    url = _PgUrl.parse(database_url)
    conn = _pg_connect(url.host, url.port, url.user, url.password, url.database)
    try:
        rows = conn.run(
            "SELECT schemaname, tablename FROM pg_tables"
            " WHERE schemaname NOT IN ('pg_catalog', 'information_schema') AND NOT tablename = ANY(:keep)"
            " ORDER BY 1, 2",
            keep=list(keep),
        )
        if rows:
            tables = ", ".join(f"{identifier(schema)}.{identifier(table)}" for schema, table in rows)
            conn.run(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    finally:
        conn.close()
    return [f"{schema}.{table}" for schema, table in rows]


def drop_orphaned_databases(server_url: str, prefix: str) -> list[str]:
    """Drop the databases named `<prefix><pid>` whose process is gone; return their names.

    Test sessions name their database after their pid; one killed before its teardown
    leaves it behind. Only done on a server of this machine, where the pid means something.
    """
    url = _PgUrl.parse(server_url)
    if not _is_local_host(url.host):
        return []
    conn = _pg_connect(url.host, url.port, url.user, url.password, url.database)
    try:
        rows = conn.run("SELECT datname FROM pg_database WHERE starts_with(datname, :p)", p=prefix)
    finally:
        conn.close()
    dropped = []
    for (name,) in rows:
        pid = name[len(prefix) :]
        if pid.isdigit() and not process_alive(int(pid)):
            drop_database(with_database(server_url, name))
            dropped.append(name)
    return dropped


# --------------------------------------------------------------------------------------------
# make down


def stop_all(state_dir: Path = LOCAL_DIR, timeout: float = STOP_TIMEOUT) -> list[str]:
    """Stop every embedded service started from `state_dir`, whoever uses it; return their names.

    Each gets its graceful stop signal, then SIGKILL after `timeout` seconds.
    """
    stopped = []
    run_dir = Path(state_dir) / "run"
    for pid_file in sorted(run_dir.glob("*.json")):
        files = _ServiceFiles(Path(state_dir), pid_file.stem)
        with files.locked():
            record = files.read()
            if record is not None:
                log.info("stopping %s (pid %d)", files.name, record.pid)
                _terminate(record.pid, signal.Signals[record.stop_signal], timeout)
                stopped.append(files.name)
            files.forget()
    return stopped


def main(argv: list[str]) -> int:
    """`python -m local.services stop-all`: what `make down` runs."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if argv != ["stop-all"]:
        print("usage: python -m local.services stop-all", file=sys.stderr)
        return 2
    stopped = stop_all()
    print(f"stopped: {', '.join(stopped)}" if stopped else "nothing of this project was running")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
