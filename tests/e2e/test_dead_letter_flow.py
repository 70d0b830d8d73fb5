"""Every dead-lettered job is kept and ends as `dead_lettered`, end to end on real Kafka and PostgreSQL:

    request topic → KafkaSource → function (400, or no answer at all)
    → dead-letter sink: the deadletter function → dead_letters + job_logs (one transaction)
    → forwarded to the dead-letter topic (what the replay CLI reads)

The local eventing plane runs the cluster's own price-request-source of `infra/knative/base`
(its dead-letter sink the deadletter Service) on fresh topics; the price and deadletter
functions run as processes under functions-framework. A second copy of price-request-source
points at a port nobody listens on: a function that died.
"""

from __future__ import annotations

import base64
import copy
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from local.eventing import EventingPlane, EventingSettings, load_manifests, resolve_topology
from local.services import free_port
from shared.crawler import store
from shared.db.connection import connect
from tests.helpers.db import Database
from tests.helpers.e2e import function_env, isolated_manifests, serve_functions, wait_for
from tests.helpers.kafka import produce_plain, read_all

pytestmark = [pytest.mark.infra, pytest.mark.slow]

FUNCTIONS = ("price", "deadletter")
FLOW_TIMEOUT = 30.0


@pytest.fixture
def topics(unique_topic) -> dict[str, str]:
    return {
        "price": unique_topic("price", partitions=1),
        "down": unique_topic("price-down", partitions=1),
        "price_dead_letter": unique_topic("price-dlq", partitions=1),
    }


@pytest.fixture
def function_urls(clean_db: str, kafka_bootstrap: str, topics: dict[str, str]) -> Iterator[dict[str, str]]:
    yield from serve_functions(FUNCTIONS, function_env({}, clean_db, kafka_bootstrap, topics))


def _with_a_dead_function(directory: Path, topics: dict[str, str], suffix: str) -> Path:
    """Add a price source whose function is down (Service `down`, on the `down` topic, with the
    same dead-letter sink: the deadletter function)."""
    path = directory / "eventing.yaml"
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    price = next(d for d in documents if d["metadata"]["name"] == "price-request-source")
    down = copy.deepcopy(price)
    down["metadata"]["name"] = "down-request-source"
    down["spec"].update(topics=[topics["down"]], consumerGroup=f"price-crawler-down-{suffix}")
    down["spec"]["sink"]["ref"]["name"] = "down"
    # The price source retries for two minutes (a database outage of a minute must not dead-letter);
    # this test is about what happens after the last retry, so it gets there in a second.
    down["spec"]["delivery"].update(retry=1, backoffPolicy="linear", backoffDelay="PT0.5S")
    path.write_text(yaml.safe_dump_all([*documents, down], sort_keys=False))
    return directory


def _job(job_id: str) -> dict:
    return {
        "job_type": "price",
        "token_type": "top100",
        "symbols": ["BTC"],
        "job_id": job_id,
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }


