"""At-least-once across a crash: SIGKILL the plane mid-delivery, restart it, nothing is lost (b.6)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from confluent_kafka import Producer
from eventing_helpers import Reply

REPOSITORY = Path(__file__).resolve().parents[2]
RECORDS = 60


def start_plane(manifests: Path, bootstrap: str, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPOSITORY),
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "EVENTING_MANIFESTS_DIR": str(manifests),
        "EVENTING_COMMIT_INTERVAL_SECONDS": "0.2",
        "EVENTING_SESSION_TIMEOUT_MS": "6000",
        "EVENTING_PORT": "0",
    }
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "local.eventing"], cwd=REPOSITORY, env=env, stdout=output, stderr=subprocess.STDOUT
        )


def delivered(sink) -> set[int]:
    """Records the sink acknowledged with 200."""
    return {int(r.body) for r in list(sink.requests) if r.status == 200}


def test_sigkill_mid_delivery_then_restart_loses_no_record(
    tmp_path, unique_topic, recording_sink, kafka_bootstrap, committed_offsets
):
    topic = unique_topic("crash", partitions=2)
    group = f"crash-{topic}"
    # Records 20 and 21 (one per partition) fail once and are retried after a 1 s backoff; the
    # plane is killed in the middle of that wait, after several commit intervals: exactly the
    # moment an offset must not have been committed yet. Later records queue behind them (ordered).
    seen: set[bytes] = set()

    def first_fails(_index, request):
        if request.body in (b"20", b"21") and request.body not in seen:
            seen.add(request.body)
            return Reply(503)
        return Reply(200, delay=0.01)

    sink = recording_sink(first_fails)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "acks": "all"})
    for n in range(RECORDS):
        producer.produce(topic, value=str(n).encode(), partition=n % 2)
    assert producer.flush(10) == 0
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "kafkasources.yaml").write_text(f"""
apiVersion: sources.knative.dev/v1beta1
kind: KafkaSource
metadata:
  name: crash-source
spec:
  consumerGroup: {group}
  bootstrapServers: [my-cluster-kafka-bootstrap.kafka:9092]
  topics: [{topic}]
  initialOffset: earliest
  sink:
    uri: {sink.url}
  delivery:
    retry: 3
    backoffDelay: PT0.5S
""")
    log = tmp_path / "plane.log"

    first = start_plane(manifests, kafka_bootstrap, log)
    try:
        deadline = time.monotonic() + 30
        while seen != {b"20", b"21"} and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.6)  # inside the 1 s backoff, after three commit intervals
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    delivered_before_kill = {int(r.body) for r in list(sink.requests) if r.status == 200}
    committed = committed_offsets(group, topic, partitions=2)
    assert len(delivered_before_kill) < RECORDS, "the kill came too late to be mid-delivery"
    for partition, offset in enumerate(committed):
        # never committed ahead of delivery: every offset below the commit reached the sink
        below = {n for n in range(RECORDS) if n % 2 == partition and n // 2 < offset}
        assert below <= set(delivered_before_kill), f"partition {partition} committed {offset} before delivery"

    second = start_plane(manifests, kafka_bootstrap, log)
    try:
        deadline = time.monotonic() + 60
        while delivered(sink) != set(range(RECORDS)) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # let the last commits happen before the clean stop
    finally:
        second.send_signal(signal.SIGTERM)
        exit_code = second.wait(30)
    lost = set(range(RECORDS)) - delivered(sink)
    assert not lost, f"lost records: {sorted(lost)}"
    assert exit_code == 0, log.read_text()[-3000:]
    assert committed_offsets(group, topic, partitions=2) == [RECORDS // 2, RECORDS // 2]  # clean stop committed all
