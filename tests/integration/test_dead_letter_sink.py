"""The deadletter function as the request sources' dead-letter sink, on real PostgreSQL and Kafka.

Each dead letter is kept in `dead_letters` and ends its job in one transaction, then is
forwarded to its dead-letter topic; with Kafka unreachable it is still answered 2xx and kept
pending, and forwarded at a later dead letter or forward tick once Kafka is back; with PostgreSQL unreachable it
is answered 503 (the KafkaSource retries the dead-letter delivery); a redelivery is kept once.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from local.services import free_port
from shared.config import Settings
from shared.crawler import store
from shared.crawler.pipelines.dead_letters import take_dead_letter_or_tick
from shared.db.connection import connect
from shared.runtime.app import FunctionApp
from shared.runtime.resources import Resources
from tests.helpers.db import Database
from tests.helpers.kafka import read_all

pytestmark = pytest.mark.infra

SOURCE = "/apis/v1/namespaces/price-crawler/kafkasources/price-request-source#price-crawler.price.request"


def _app(database_url: str, bootstrap: str, topic: str) -> FunctionApp:
    settings = Settings(
        database_url=database_url,
        kafka_bootstrap_servers=bootstrap,
        price_dead_letter_topic=topic,
        dead_letter_forward_timeout_seconds=2.0,
        db_connect_timeout_seconds=1.0,
    )
    return FunctionApp(name="deadletter", handler=take_dead_letter_or_tick, resources=Resources(settings))


def _dead_letter(job_id: str, offset: int, *, code: int | None = 503) -> tuple[dict[str, str], bytes]:
    """What the plane POSTs to the dead-letter sink: the failed job event plus knativeerror*."""
    body = json.dumps(
        {
            "job_type": "price",
            "token_type": "top100",
            "symbols": ["BTC"],
            "job_id": job_id,
            "timestamp": "2026-12-01T00:00:00Z",
        }
    ).encode()
    headers = {
        "ce-specversion": "1.0",
        "ce-id": f"job-{job_id}",
        "ce-source": "/price-crawler/scheduler",
        "ce-type": "price-crawler.job.price",
        "ce-partitionkey": "top100-batch-1",
        "ce-knativekafkapartition": "0",
        "ce-knativekafkaoffset": str(offset),
        "ce-knativeerrordest": "http://price.price-crawler.svc.cluster.local",
        "content-type": "application/json",
    }
    if code is not None:
        headers["ce-knativeerrorcode"] = str(code)
        headers["ce-knativeerrordata"] = base64.b64encode(b'{"error": "PostgreSQL unreachable"}').decode()
    return headers, body


@pytest.fixture
def db(clean_db: str) -> Iterator[Database]:
    database = Database(clean_db)
    yield database
    database.close()


def test_a_dead_letter_is_kept_ends_its_job_and_is_forwarded_once(
    clean_db: str, kafka_bootstrap: str, unique_topic, db: Database
) -> None:
    topic = unique_topic("price-dlq", partitions=1)
    conn = connect(clean_db)
    try:
        store.start_job(conn, store.JobRecord("job-1", "price", "top100", "job-job-1"), datetime.now(UTC), 1)
    finally:
        conn.close()
    app = _app(clean_db, kafka_bootstrap, topic)
    try:
        headers, body = _dead_letter("job-1", 41)
        first = app.handle_event_request(headers, body)
        again = app.handle_event_request(headers, body)  # the plane redelivers the same dead letter
    finally:
        app.close()

    assert first.status == 200 and again.status == 200
    assert json.loads(first.body)["stored"] is True and json.loads(again.body)["stored"] is False
    row = db.rows("SELECT * FROM dead_letters")
    assert len(row) == 1
    kept = row[0]
    assert (kept["event_id"], kept["event_source"], kept["job_id"]) == (
        "job-job-1",
        "/price-crawler/scheduler",
        "job-1",
    )
    assert kept["error_code"] == 503 and kept["reason"] == "dead-lettered after HTTP 503: PostgreSQL unreachable"
    assert bytes(kept["data"]) == body and kept["record_key"] == "top100-batch-1"
    assert kept["attributes"]["knativeerrorcode"] == "503" and kept["forwarded_at"] is not None
    job = db.rows("SELECT status, message FROM job_logs WHERE row_kind = 'job'")
    assert job == [{"status": "dead_lettered", "message": kept["reason"]}]

    records = read_all(kafka_bootstrap, topic)
    assert len(records) == 1  # forwarded once, though delivered twice
    record = records[0]
    headers_out = dict(record.headers() or [])
    assert record.key() == b"top100-batch-1" and record.value() == body
    assert headers_out["ce_id"] == b"job-job-1" and headers_out["content-type"] == b"application/json"
    assert headers_out["ce_knativeerrorcode"] == b"503"
    assert base64.b64decode(headers_out["ce_knativeerrordata"] or b"") == b'{"error": "PostgreSQL unreachable"}'


def test_kafka_down_still_answers_2xx_and_the_letter_is_forwarded_once_kafka_is_back(
    clean_db: str, kafka_bootstrap: str, unique_topic, db: Database
) -> None:
    topic = unique_topic("price-dlq", partitions=1)
    down = _app(clean_db, f"127.0.0.1:{free_port()}", topic)  # no broker listens there
    try:
        answer = down.handle_event_request(*_dead_letter("job-2", 42, code=None))
    finally:
        down.close()
    assert answer.status == 200, answer.body
    assert json.loads(answer.body)["forwarded"] is None
    pending = db.rows("SELECT job_id, forwarded_at, error_code, reason FROM dead_letters")
    assert pending == [
        {
            "job_id": "job-2",
            "forwarded_at": None,
            "error_code": None,
            "reason": "dead-lettered without a response from http://price.price-crawler.svc.cluster.local"
            " (the function was down or timed out)",
        }
    ]
    assert db.value("SELECT status FROM job_logs WHERE job_id = 'job-2'") == "dead_lettered"
    assert read_all(kafka_bootstrap, topic) == []

    back = _app(clean_db, kafka_bootstrap, topic)  # Kafka is back: the next dead letter forwards both
    try:
        answer = back.handle_event_request(*_dead_letter("job-3", 43))
    finally:
        back.close()
    assert answer.status == 200 and json.loads(answer.body)["forwarded"] == 2
    assert db.value("SELECT count(*) FROM dead_letters WHERE forwarded_at IS NULL") == 0
    ids = [dict(r.headers() or [])["ce_id"] for r in read_all(kafka_bootstrap, topic)]
    assert ids == [b"job-job-2", b"job-job-3"]  # oldest first


def _forward_tick() -> tuple[dict[str, str], bytes]:
    """What the PingSource dead-letter-forward-tick POSTs (binary mode, docs/knative-eventing.md e)."""
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "tick-1",
        "ce-source": "/apis/v1/namespaces/price-crawler/pingsources/dead-letter-forward-tick",
        "ce-type": "dev.knative.sources.ping",
        "content-type": "application/json",
    }
    return headers, b'{"forward":"pending"}'


def test_the_forward_tick_forwards_what_kafka_refused_without_a_new_dead_letter(
    clean_db: str, kafka_bootstrap: str, unique_topic, db: Database
) -> None:
    topic = unique_topic("price-dlq", partitions=1)
    down = _app(clean_db, f"127.0.0.1:{free_port()}", topic)
    try:
        assert down.handle_event_request(*_dead_letter("job-5", 45)).status == 200
        idle = down.handle_event_request(*_forward_tick())  # still down: nothing forwarded, nothing lost
    finally:
        down.close()
    assert idle.status == 200 and json.loads(idle.body) == {"forwarded": None}
    assert db.value("SELECT count(*) FROM dead_letters WHERE forwarded_at IS NULL") == 1

    back = _app(clean_db, kafka_bootstrap, topic)
    try:
        first = back.handle_event_request(*_forward_tick())
        second = back.handle_event_request(*_forward_tick())
    finally:
        back.close()
    assert json.loads(first.body) == {"forwarded": 1} and json.loads(second.body) == {"forwarded": 0}
    assert db.value("SELECT count(*) FROM dead_letters") == 1  # the tick is not a dead letter itself
    assert [dict(r.headers() or [])["ce_id"] for r in read_all(kafka_bootstrap, topic)] == [b"job-job-5"]


def test_postgresql_down_answers_503_so_the_dead_letter_delivery_is_retried(kafka_bootstrap: str, unique_topic) -> None:
    topic = unique_topic("price-dlq", partitions=1)
    app = _app(f"postgresql://crawler:crawler@127.0.0.1:{free_port()}/price_crawler", kafka_bootstrap, topic)
    try:
        answer = app.handle_event_request(*_dead_letter("job-4", 44))
    finally:
        app.close()
    assert answer.status == 503, answer.body
    assert read_all(kafka_bootstrap, topic) == []  # nothing forwarded that was not kept first
