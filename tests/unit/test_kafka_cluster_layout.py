"""local.services: the server.properties of a single node and of a three-node cluster."""

from __future__ import annotations

from pathlib import Path

from local.services import CLUSTER_REPLICATION, ClusterLayout, KafkaNode
from local.services.kafka import KafkaQuorum, _kafka_properties


def _properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def test_the_single_node_stays_a_standalone_quorum_with_one_copy() -> None:
    node = KafkaNode(1, 49092, 49093)
    props = _properties(_kafka_properties(node, KafkaQuorum((node,)), Path("/data")))
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:49093"
    assert "controller.quorum.voters" not in props
    assert props["default.replication.factor"] == props["offsets.topic.replication.factor"] == "1"
    assert props["min.insync.replicas"] == "1"
    # Unchanged signature: a single node's existing data dir is not re-formatted.
    assert KafkaQuorum((node,)).formatted_for(node, "any") == "127.0.0.1:49092,127.0.0.1:49093"


def test_a_cluster_node_knows_every_voter_and_writes_on_two_of_three() -> None:
    layout = ClusterLayout.from_base(49100)
    assert [(n.node_id, n.port, n.controller_port, n.name) for n in layout.nodes] == [
        (1, 49100, 49101, "kafka-1"),
        (2, 49102, 49103, "kafka-2"),
        (3, 49104, 49105, "kafka-3"),
    ]
    assert layout.bootstrap == "127.0.0.1:49100,127.0.0.1:49102,127.0.0.1:49104"
    props = _properties(_kafka_properties(layout.node(2), layout.quorum, Path("/data")))
    assert props["node.id"] == "2"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:49101,2@127.0.0.1:49103,3@127.0.0.1:49105"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:49102,CONTROLLER://127.0.0.1:49103"
    for key in (
        "default.replication.factor",
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
    ):
        assert props[key] == str(CLUSTER_REPLICATION.factor) == "3"
    assert props["min.insync.replicas"] == props["transaction.state.log.min.isr"] == "2"
    # Each node's format signature names the quorum and the cluster id: a new id re-formats every node.
    assert layout.quorum.formatted_for(layout.node(1), "a") != layout.quorum.formatted_for(layout.node(1), "b")
