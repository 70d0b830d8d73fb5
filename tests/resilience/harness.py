"""The whole system as real processes on a Kafka broker and a PostgreSQL cluster of its own.

`PrivateInfra` starts (and restarts) an embedded broker and cluster in a state directory of
this test session (`local.services` with `state_dir`), on free ports, so a restart never
touches the shared services other test sessions and `make up` use.

`RunningSystem` runs what `make up` runs (`local.stack.processes()`): every function under
functions-framework (price, metadata, audit, quotes), the local object store and `python -m
local.eventing`, against that infra and an in-process `SimulatedMarket`. Left out: the market
process (the test's own market stands in, so it can inject faults and count requests) and the
scheduler with the PingSources, so that every job of a test is one the test wrote and can
account for. The eventing plane reads the cluster's own KafkaSource manifests
(copied verbatim). A supervisor thread restarts a child that dies (what Knative does for a
crashed pod) within a fraction of a second.

`JobBook` writes jobs and settles them: each committed (final job_logs row) or dead-lettered.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from confluent_kafka import Consumer, Producer

from local import services, stack
from local.market.server import SimulatedMarket
from shared.crawler.domain.schedule import SCHEDULES
from shared.db.connection import Connection, connect
from shared.db.migrations import apply_migrations
from tests.helpers.kafka import header_pairs

FUNCTION_NAMES = ("price", "metadata", "audit")  # the functions that run jobs
# Of `local.stack.processes()`: the market runs in the test process, the scheduler only serves PingSources.
NOT_RUN = frozenset({"market", "scheduler"})
STALE_AFTER_SECONDS = 3.0  # PRICE_STALE_AFTER_SECONDS of every process: staleness shows within a test
PRICE_TOPIC = "price-crawler.price.request"
METADATA_TOPIC = "price-crawler.metadata.request"
AUDIT_TOPIC = "price-crawler.audit.request"
DEAD_LETTER_TOPICS = {
    PRICE_TOPIC: "price-crawler.price.dead-letter",
    METADATA_TOPIC: "price-crawler.metadata.dead-letter",
    AUDIT_TOPIC: "price-crawler.audit.dead-letter",
}
# The manifests the cluster applies, minus the PingSources (see the module docstring).
EVENTING_MANIFESTS = ("kafkasources.yaml", "kafkasinks.yaml")
# Committed outcomes. Not dead_lettered: the deadletter function's record of a job given up
# (Settlement.dead counts those, from the dead-letter topics themselves). `expired`: a price
# tick delivered after its expires_at, superseded (Settlement.expired counts those apart).
FINAL_STATUSES = frozenset({"succeeded", "partial", "skipped", "rejected", "expired"})

# Every upstream: 1-s timeouts, two quick retries, budgets no test comes near, short breaker
# reset. Faults then play out in seconds; the mechanisms are the production ones.
UPSTREAM_ENV = {
    "TIMEOUT_SECONDS": "1",
    "MAX_RETRIES": "2",
    "BACKOFF_INITIAL_SECONDS": "0.05",
    "BACKOFF_MAX_SECONDS": "0.2",
    "RATE_LIMIT_PER_MINUTE": "100000",
    "MAX_WAIT_SECONDS": "0.5",
    "BREAKER_FAILURE_THRESHOLD": "3",
    "BREAKER_RESET_SECONDS": "2",
    "BLOCK_BACKOFF_INITIAL_SECONDS": "2",  # Binance's WAF 403: held like the 2-s Retry-After faults
}
# librdkafka's reconnect chatter while a broker restarts goes to logging, not to the test output.
KAFKA_CLIENT_LOG = logging.getLogger("tests.resilience.kafka")
KAFKA_CLIENT_LOG.setLevel(logging.CRITICAL)
UPSTREAMS = ("BINANCE", "COINGECKO", "DEXSCREENER", "GECKOTERMINAL", "GOPLUS")


def utc_now_iso() -> str:
    """Now, as job messages write timestamps."""
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def wait_until(condition: Callable[[], Any], timeout: float, message: str, interval: float = 0.1) -> Any:
    """Poll `condition` until it returns something truthy; AssertionError with `message` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s: {message}")
        time.sleep(interval)


def _free_port_pair(avoid: Collection[int] = ()) -> int:
    """A port whose successor is free too (the embedded broker's controller listens on port + 1).

    The successor is tried with a bind, not a connect: a port held by an outgoing
    connection has no listener, yet the broker cannot bind it.
    """
    for _ in range(100):
        port = services.free_port()
        if port < 65535 and not {port, port + 1} & set(avoid) and _bindable(port + 1):
            return port
    raise RuntimeError("no two adjacent free ports")


