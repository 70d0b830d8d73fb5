"""A local three-node KRaft cluster of the embedded Kafka: the production topology on one machine.

Each node is a combined controller+broker (one JVM) with its own ports, its own data dir
(`<state dir>/kafka-<id>/`), pid file and log, started through the single node's code path
(`kafka._ensure_node`). The brokers default to replication factor 3 and
`min.insync.replicas=2`, as infra/cluster/production declares; the project's topics get the
same (`create_project_topics(bootstrap, replication=CLUSTER_REPLICATION)`). The three nodes
are the static controller quorum too: two must run for a controller to be elected.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from local.services.kafka import (
    KAFKA_START_TIMEOUT,
    KafkaNode,
    KafkaQuorum,
    Replication,
    _ensure_node,
    _kafka_cluster_id,
)
from local.services.processes import LOCAL_DIR, STOP_TIMEOUT, EmbeddedService, ServiceError

log = logging.getLogger(__name__)

CLUSTER_REPLICATION = Replication(factor=3, min_insync_replicas=2)
CLUSTER_HEAP = "-Xms128m -Xmx256m"  # three JVMs on a small machine; the local load is tiny


@dataclass(frozen=True)
class ClusterLayout:
    """Where the nodes of a local cluster listen, and the replication they default to."""

    nodes: tuple[KafkaNode, ...]
    replication: Replication = CLUSTER_REPLICATION

    @classmethod
    def on_ports(cls, ports: Sequence[tuple[int, int]]) -> ClusterLayout:
        """Nodes 1..n on the given (broker port, controller port) pairs."""
        return cls(tuple(KafkaNode(i, p, c, name=f"kafka-{i}") for i, (p, c) in enumerate(ports, start=1)))

    @classmethod
    def from_base(cls, base: int, size: int = 3) -> ClusterLayout:
        """Node i on base + 2(i-1) with its controller on the next port."""
        return cls.on_ports([(base + 2 * i, base + 2 * i + 1) for i in range(size)])

    @property
    def bootstrap(self) -> str:
        return ",".join(node.address for node in self.nodes)

    @property
    def quorum(self) -> KafkaQuorum:
        return KafkaQuorum(self.nodes, self.replication)

    def node(self, node_id: int) -> KafkaNode:
        (found,) = [n for n in self.nodes if n.node_id == node_id]
        return found


def _cluster_id(layout: ClusterLayout, state_dir: Path) -> str:
    """The id every node is formatted with: kept while the quorum stays, new when it changes."""
    path = state_dir / "run" / "kafka-cluster.json"
    quorum = layout.quorum.properties()
    try:
        saved = json.loads(path.read_text())
        if saved.get("quorum") == quorum:
            return str(saved["cluster_id"])
    except (OSError, ValueError, KeyError):
        pass
    cluster_id = _kafka_cluster_id()  # nodes formatted for another id re-format (kafka.KafkaQuorum.formatted_for)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"cluster_id": cluster_id, "quorum": quorum}))
    return cluster_id


class KafkaCluster:
    """The running nodes of a local cluster: each can be stopped (or killed) and started again."""

    def __init__(self, layout: ClusterLayout, state_dir: Path, *, timeout: float = KAFKA_START_TIMEOUT):
        self.layout = layout
        self.state_dir = Path(state_dir)
        self.timeout = timeout
        self.cluster_id = _cluster_id(layout, self.state_dir)
        self.nodes: dict[int, EmbeddedService] = {}

    @property
    def bootstrap(self) -> str:
        return self.layout.bootstrap

    @property
    def replication(self) -> Replication:
        return self.layout.replication

    def running(self) -> list[int]:
        """Ids of the nodes this handle started and has not stopped."""
        return sorted(self.nodes)

    def start(self, node_ids: Iterable[int] | None = None) -> float:
        """Start the given nodes (default: every node not running) side by side; return the seconds taken.

        Side by side because a node is ready only once a controller is elected, which takes
        two voters: started one after the other, the first would wait for ever.
        """
        wanted = [n for n in (node_ids or [n.node_id for n in self.layout.nodes]) if n not in self.nodes]
        started_at = time.monotonic()
        errors: list[str] = []
        lock = threading.Lock()

        def start_one(node_id: int) -> None:
            try:
                service = _ensure_node(
                    self.layout.node(node_id),
                    self.layout.quorum,
                    state_dir=self.state_dir,
                    timeout=self.timeout,
                    cluster_id=self.cluster_id,
                    heap=CLUSTER_HEAP,
                )
                if service is None or not service.started:
                    raise ServiceError(f"node {node_id}: another broker already answers at its port")
                with lock:
                    self.nodes[node_id] = service
            except Exception as exc:  # reported below, for every node at once
                with lock:
                    errors.append(f"node {node_id}: {exc}")

        threads = [threading.Thread(target=start_one, args=(n,), name=f"kafka-{n}-start") for n in wanted]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise ServiceError("the local Kafka cluster did not start:\n" + "\n".join(errors))
        return time.monotonic() - started_at

    def stop_node(
        self, node_id: int, stop_signal: signal.Signals = signal.SIGTERM, timeout: float = STOP_TIMEOUT
    ) -> None:
        """Stop one node: SIGTERM is a controlled shutdown (its leaderships move first), SIGKILL a crash."""
        service = self.nodes.pop(node_id)
        log.info("kafka cluster: %s node %d (pid %d)", stop_signal.name, node_id, service.pid)
        if not service.stop(timeout, stop_signal=stop_signal):
            raise ServiceError(f"kafka node {node_id} was left running (another lease holds it)")

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop every running node, side by side.

        Side by side: a node shuts down its broker before its controller, so while they all
        stop the quorum stays up to take their controlled shutdowns. One after the other, the
        last node would wait for a controller that is gone (and be killed after `timeout`).
        """
        threads = [
            threading.Thread(target=self.stop_node, args=(n,), kwargs={"timeout": timeout}, name=f"kafka-{n}-stop")
            for n in self.running()
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def ensure_kafka_cluster(
    layout: ClusterLayout, *, state_dir: Path = LOCAL_DIR, timeout: float = KAFKA_START_TIMEOUT
) -> KafkaCluster:
    """Start the local cluster of `layout` (every node at once) and return its handle once each answers."""
    cluster = KafkaCluster(layout, state_dir, timeout=timeout)
    try:
        cluster.start()
    except BaseException:
        cluster.stop(timeout=10)
        raise
    return cluster
