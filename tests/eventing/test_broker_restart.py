"""A broker restart under a running plane: it keeps running and reconnects by itself."""

from __future__ import annotations

import pytest
from confluent_kafka import Producer

from local import services

pytestmark = pytest.mark.slow  # starts a private broker twice (~10-20 s)


def free_port_pair() -> int:
    for _ in range(50):
        port = services.free_port()
        if not services.port_open("127.0.0.1", port + 1):
            return port
    raise RuntimeError("no two adjacent free ports")


def test_plane_survives_a_broker_restart(tmp_path, recording_sink, run_plane, wait_until, monkeypatch):
    port = free_port_pair()
    address = f"127.0.0.1:{port}"
    monkeypatch.setenv("KAFKA_CONTROLLER_PORT", str(port + 1))
    broker = services.ensure_kafka(address, state_dir=tmp_path / "state")
    restarted = producer = plane = None
    try:
        topic = "restart.test"
        services.create_topics(address, {topic: 1})
        sink = recording_sink()
        plane = run_plane(
            f"""
apiVersion: sources.knative.dev/v1beta1
kind: KafkaSource
metadata: {{name: ks}}
spec:
  bootstrapServers: [my-cluster-kafka-bootstrap.kafka:9092]
  topics: [{topic}]
  initialOffset: earliest
  sink: {{uri: "{sink.url}"}}
""",
            kafka_bootstrap_servers=address,
        )
        producer = Producer({"bootstrap.servers": address, "acks": "all", "message.timeout.ms": 60000})
        producer.produce(topic, b'"before"')
        assert producer.flush(10) == 0
        sink.wait_for(1)

        def committed() -> dict:
            return plane.metrics.snapshot()["sources"]["kafkasources/default/ks"]["committed"]

        wait_until(lambda: committed().get(topic) == {"0": 1}, message="first record committed")

        broker.stop()
        wait_until(lambda: not services.port_open("127.0.0.1", port), message="broker down")
        # The consumer threads keep running and reconnecting, but health says the broker is gone.
        wait_until(lambda: plane.health()["status"] == "degraded", timeout=20, message="health reports the broker down")
        problems = plane.health()["sources"]["kafkasources/default/ks"]["problems"]
        assert any("no broker reachable" in p for p in problems), problems
        restarted = services.ensure_kafka(address, state_dir=tmp_path / "state")
        producer.produce(topic, b'"after"')
        assert producer.flush(30) == 0

        wait_until(lambda: b'"after"' in [r.body for r in sink.requests], timeout=60, message="delivery after restart")
        assert [r.body for r in sink.requests] == [b'"before"', b'"after"']  # committed before the outage: no replay
        wait_until(lambda: plane.health()["status"] == "ok", timeout=20, message="health ok again after the restart")
    finally:
        if plane is not None:
            plane.stop()  # while the broker still runs: the consumer leaves its group cleanly
        del producer  # no reconnect noise once the broker is gone for good
        (restarted or broker).stop()