def _cluster_layout(brokers: int) -> services.ClusterLayout:
    """Six ports from $RESILIENCE_KAFKA_CLUSTER_PORT_BASE, else three free port pairs."""
    base = os.environ.get("RESILIENCE_KAFKA_CLUSTER_PORT_BASE")
    if base:
        return services.ClusterLayout.from_base(int(base), brokers)
    pairs: list[int] = []
    for _ in range(brokers):
        pairs.append(_free_port_pair(avoid=[p for q in pairs for p in (q, q + 1)]))
    return services.ClusterLayout.on_ports([(p, p + 1) for p in pairs])


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# --------------------------------------------------------------------------------------------
# Kafka and PostgreSQL of this session


class PrivateInfra:
    """An embedded Kafka (one broker, or a three-node cluster) and PostgreSQL cluster that only this
    test session uses.

    `brokers=3` runs `local.services.ensure_kafka_cluster`: RF 3 and min.insync.replicas 2, the
    production topology. Its ports start at $RESILIENCE_KAFKA_CLUSTER_PORT_BASE when set (six
    ports), else free ports.
    """

    def __init__(self, state_dir: Path, *, brokers: int = 1):
        self.state_dir = state_dir
        self.brokers = brokers
        self.cluster_layout: services.ClusterLayout | None = None
        self.cluster: services.KafkaCluster | None = None
        if brokers == 1:
            self.kafka_port = _free_port_pair()
            taken = [self.kafka_port, self.kafka_port + 1]
            self.bootstrap = f"127.0.0.1:{self.kafka_port}"
        else:
            self.cluster_layout = _cluster_layout(brokers)
            taken = [p for n in self.cluster_layout.nodes for p in (n.port, n.controller_port)]
            self.kafka_port = taken[0]
            self.bootstrap = self.cluster_layout.bootstrap
        self.postgres_port = services.free_port()
        while self.postgres_port in taken:
            self.postgres_port = services.free_port()
        self.database_url = f"postgresql://crawler:crawler@127.0.0.1:{self.postgres_port}/price_crawler"
        self.kafka: services.EmbeddedService | None = None
        self.postgres: services.EmbeddedService | None = None

    @property
    def replication(self) -> services.Replication:
        return services.CLUSTER_REPLICATION if self.cluster_layout else services.SINGLE_NODE

    def start(self) -> None:
        """Start both, apply the migrations, create the project's topics."""
        self.start_postgres()
        self._first_kafka_start()
        apply_migrations(self.database_url)
        services.create_project_topics(self.bootstrap, replication=self.replication)

    def _first_kafka_start(self, attempts: int = 3) -> None:
        """Start the broker, on a new port pair if another socket took one before it bound it
        (free ports are only free when picked; the full suite lost that race twice)."""
        if self.cluster_layout is not None:
            self.start_kafka()
            return
        for attempt in range(attempts):
            try:
                self.start_kafka()
                return
            except services.ServiceError:
                if attempt == attempts - 1:
                    raise
                self.kafka_port = _free_port_pair(avoid=(self.postgres_port,))
                self.bootstrap = f"127.0.0.1:{self.kafka_port}"

    def start_kafka(self) -> float:
        """Start the broker (every node of the cluster) on its data directory; return the seconds it took."""
        started = time.monotonic()
        if self.cluster_layout is not None:
            if self.cluster is None:
                self.cluster = services.KafkaCluster(self.cluster_layout, self.state_dir)
            self.cluster.start()
            return time.monotonic() - started
        with mock.patch.dict(os.environ, {"KAFKA_CONTROLLER_PORT": str(self.kafka_port + 1)}):
            self.kafka = services.ensure_kafka(self.bootstrap, state_dir=self.state_dir)
        assert self.kafka is not None and self.kafka.started, "the private broker was not started by us"
        return time.monotonic() - started

    def stop_kafka(self) -> None:
        """Stop the broker (SIGTERM: a clean shutdown, like a rolling restart); a cluster: every node."""
        if self.cluster is not None:
            self.cluster.stop()
            return
        assert self.kafka is not None and self.kafka.stop(), "the private broker did not stop"
        self.kafka = None

    def start_postgres(self) -> float:
        started = time.monotonic()
        self.postgres = services.ensure_postgres(self.database_url, state_dir=self.state_dir)
        assert self.postgres is not None and self.postgres.started, "the private PostgreSQL was not started by us"
        return time.monotonic() - started

    def stop_postgres(self) -> None:
        """Stop the cluster (SIGINT: PostgreSQL's fast shutdown, open sessions are cut)."""
        assert self.postgres is not None and self.postgres.stop(), "the private PostgreSQL did not stop"
        self.postgres = None

    def close(self) -> None:
        if self.cluster is not None:
            self.cluster.stop(timeout=10)
        for service in (self.kafka, self.postgres):
            if service is not None:
                service.stop(timeout=10)
        services.stop_all(self.state_dir, timeout=10)


