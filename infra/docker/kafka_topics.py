"""Create the Kafka topics declared in infra/knative/base/kafkatopics.yaml on a plain Kafka.

On a cluster Strimzi's Topic Operator creates them from the KafkaTopic resources; this is
the same declaration applied to the docker compose broker, so partitions and retention
are defined once. Existing topics are left as they are.

    python infra/docker/kafka_topics.py [--bootstrap-servers kafka:9092]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml
from confluent_kafka.admin import AdminClient, NewTopic

TOPICS_FILE = Path(__file__).resolve().parents[1] / "knative" / "base" / "kafkatopics.yaml"


def declared_topics(path: Path = TOPICS_FILE) -> list[NewTopic]:
    """One NewTopic per Strimzi KafkaTopic in `path`."""
    topics = []
    for doc in yaml.safe_load_all(path.read_text()):
        if not doc or doc.get("kind") != "KafkaTopic":
            continue
        spec = doc["spec"]
        topics.append(
            NewTopic(
                spec.get("topicName", doc["metadata"]["name"]),
                num_partitions=spec.get("partitions", 1),
                replication_factor=spec.get("replicas", 1),
                config={k: str(v) for k, v in spec.get("config", {}).items()},
            )
        )
    return topics


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap-servers", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092"))
    args = parser.parse_args()
    admin = AdminClient({"bootstrap.servers": args.bootstrap_servers})
    existing = set(admin.list_topics(timeout=30).topics)
    declared = declared_topics()
    missing = [t for t in declared if t.topic not in existing]
    failed = False
    for name, future in (admin.create_topics(missing) if missing else {}).items():
        try:
            future.result()
            print(f"created {name}")
        except Exception as exc:  # one bad topic must not hide the others
            print(f"cannot create {name}: {exc}", file=sys.stderr)
            failed = True
    print(f"{len(declared) - len(missing)} of {len(declared)} declared topics already existed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
