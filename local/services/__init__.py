"""Lifecycle of the embedded Kafka broker (KRaft) and PostgreSQL cluster of a local run.

One module per concern: `processes` (pid files, leases, locks, ports), `kafka` (the broker),
`topics` (the project's topics, from infra/knative/base/kafkatopics.yaml), `postgres` (the cluster
and its databases); this package re-exports their public names.

`make up`, the test suite and the benchmarks call `ensure_kafka()` / `ensure_postgres()`;
the resilience suite's broker-loss test runs three nodes with `ensure_kafka_cluster()`
(`kafka_cluster`: RF 3, min.insync.replicas 2, each node like the single one).
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
    kafka-<id>/...                   the same per node of a cluster; run/kafka-cluster.json its id
    postgres/data/, postgres/superuser.password
    run/<name>.json                  pid file: pid, address, how to recognise the process
    run/<name>.leases/               one empty file per handle in use
    run/<name>.lock                  serialises start/stop between processes
    logs/<name>.log                  the process's stdout and stderr
"""

from local.services.kafka import (
    KAFKA_LIBS_DIR,
    KAFKA_LOG4J_CONFIG,
    KAFKA_START_TIMEOUT,
    SINGLE_NODE,
    KafkaNode,
    Replication,
    ensure_kafka,
    kafka_version,
)
from local.services.kafka_cluster import (
    CLUSTER_REPLICATION,
    ClusterLayout,
    KafkaCluster,
    ensure_kafka_cluster,
)
from local.services.postgres import (
    POSTGRES_SETTINGS,
    POSTGRES_START_TIMEOUT,
    POSTGRES_SUPERUSER,
    create_database,
    drop_database,
    drop_orphaned_databases,
    empty_database,
    ensure_postgres,
    with_database,
)
from local.services.processes import (
    LOCAL_DIR,
    PROJECT_ROOT,
    STOP_TIMEOUT,
    EmbeddedService,
    ServiceError,
    free_port,
    port_open,
    process_alive,
    stop_all,
    wait_for_port,
)
from local.services.topics import (
    KAFKA_TOPICS_MANIFEST,
    TopicSpec,
    create_project_topics,
    create_topics,
    delete_topics,
    project_topics,
)

__all__ = [
    "CLUSTER_REPLICATION",
    "ClusterLayout",
    "EmbeddedService",
    "KAFKA_LIBS_DIR",
    "KAFKA_LOG4J_CONFIG",
    "KAFKA_START_TIMEOUT",
    "KAFKA_TOPICS_MANIFEST",
    "KafkaCluster",
    "KafkaNode",
    "LOCAL_DIR",
    "POSTGRES_SETTINGS",
    "POSTGRES_START_TIMEOUT",
    "POSTGRES_SUPERUSER",
    "PROJECT_ROOT",
    "Replication",
    "SINGLE_NODE",
    "STOP_TIMEOUT",
    "ServiceError",
    "TopicSpec",
    "create_database",
    "create_project_topics",
    "create_topics",
    "delete_topics",
    "drop_database",
    "drop_orphaned_databases",
    "empty_database",
    "ensure_kafka",
    "ensure_kafka_cluster",
    "ensure_postgres",
    "free_port",
    "kafka_version",
    "port_open",
    "process_alive",
    "project_topics",
    "stop_all",
    "wait_for_port",
    "with_database",
]