# --------------------------------------------------------------------------------------------
# The functions and the eventing plane as processes


class RestartingChild(stack.Child):
    """A `local.stack` child restarted at once after it dies, however often (a pod restart)."""

    RESTART_BACKOFF: tuple[float, ...] = (0.2,)


class RunningSystem:
    """The functions and the eventing plane, as `make up` runs them, against `infra` and `market`."""

    def __init__(self, infra: PrivateInfra, market: SimulatedMarket, work_dir: Path):
        self.infra = infra
        self.market = market
        self.work_dir = work_dir
        self.log_dir = work_dir / "logs"
        self.eventing_port = services.free_port()
        self.children: dict[str, RestartingChild] = {}
        self._specs: dict[str, stack.Process] = {}
        self._env: dict[str, str] = {}
        self._devnull = open(os.devnull, "w")
        self._console = stack.Console(self._devnull)  # output goes to the log files only
        self._stop = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._producer: Producer | None = None
        self.delivery_errors: list[str] = []
        self.restarts: dict[str, int] = {}

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = 90.0) -> None:
        """Start every process of `make up` but the market (in-process here) and the scheduler
        (it only serves PingSources), stage by stage, each stage once ready."""
        manifests = self.work_dir / "manifests"
        manifests.mkdir(parents=True, exist_ok=True)
        for name in EVENTING_MANIFESTS:
            shutil.copy(services.PROJECT_ROOT / "infra" / "knative" / "base" / name, manifests / name)
        ports = {f"{f.name.upper()}_FUNCTION_PORT": str(services.free_port()) for f in stack.FUNCTIONS}
        ports["OBJECT_STORE_PORT"] = str(services.free_port())
        with mock.patch.dict(os.environ, ports):
            self._specs = {p.name: p for p in stack.processes() if p.name not in NOT_RUN}
            env = stack.child_environment(self.infra.bootstrap, self.infra.database_url)
        env.update(self.market.env())
        for api in UPSTREAMS:
            env.update({f"{api}_{name}": value for name, value in UPSTREAM_ENV.items()})
        env.update(
            DEXSCREENER_PROFILES_RATE_LIMIT_PER_MINUTE="100000",
            METADATA_MIN_REFRESH_SECONDS="0",
            AUDIT_REFRESH_SECONDS="0",  # every audit job asks GoPlus: the faults must reach it
            PRICE_STALE_AFTER_SECONDS=str(STALE_AFTER_SECONDS),
            LOG_LEVEL="INFO",
            EVENTING_MANIFESTS_DIR=str(manifests),
            EVENTING_PORT=str(self.eventing_port),
            EVENTING_COMMIT_INTERVAL_SECONDS="0.5",
            EVENTING_SESSION_TIMEOUT_MS="6000",
            EVENTING_SHUTDOWN_GRACE_SECONDS="3",
        )
        self._env = env
        missing = [name for name in FUNCTION_NAMES if name not in self._specs]
        assert not missing, f"local.stack.processes() runs no {missing}"
        for stage in sorted({spec.stage for spec in self._specs.values()}):
            started = [name for name, spec in self._specs.items() if spec.stage == stage and spec.requires.exists()]
            for name in started:
                self._start_child(name)
            if "eventing" in started:
                self.wait_eventing_assigned(timeout)
            else:
                self._wait_probes(started, timeout)
        self._supervisor = threading.Thread(target=self._supervise, name="resilience-supervisor", daemon=True)
        self._supervisor.start()

    def _wait_probes(self, names: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = list(names)
        while pending:
            pending = [n for n in pending if not self.children[n].probe()]
            if pending and time.monotonic() > deadline:
                raise AssertionError(f"not ready after {timeout:.0f} s: {pending}\n{self.log_tails(pending)}")
            time.sleep(0.1)

    def _start_child(self, name: str) -> None:
        child = RestartingChild(self._specs[name], self._env, self._console, self.log_dir)
        child.start()
        self.children[name] = child

    def _supervise(self) -> None:
        while not self._stop.wait(0.1):
            for name, child in self.children.items():
                before = child.popen
                child.check()
                if child.popen is not before:
                    self.restarts[name] = self.restarts.get(name, 0) + 1

    def stop(self) -> None:
        self._stop.set()
        if self._supervisor is not None:
            self._supervisor.join(5)
        stack.stop_children(self.children.values(), timeout=5)
        if self._producer is not None:
            self._producer.flush(5)
            self._producer = None
        self._devnull.close()

    # --- health ------------------------------------------------------------------------------

    def function_names(self) -> tuple[str, ...]:
        """Every running function (job functions and read functions), i.e. children with a readiness URL."""
        return tuple(name for name, child in self.children.items() if child.spec.ready_url)

    def function_url(self, name: str) -> str:
        return self._env[f"{name.upper()}_FUNCTION_URL"]

    def readiness(self, name: str, timeout: float = 2.0) -> tuple[int | None, dict[str, Any]]:
        """The function's GET /health/readiness: (status, body); (None, {}) when it does not answer."""
        return http_get_json(f"{self.function_url(name)}/health/readiness", timeout=timeout)

    def wait_ready(self, names: Iterable[str] = FUNCTION_NAMES, timeout: float = 60.0) -> float:
        """Wait until every named function answers readiness 200; return the seconds waited."""
        started = time.monotonic()
        pending = list(names)
        while pending:
            pending = [n for n in pending if self.readiness(n)[0] != 200]
            if pending and time.monotonic() - started > timeout:
                raise AssertionError(f"not ready after {timeout:.0f} s: {pending}\n{self.log_tails(pending)}")
            time.sleep(0.1)
        return time.monotonic() - started

    def eventing_status(self, path: str = "health") -> tuple[int | None, dict[str, Any]]:
        return http_get_json(f"http://127.0.0.1:{self.eventing_port}/{path}")

    def wait_eventing_assigned(self, timeout: float = 60.0) -> None:
        """Wait until every KafkaSource consumer has its partitions (initialOffset latest is then fixed)."""

        def assigned() -> bool:
            status, body = self.eventing_status()
            sources = body.get("sources", {}) if status == 200 else {}
            return bool(sources) and all(s.get("assigned") for s in sources.values() if s["kind"] == "KafkaSource")

        try:
            wait_until(assigned, timeout, "the eventing plane's KafkaSources got no partitions", interval=0.2)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.log_tails(['eventing'])}") from None

    def eventing_metrics(self) -> dict[str, Any]:
        """Counters per source of the eventing plane ({} while it does not answer).

        From `/status` (JSON); `/metrics` is the Prometheus text, which reads as no JSON at all.
        """
        status, body = self.eventing_status("status")
        return body.get("sources", {}) if status == 200 else {}

    def function_pid(self, name: str) -> int:
        child = self.children[name]
        assert child.popen is not None
        return child.popen.pid

    def kill(self, name: str, *, worker_only: bool = False) -> int:
        """SIGKILL the function: its gunicorn worker (the master forks a new one), or the whole
        process group (the supervisor restarts it). Returns the pid killed."""
        master = self.function_pid(name)
        if worker_only:
            workers = child_pids(master)
            if workers:
                os.kill(workers[0], signal.SIGKILL)
                return workers[0]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(master, signal.SIGKILL)
        return master

    def log_tails(self, names: Iterable[str], lines: int = 30) -> str:
        parts = []
        for name in names:
            path = self.log_dir / f"{name}.log"
            try:
                tail = path.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                tail = ["(no log)"]
            parts.append(f"--- {name}.log ---\n" + "\n".join(tail))
        return "\n".join(parts)

    # --- jobs --------------------------------------------------------------------------------

    @property
    def producer(self) -> Producer:
        if self._producer is None:
            # What any Kafka client (kcat) writes: plain records; long timeouts ride out a broker restart.
            self._producer = Producer(
                {
                    "bootstrap.servers": self.infra.bootstrap,
                    "acks": "all",
                    "enable.idempotence": True,
                    "message.timeout.ms": 120000,
                    "message.max.bytes": 2_000_000,
                },
                logger=KAFKA_CLIENT_LOG,
            )
        return self._producer

    def produce(
        self,
        topic: str,
        value: bytes | str | Mapping[str, Any] | None,
        *,
        key: str | None = None,
        flush: bool = True,
        on_delivery: Callable[[Any], None] | None = None,
    ) -> None:
        """Write one plain record (a job dict is JSON-encoded); `on_delivery(message)` once confirmed."""
        if isinstance(value, Mapping):
            value = json.dumps(value)

        def delivered(error: Any, message: Any) -> None:
            self._delivered(error, message)
            if error is None and on_delivery is not None:
                on_delivery(message)

        while True:
            try:
                self.producer.produce(topic, value=value, key=key, on_delivery=delivered)
                break
            except BufferError:  # local queue full (broker down for long): let it drain
                self.producer.poll(0.5)
        self.producer.poll(0)
        if flush:
            self.flush()

    def _delivered(self, error: Any, _message: Any) -> None:
        if error is not None:
            self.delivery_errors.append(str(error))

    def flush(self, timeout: float = 120.0) -> None:
        """Wait until the broker confirmed every record written so far."""
        remaining = self.producer.flush(timeout)
        assert remaining == 0, f"{remaining} records not confirmed by the broker"
        assert not self.delivery_errors, f"records refused by the broker: {self.delivery_errors[:3]}"


