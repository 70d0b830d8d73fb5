"""The physical limits of this machine, measured in the same run as the system.

- **raw PostgreSQL ingest**: `COPY token_prices FROM STDIN` of rows shaped like a tick's
  (same table, same partition, same primary key), one transaction per batch, from
  pg8000 over a TCP_NODELAY socket — the fastest way these rows enter the database
  from Python.
- **raw Kafka round trip**: confluent-kafka produce (acks=all, idempotent, linger 0) to a
  consumer in the same process, one message at a time: the least time a hop through
  Kafka takes. And Kafka throughput for job-sized messages (100 symbols each), produced
  as the scheduler does (linger 5 ms, lz4).
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from bench.infra import BenchInfra
from bench.ticks import Distribution
from local import services

COPY_CHUNK_BYTES = 1 << 20  # one COPY data message per MiB: no per-8-KiB flushes


@dataclass
class CopyFigures:
    rows_per_batch: int
    batches: int
    rows_per_second: float  # median over batches
    batch_seconds: float  # median time to COPY and commit one batch


@dataclass
class KafkaFigures:
    round_trip: Distribution  # seconds
    messages_per_second: float  # job-sized messages, produce → consume
    message_bytes: int


def copy_ingest(infra: BenchInfra, rows_per_batch: int, batches: int) -> CopyFigures:
    """COPY `batches` batches of `rows_per_batch` price rows; each batch one transaction."""
    conn = infra.connect(nodelay=True)
    try:
        keys = [r[0] for r in conn.run("SELECT token_key FROM tokens ORDER BY token_key LIMIT :n", n=rows_per_batch)]
        keys += [f"bench:copy:{i}" for i in range(rows_per_batch - len(keys))]  # no FK on token_prices
        # A fixed past day: never collides with the system's rows, lands in one partition.
        base = (datetime.now(timezone.utc) - timedelta(hours=1)).replace(microsecond=0)
        run = uuid.uuid4().hex[:8]
        seconds = []
        for batch in range(batches):
            observed = (base + timedelta(milliseconds=batch)).isoformat()
            lines = [
                f"{key},{Decimal(1000 + i) / Decimal(7):.12f},binance,{observed},bench-copy-{run}-{batch}\n"
                for i, key in enumerate(keys)
            ]
            data = "".join(lines).encode()
            chunks = [data[i : i + COPY_CHUNK_BYTES] for i in range(0, len(data), COPY_CHUNK_BYTES)]
            began = time.perf_counter()
            conn.run("BEGIN")
            conn.run(
                "COPY token_prices (token_key, price_usdt, source, observed_at, job_id) FROM STDIN WITH (FORMAT csv)",
                stream=chunks,
            )
            conn.run("COMMIT")
            seconds.append(time.perf_counter() - began)
        conn.run("DELETE FROM token_prices WHERE job_id LIKE :j", j=f"bench-copy-{run}-%")
    finally:
        conn.close()
    median = statistics.median(seconds)
    return CopyFigures(rows_per_batch, batches, rows_per_batch / median, median)


def kafka_round_trip(infra: BenchInfra, round_trips: int, throughput_messages: int) -> KafkaFigures:
    """Round-trip latency of single messages, then throughput of job-sized messages."""
    from confluent_kafka import OFFSET_END, Consumer, Producer, TopicPartition

    topic = f"bench.roundtrip.{uuid.uuid4().hex[:8]}"
    services.create_topics(infra.bootstrap, {topic: 1})
    consumer = Consumer(
        {
            "bootstrap.servers": infra.bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 100,
        }
    )
    consumer.assign([TopicPartition(topic, 0, OFFSET_END)])
    try:
        quick = Producer(
            {"bootstrap.servers": infra.bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 0}
        )
        _wait_until_consuming(quick, consumer, topic)
        samples = []
        for i in range(round_trips):
            payload = f"rt-{i}".encode()
            began = time.perf_counter()
            quick.produce(topic, payload)
            quick.poll(0)
            while True:
                message = consumer.poll(1.0)
                if message is not None and message.error() is None and message.value() == payload:
                    break
            samples.append((time.perf_counter() - began, 1))
        quick.flush(10)

        job = json.dumps(
            {
                "job_type": "price",
                "token_type": "top100",
                "symbols": [f"SYM{i:04d}" for i in range(100)],
                "timestamp": "2026-01-01T00:00:00.000000Z",
                "job_id": "top100-price:x:0",
            }
        ).encode()
        bulk = Producer(
            {
                "bootstrap.servers": infra.bootstrap,
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 5,
                "compression.type": "lz4",
            }
        )
        began = time.perf_counter()
        for _ in range(throughput_messages):
            while True:
                try:
                    bulk.produce(topic, job)
                    break
                except BufferError:
                    bulk.poll(0.05)
            bulk.poll(0)
        bulk.flush(60)
        received = 0
        while received < throughput_messages:
            messages = consumer.consume(1000, timeout=2.0)
            if not messages:
                break
            received += sum(1 for m in messages if m.error() is None and m.value() == job)
        elapsed = time.perf_counter() - began
    finally:
        consumer.close()
        services.delete_topics(infra.bootstrap, [topic])
    return KafkaFigures(Distribution.of(samples), received / elapsed, len(job))


def _wait_until_consuming(producer, consumer, topic: str, timeout: float = 30.0) -> None:
    """Produce probes until the consumer sees one: its assignment and fetch position are live."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        producer.produce(topic, b"probe")
        producer.flush(5)
        message = consumer.poll(1.0)
        if message is not None and message.error() is None:
            while consumer.poll(0.2) is not None:  # drain other probes
                pass
            return
    raise RuntimeError(f"the round-trip consumer never received from {topic}")
