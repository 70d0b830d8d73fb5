"""The project's Kafka topics, read from the one table of them: infra/knative/base/kafkatopics.yaml."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from local.services.kafka import (
    SINGLE_NODE,
    Replication,
    _admin,
)
from local.services.processes import (
    PROJECT_ROOT,
    ServiceError,
)

log = logging.getLogger(__name__)

KAFKA_TOPICS_MANIFEST = PROJECT_ROOT / "infra" / "knative" / "base" / "kafkatopics.yaml"


@dataclass(frozen=True)
class TopicSpec:
    """A topic to create: partitions and topic-level config (replication comes from the cluster)."""

    partitions: int
    config: Mapping[str, str] = field(default_factory=dict)


# Cluster settings that cannot hold on a single local broker: the `Replication` decides them.
_CLUSTER_ONLY_TOPIC_CONFIG = {"min.insync.replicas"}


def project_topics(manifest: Path = KAFKA_TOPICS_MANIFEST) -> dict[str, TopicSpec]:
    """The project's topics, as the cluster's Strimzi KafkaTopic manifests declare them (the one table)."""
    if not manifest.is_file():
        raise ServiceError(f"{manifest} is missing: it declares the project's topics")
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
    replication_factor: int = 1,
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
        NewTopic(name, num_partitions=partitions, replication_factor=replication_factor, config=dict(config or {}))
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


def create_project_topics(bootstrap: str, *, replication: Replication = SINGLE_NODE) -> list[str]:
    """Create the project's topics (see `project_topics`); return those created.

    On a cluster (`replication` of `kafka_cluster.CLUSTER_REPLICATION`) every topic gets its
    replicas and `min.insync.replicas`, as the production overlay patches the same table.
    """
    created = []
    quorum = {"min.insync.replicas": str(replication.min_insync_replicas)} if replication.factor > 1 else {}
    by_config: dict[tuple, dict[str, int]] = {}
    for name, spec in project_topics().items():
        by_config.setdefault(tuple(sorted({**spec.config, **quorum}.items())), {})[name] = spec.partitions
    for config, topics in by_config.items():
        created += create_topics(bootstrap, topics, dict(config), replication_factor=replication.factor)
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