def start_seeded_system(infra: PrivateInfra, market: SimulatedMarket, ledger: Ledger) -> RunningSystem:
    """`RunningSystem` on `infra`, started, with the top-100 set filled by one metadata job."""
    running = RunningSystem(infra, market, infra.state_dir / "system")
    running.start()
    try:
        job_id = f"seed-metadata-{uuid.uuid4().hex[:8]}"
        running.produce(
            METADATA_TOPIC,
            {
                "job_type": "metadata",
                "token_type": "top100",
                "symbols": [],
                "timestamp": utc_now_iso(),
                "job_id": job_id,
            },
        )
        row = ledger.wait_final(job_id, timeout=90)
        assert row["status"] == "succeeded", row
    except BaseException:
        print(running.log_tails(["metadata", "eventing"]))
        running.stop()
        raise
    return running


@contextlib.contextmanager
def private_infra_in(state_root: Path, *, brokers: int = 1) -> Iterator[PrivateInfra]:
    """A started `PrivateInfra` in a new `.local/resilience-*` directory; removed afterwards
    (kept with $RESILIENCE_KEEP_STATE, for the logs of a failing run)."""
    # Under .local/ rather than a private temp dir: PostgreSQL runs as the `postgres` OS user.
    state_dir = state_root / f"resilience-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    state_dir.mkdir(parents=True, mode=0o755)
    state_dir.chmod(0o755)
    infra = PrivateInfra(state_dir, brokers=brokers)
    try:
        infra.start()
    except Exception as exc:
        infra.close()
        shutil.rmtree(state_dir, ignore_errors=True)
        pytest.fail(f"the private Kafka/PostgreSQL of the resilience suite cannot start: {exc}", pytrace=False)
    try:
        yield infra
    finally:
        infra.close()
        if not os.environ.get("RESILIENCE_KEEP_STATE"):
            shutil.rmtree(state_dir, ignore_errors=True)


