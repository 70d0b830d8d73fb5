"""A broker down longer than a source's retry window: the dead letter is kept in PostgreSQL, not dropped.

Before issue #22 the dead-letter sink was a KafkaSink: with the broker down it failed too, and
the dispatcher (Knative's and the local plane alike) dropped the event and committed its offset.
Now the sink is the deadletter function: it stores the dead letter with its reason in
PostgreSQL and answers 200 without Kafka, and forwards it to the dead-letter topic at the next
dead letter once the broker is back.

The test's own copy of price-request-source points at a function that died (a port nobody
listens on) and retries for 12 s (2, 4, 6 s) instead of two minutes; the broker is stopped
after the first attempt and kept down until the retries ran out and the dead letter is stored.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from local import services
from local.eventing import EventingPlane, EventingSettings, load_manifests, resolve_topology
from local.eventing.telemetry import source_key
from tests.helpers.db import Database
from tests.helpers.e2e import BASE_MANIFESTS, function_env, serve_functions, wait_for
from tests.helpers.kafka import produce_plain, read_all
from tests.resilience.harness import FIGURES, PrivateInfra

pytestmark = [pytest.mark.infra, pytest.mark.slow]


@pytest.fixture
def topics(private_infra: PrivateInfra) -> dict[str, str]:
    names = {"price": f"test.price.{uuid.uuid4().hex[:8]}", "price_dead_letter": f"test.dlq.{uuid.uuid4().hex[:8]}"}
    services.create_topics(private_infra.bootstrap, {name: 1 for name in names.values()})
    return names


@pytest.fixture
def deadletter_url(private_infra: PrivateInfra, topics: dict[str, str]) -> Iterator[str]:
    services.empty_database(private_infra.database_url)
    env = function_env({}, private_infra.database_url, private_infra.bootstrap, topics)
    env["DEAD_LETTER_FORWARD_TIMEOUT_SECONDS"] = "2"
    for urls in serve_functions(("deadletter",), env):
        yield urls["deadletter"]


def _manifests(directory: Path, topic: str) -> Path:
    """The cluster's price-request-source on this test's topic, its function dead, its window 12 s."""
    source = next(
        d
        for d in yaml.safe_load_all((BASE_MANIFESTS / "kafkasources.yaml").read_text())
        if d and d["metadata"]["name"] == "price-request-source"
    )
    source["spec"].update(topics=[topic], initialOffset="earliest", consumerGroup=f"dl-outage-{uuid.uuid4().hex[:8]}")
    source["spec"]["delivery"].update(retry=3, backoffPolicy="linear", backoffDelay="PT2S", timeout="PT10S")
    (directory / "eventing.yaml").write_text(yaml.safe_dump(source, sort_keys=False))
    return directory


def _job(job_id: str) -> str:
    return json.dumps(
        {
            "job_type": "price",
            "token_type": "top100",
            "symbols": ["BTC"],
            "job_id": job_id,
            "timestamp": "2026-12-01T00:00:00Z",
        }
    )


def test_a_dead_letter_given_up_while_the_broker_is_down_is_kept_in_postgresql(
    private_infra: PrivateInfra, topics: dict[str, str], deadletter_url: str, tmp_path: Path
) -> None:
    manifests = load_manifests(_manifests(tmp_path, topics["price"]))
    environ = {
        "PRICE_FUNCTION_URL": f"http://127.0.0.1:{services.free_port()}",
        "DEADLETTER_FUNCTION_URL": deadletter_url,
    }
    plane = EventingPlane(
        resolve_topology(manifests, environ),
        EventingSettings(
            kafka_bootstrap_servers=private_infra.bootstrap,
            commit_interval_seconds=0.5,
            session_timeout_ms=6000,
            shutdown_grace_seconds=5,
            ping_jitter_ms=0,
            port=0,
        ),
        serve_status=False,
    )
    key = source_key("KafkaSource", "price-crawler", "price-request-source")
    db = Database(private_infra.database_url)
    plane.start()
    try:
        produce_plain(private_infra.bootstrap, topics["price"], _job("outage-1"))
        wait_for(lambda: plane.metrics.counter(key, "attempts") >= 1, 30, "the first attempt")
        private_infra.stop_kafka()
        stopped = time.monotonic()
        try:
            kept = wait_for(
                lambda: db.rows("SELECT job_id, error_code, reason, forwarded_at FROM dead_letters"),
                40,
                "the dead letter in PostgreSQL",
            )
            stored_after = time.monotonic() - stopped
            assert kept == [
                {
                    "job_id": "outage-1",
                    "error_code": None,
                    "reason": f"dead-lettered without a response from {environ['PRICE_FUNCTION_URL']}"
                    " (the function was down or timed out)",
                    "forwarded_at": None,  # Kafka is down: kept, not yet on the topic
                }
            ]
            assert db.value("SELECT status FROM job_logs WHERE job_id = 'outage-1'") == "dead_lettered"
            wait_for(lambda: plane.metrics.counter(key, "dead_lettered") == 1, 15, "the plane to see the DLS answer")
            assert plane.metrics.counter(key, "dropped") == 0
        finally:
            down_seconds = time.monotonic() - stopped
            private_infra.start_kafka()
        # Back: the next dead letter forwards the pending one too, oldest first.
        produce_plain(private_infra.bootstrap, topics["price"], _job("outage-2"))
        wait_for(
            lambda: db.value("SELECT count(*) FROM dead_letters WHERE forwarded_at IS NOT NULL") == 2,
            60,
            "both dead letters forwarded",
        )
    finally:
        plane.stop()
        db.close()
    forwarded = [
        json.loads(m.value() or b"{}")["job_id"] for m in read_all(private_infra.bootstrap, topics["price_dead_letter"])
    ]
    assert forwarded == ["outage-1", "outage-2"]
    assert plane.metrics.counter(key, "dropped") == 0
    FIGURES.add(
        "dead_letter_outage",
        broker_down_seconds=round(down_seconds, 1),
        retry_window_seconds=12,
        stored_after_seconds=round(stored_after, 1),
        dropped=0,
        forwarded_after_restart=len(forwarded),
    )