def test_poison_and_died_jobs_end_as_dead_lettered_with_their_reason(
    clean_db: str, kafka_bootstrap: str, topics: dict[str, str], function_urls: dict[str, str], tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:8]
    manifests = load_manifests(
        _with_a_dead_function(
            isolated_manifests(tmp_path, topics, sources=("price",), group_suffix=suffix), topics, suffix
        )
    )
    environ = {f"{n.upper()}_FUNCTION_URL": u for n, u in function_urls.items()}
    environ["DOWN_FUNCTION_URL"] = f"http://127.0.0.1:{free_port()}"  # nothing listens: the function died
    topology = resolve_topology(manifests, environ)
    assert {s.manifest.name for s in topology.kafka_sources} == {"price-request-source", "down-request-source"}
    # The dead-letter sink is the deadletter function itself, not a KafkaSink.
    assert {s.dead_letter_sink.address for s in topology.kafka_sources if s.dead_letter_sink} == {
        function_urls["deadletter"]
    }

    # The attempt that died mid-job left its row running, as a SIGKILLed process does.
    died = f"died-{suffix}"
    conn = connect(clean_db)
    try:
        store.start_job(conn, store.JobRecord(died, "price", "top100", "e-1"), datetime.now(UTC), 1)
    finally:
        conn.close()
    db = Database(clean_db)
    assert db.value("SELECT status FROM job_logs WHERE job_id = :id", id=died) == "running"

    settings = EventingSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        commit_interval_seconds=0.5,
        session_timeout_ms=6000,
        shutdown_grace_seconds=5,
        ping_jitter_ms=0,
        port=0,
    )
    plane = EventingPlane(topology, settings)
    plane.start()
    try:
        poison = produce_plain(kafka_bootstrap, topics["price"], "BTC,ETH,SOL")
        produce_plain(kafka_bootstrap, topics["down"], json.dumps(_job(died)))
        never_logged = f"never-logged-{suffix}"
        produce_plain(kafka_bootstrap, topics["down"], json.dumps(_job(never_logged)))
        rows = wait_for(
            lambda: (lambda r: r if len(r) == 3 else None)(
                db.rows(
                    "SELECT job_id, job_type, status, message FROM job_logs WHERE row_kind = 'job'"
                    " AND status = 'dead_lettered' ORDER BY job_id"
                )
            ),
            FLOW_TIMEOUT,
            "three dead_lettered jobs",
        )
    finally:
        plane.stop()

    by_id = {r["job_id"]: r for r in rows}
    poison_id = next(job_id for job_id in by_id if job_id.startswith("rejected:"))
    assert poison_id.endswith(
        f"price-request-source#{topics['price']}#partition:{poison.partition()}/offset:{poison.offset()}"
    )
    assert by_id[poison_id]["job_type"] == "price"
    assert by_id[poison_id]["message"].startswith("dead-lettered after HTTP 400: message body is not valid JSON")
    for job_id in (died, never_logged):
        assert by_id[job_id]["job_type"] == "price"
        assert by_id[job_id]["message"].startswith("dead-lettered without a response from http://127.0.0.1:")
    # Nothing is left running, and nothing is counted twice.
    assert db.value("SELECT count(*) FROM job_logs WHERE status = 'running'") == 0
    assert db.value("SELECT count(*) FROM job_logs WHERE row_kind = 'job'") == 3

    # Each dead letter is kept whole in PostgreSQL with its reason, then forwarded to the topic.
    wait_for(
        lambda: db.value("SELECT count(*) FROM dead_letters WHERE forwarded_at IS NOT NULL") == 3,
        FLOW_TIMEOUT,
        "three dead letters forwarded",
    )
    kept = {
        r["job_id"]: r
        for r in db.rows(
            "SELECT job_id, event_id, event_source, error_code, reason, data, forwarded_at, dead_letter_topic"
            " FROM dead_letters"
        )
    }
    assert set(kept) == set(by_id)
    assert kept[poison_id]["error_code"] == 400 and bytes(kept[poison_id]["data"]) == b"BTC,ETH,SOL"
    assert kept[poison_id]["event_id"] == f"partition:{poison.partition()}/offset:{poison.offset()}"
    for job_id, row in kept.items():
        assert row["reason"] == by_id[job_id]["message"]
        assert row["forwarded_at"] is not None and row["dead_letter_topic"] == topics["price_dead_letter"]
    assert kept[died]["error_code"] is None
    records = read_all(kafka_bootstrap, topics["price_dead_letter"])
    assert len(records) == 3
    # Plain records of two topics share ids (partition:0/offset:0): an event is its id and source.
    by_event = {(dict(m.headers() or [])["ce_id"], dict(m.headers() or [])["ce_source"]): m for m in records}
    poison_record = by_event[(kept[poison_id]["event_id"].encode(), kept[poison_id]["event_source"].encode())]
    headers = dict(poison_record.headers() or [])
    assert poison_record.value() == b"BTC,ETH,SOL"
    assert headers["ce_knativeerrorcode"] == b"400"
    assert b"not valid JSON" in base64.b64decode(headers["ce_knativeerrordata"] or b"")