def http_get_json(url: str, timeout: float = 2.0) -> tuple[int | None, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"{}")
        except ValueError:
            return exc.code, {}
    except (urllib.error.URLError, OSError, ValueError):
        return None, {}


def child_pids(pid: int) -> list[int]:
    """Direct children of `pid` (gunicorn's workers of a master)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        return [int(p) for p in text.split()]
    except OSError:
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(stat.parent.name))
        return found


# --------------------------------------------------------------------------------------------
# Jobs

TOP100_SYMBOLS = ["BTC", "ETH", "LINK", "LEO", "HYPE"]  # Binance ×3, DexScreener (LEO), CoinGecko (HYPE)
TRENDING = ["MORA", "GLORP", "PRXY", "TRAPX", "FEEZ"]  # Solana and EVM, clean and risky, some unknown to CoinGecko


def top100_job() -> dict[str, Any]:
    """A top-100 price job priced by all three sources when healthy."""
    return {
        "job_type": "price",
        "token_type": "top100",
        "symbols": TOP100_SYMBOLS,
        "timestamp": utc_now_iso(),
        "job_id": f"faults-top100-{uuid.uuid4().hex[:10]}",
    }


def trending_job(market: SimulatedMarket) -> dict[str, Any]:
    """A trending crawl naming `TRENDING` by contract; it triggers their audit when committed."""
    tokens = [market.universe.get(k) for k in trending_keys(market)]
    return {
        "job_type": "price",
        "token_type": "trending",
        "timestamp": utc_now_iso(),
        "contracts": [{"chain": t.chain, "address": t.address} for t in tokens],
        "job_id": f"faults-trending-{uuid.uuid4().hex[:10]}",
    }


def trending_keys(market: SimulatedMarket) -> list[str]:
    return [next(t.key for t in market.universe.tokens if t.is_trending and t.symbol == s) for s in TRENDING]


# --------------------------------------------------------------------------------------------
# Reading what the system did


@dataclass(frozen=True)
class DeadLetter:
    """One record of a dead-letter topic: the original message and why it was given up."""

    topic: str
    value: bytes
    error_code: str | None
    error_data: str
    headers: dict[str, str]

    @property
    def origin(self) -> tuple[str, str]:
        """(request topic, event id) of the original record: plain records get `partition:P/offset:O`."""
        return self.headers.get("ce_source", "").rpartition("#")[2], self.headers.get("ce_id", "")

    @property
    def job_id(self) -> str | None:
        try:
            data = json.loads(self.value)
        except (ValueError, TypeError, RecursionError):  # poison is dead-lettered as it came
            return None
        return data.get("job_id") if isinstance(data, dict) and isinstance(data.get("job_id"), str) else None


def reason_of(letter: DeadLetter, limit: int = 90) -> str:
    """A dead letter's reason in one short line: the function's `error`, else the status or 'no response'."""
    try:
        text = json.loads(letter.error_data).get("error", letter.error_data)
    except (ValueError, AttributeError):
        text = letter.error_data
    text = " ".join(str(text).split()) or ("HTTP " + letter.error_code if letter.error_code else "no response")
    return text[:limit]


def read_dead_letters(
    bootstrap: str, topics: Iterable[str] = DEAD_LETTER_TOPICS.values(), settle: float = 1.0, timeout: float = 30.0
) -> list[DeadLetter]:
    """Every record of the dead-letter topics, from the beginning (read until `settle` s of silence)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"resilience-reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        },
        logger=KAFKA_CLIENT_LOG,
    )
    consumer.subscribe(list(topics))
    letters: list[DeadLetter] = []
    deadline = time.monotonic() + timeout
    quiet_since = time.monotonic()
    assigned = False
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None:
                assigned = assigned or bool(consumer.assignment())
                if assigned and time.monotonic() - quiet_since > settle:
                    break
                continue
            quiet_since = time.monotonic()
            if message.error():
                continue
            headers = {k: (v or b"").decode("utf-8", "replace") for k, v in header_pairs(message)}
            data = headers.get("ce_knativeerrordata")
            letters.append(
                DeadLetter(
                    message.topic() or "",
                    message.value() or b"",
                    headers.get("ce_knativeerrorcode"),
                    base64.b64decode(data).decode("utf-8", "replace") if data else "",
                    headers,
                )
            )
    finally:
        consumer.close()
    return letters


class Ledger:
    """Reads job_logs and the price/audit tables over one connection (assertions only)."""

    def __init__(self, database_url: str):
        self.database_url = database_url
        self._conn: Connection | None = None

    def _run(self, sql: str, **params: Any) -> list[list[Any]]:
        for attempt in range(2):  # the database may have restarted under us
            try:
                if self._conn is None:
                    self._conn = connect(self.database_url)
                return self._conn.run(sql, **params)
            except Exception:
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        result = self._run(sql, **params)
        names = [c["name"] for c in self._conn.columns or []] if self._conn else []
        return [dict(zip(names, row, strict=True)) for row in result or []]

    def value(self, sql: str, **params: Any) -> Any:
        result = self._run(sql, **params)
        return result[0][0] if result else None

    def jobs(self, job_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The 'job' rows of these jobs by id."""
        ids = list(job_ids)
        return {
            r["job_id"]: r
            for r in self.rows(
                "SELECT * FROM job_logs WHERE row_kind = 'job' AND job_id = ANY(CAST(:ids AS text[]))", ids=ids
            )
        }

    def job(self, job_id: str) -> dict[str, Any] | None:
        return self.jobs([job_id]).get(job_id)

    def token_failures(self, job_id: str) -> dict[str, str]:
        return {
            r["token_ref"]: r["message"]
            for r in self.rows(
                "SELECT token_ref, message FROM job_logs WHERE row_kind = 'token' AND job_id = :id", id=job_id
            )
        }

    def wait_final(self, job_id: str, timeout: float = 30.0, statuses: frozenset[str] = FINAL_STATUSES) -> dict:
        """The job's row once its status is final (done, partial, skipped or rejected)."""

        def final() -> dict | None:
            row = self.job(job_id)
            return row if row and row["status"] in statuses else None

        return wait_until(final, timeout, f"job {job_id} never reached {sorted(statuses)}")

    def prices_of(self, job_ids: Iterable[str]) -> list[dict[str, Any]]:
        return self.rows(
            "SELECT token_key, price_usdt, source, observed_at, job_id FROM token_prices"
            " WHERE job_id = ANY(CAST(:ids AS text[])) ORDER BY observed_at",
            ids=list(job_ids),
        )

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None


def wrong_prices(rows: Iterable[Mapping[str, Any]], market: SimulatedMarket, at: float) -> list[str]:
    """Rows whose price is not the market's exact USDT price at the frozen instant `at`."""
    wrong = []
    for row in rows:
        expected = market.universe.price_usdt(row["token_key"], at=at)
        if Decimal(row["price_usdt"]) != expected:
            wrong.append(f"{row['token_key']} {row['source']}: stored {row['price_usdt']}, market {expected}")
    return wrong


# The schedule whose ticks a job of each kind stands for: its jobs expire as the scheduler's do.
SCHEDULE_OF_KIND = {"top100": "top100-price", "trending": "trending", "metadata": "top100-metadata"}


class JobBook:
    """The jobs a test wrote, what each must leave in the database, and what became of each.

    With `expiring`, each job carries the `expires_at` the scheduler gives a tick of its kind
    (two cadences: 10 s for a top-100 price tick, 2 min for trending, 48 h for metadata).
    """

    def __init__(self, system: RunningSystem, market: SimulatedMarket, prefix: str, *, expiring: bool = False):
        self.system = system
        self.market = market
        self.expiring = expiring
        self.prefix = f"{prefix}-{uuid.uuid4().hex[:6]}"
        self.expected: dict[str, tuple[str, frozenset[str]]] = {}  # job id -> (kind, tokens of every commit)
        self.sent_at: dict[str, datetime] = {}  # job id -> when it was written
        self.expires_at: dict[str, datetime] = {}  # job id -> its expires_at (with `expiring`)
        self._top100 = frozenset(market.universe.get(s).key for s in TOP100_SYMBOLS)
        self._trending = frozenset(trending_keys(market))
        self._sequence = 0
        self.dead_before = {d.job_id for d in read_dead_letters(system.infra.bootstrap, settle=0.5)}

    def send(self, kind: str) -> str:
        """Write one job of `kind` ("top100", "trending" or "metadata") without waiting for the broker."""
        job_id, topic, job = self.new_job(kind)
        self.system.produce(topic, job, flush=False)
        return job_id

    def new_job(self, kind: str) -> tuple[str, str, dict[str, Any]]:
        """A job of `kind` this book accounts for: (job id, request topic, message); the caller writes it."""
        self._sequence += 1
        job_id = f"{self.prefix}-{kind}-{self._sequence}"
        if kind == "top100":
            job, topic, keys = {**top100_job(), "job_id": job_id}, PRICE_TOPIC, self._top100
        elif kind == "trending":
            job, topic, keys = {**trending_job(self.market), "job_id": job_id}, PRICE_TOPIC, self._trending
        else:
            job = {
                "job_type": "metadata",
                "token_type": "top100",
                "symbols": [],
                "timestamp": utc_now_iso(),
                "job_id": job_id,
            }
            topic, keys = METADATA_TOPIC, frozenset()
        self.sent_at[job_id] = datetime.now(timezone.utc)
        if self.expiring:
            self.expires_at[job_id] = self.sent_at[job_id] + SCHEDULES[SCHEDULE_OF_KIND[kind]].expires_after
            job["expires_at"] = self.expires_at[job_id].isoformat().replace("+00:00", "Z")
        self.expected[job_id] = (kind, keys)
        return job_id, topic, job

    def settle(self, ledger: Ledger, timeout: float) -> Settlement:
        """Wait until every job (and the audit each committed trending job triggers) is committed or
        dead-lettered, or `timeout` passes; return what became of them."""
        self.system.flush()
        audits: set[str] = set()
        deadline = time.monotonic() + timeout
        while True:
            rows = ledger.jobs([*self.expected, *audits])
            for job_id, (kind, _) in self.expected.items():
                if kind == "trending" and rows.get(job_id, {}).get("status") in ("succeeded", "partial"):
                    audits.add(f"audit:{job_id}")  # its completion event was published before its 200
            letters = read_dead_letters(self.system.infra.bootstrap, settle=0.5)
            dead = {d.job_id: d for d in letters if d.job_id and d.job_id not in self.dead_before}
            every = [*self.expected, *sorted(audits)]
            pending = [j for j in every if j not in dead and rows.get(j, {}).get("status") not in FINAL_STATUSES]
            if not pending or time.monotonic() > deadline:
                return Settlement(self, rows, {j: dead[j] for j in every if j in dead}, pending, audits)
            time.sleep(2)


@dataclass
class Settlement:
    """What became of a `JobBook`'s jobs, and the database invariants after them."""

    book: JobBook
    rows: dict[str, dict[str, Any]]
    dead: dict[str, DeadLetter]
    pending: list[str]
    audits: set[str]

    @property
    def committed(self) -> set[str]:
        """Jobs done: a final status other than expired."""
        return {
            j
            for j in [*self.book.expected, *self.audits]
            if self.rows.get(j, {}).get("status") in FINAL_STATUSES - {"expired"}
        }

    @property
    def expired(self) -> set[str]:
        """Jobs that ended `expired`: delivered (or redelivered) after their tick was superseded."""
        return {j for j in [*self.book.expected, *self.audits] if self.rows.get(j, {}).get("status") == "expired"}

    @property
    def redelivered(self) -> int:
        return sum(1 for j in self.committed if self.rows[j]["attempts"] > 1)

    def describe_pending(self) -> str:
        return ", ".join(f"{j}={self.rows.get(j, {}).get('status')}" for j in self.pending[:10])

    def partial_attempts(self, ledger: Ledger) -> tuple[list[Any], list[dict[str, Any]]]:
        """Committed attempts (job, observed_at) missing a token of their job, and every price row."""
        prices = ledger.prices_of(self.book.expected)
        attempts: dict[tuple[str, Any], set[str]] = {}
        for row in prices:
            attempts.setdefault((row["job_id"], row["observed_at"]), set()).add(row["token_key"])
        partial = [
            (job_id, sorted(self.book.expected[job_id][1] - keys))
            for (job_id, _), keys in attempts.items()
            if keys != self.book.expected[job_id][1]
        ]
        logged_without_prices = [
            j
            for j in self.committed
            if j in self.book.expected
            and self.book.expected[j][0] != "metadata"
            and not any(job == j for job, _ in attempts)
        ]
        return partial + [(j, "logged as done, no price") for j in logged_without_prices], prices

    def dead_letter_codes(self) -> dict[str, int]:
        return dict(Counter(d.error_code or "no response" for d in self.dead.values()))

    def dead_letter_reasons(self) -> list[str]:
        """The distinct reasons the dead letters carry (the function's error, or the delivery's)."""
        return sorted({reason_of(d) for d in self.dead.values()})


def observed_twice(prices: Iterable[Mapping[str, Any]]) -> list[str]:
    """Jobs whose prices were stored at more than one observation time: a job done twice.

    A redelivered price job observes under its first attempt's time, so its repeat is a no-op.
    """
    times: dict[str, set[Any]] = {}
    for row in prices:
        times.setdefault(row["job_id"], set()).add(row["observed_at"])
    return sorted(job for job, seen in times.items() if len(seen) > 1)


def database_invariants(ledger: Ledger) -> dict[str, int]:
    """Counts that must all be 0 (100 for the top-100 set): nothing torn, nothing twice."""
    return {
        "latest_not_newest": ledger.value(
            "SELECT count(*) FROM token_latest_prices l JOIN LATERAL (SELECT max(observed_at) AS newest"
            " FROM token_prices p WHERE p.token_key = l.token_key) p ON true WHERE l.observed_at <> p.newest"
        ),
        "duplicate_audits": ledger.value(
            "SELECT count(*) FROM (SELECT 1 FROM token_audits GROUP BY token_key, audit_provider HAVING count(*) > 1) d"
        ),
        "duplicate_job_rows": ledger.value(
            "SELECT count(*) FROM (SELECT 1 FROM job_logs WHERE row_kind = 'job' GROUP BY job_id HAVING count(*) > 1) d"
        ),
        "top100_members": ledger.value(
            "SELECT count(*) FROM token_set_members WHERE token_set = 'top100' AND left_at IS NULL"
        ),
    }


INVARIANTS_OK = {"latest_not_newest": 0, "duplicate_audits": 0, "duplicate_job_rows": 0, "top100_members": 100}


# --------------------------------------------------------------------------------------------
# Figures


@dataclass
class Figures:
    """The RESILIENCE lines of a session, printed at the end of the run (conftest hook)."""

    lines: list[str] = field(default_factory=list)

    def add(self, name: str, **values: Any) -> str:
        line = f"RESILIENCE {name} " + " ".join(f"{k}={_text(v)}" for k, v in values.items())
        self.lines.append(line)
        print(line)
        return line


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, Mapping):
        return ",".join(f"{k}:{_text(v)}" for k, v in sorted(value.items())) or "-"
    if isinstance(value, (list, tuple, set, frozenset)):
        return ",".join(_text(v) for v in value) or "-"
    return str(value)


FIGURES = Figures()
