"""Every dead-lettered job ends as `dead_lettered` in job_logs, end to end on real Kafka and PostgreSQL:

    request topic → KafkaSource → function (400, or no answer at all) → KafkaSink <fn>-dead-letter
    → dead-letter topic → KafkaSource dead-letter-source → deadletter function → job_logs

The local eventing plane runs the cluster's own KafkaSources and KafkaSinks of
`infra/knative/base` (price-request-source, price-dead-letter, dead-letter-source) on fresh
topics; the price and deadletter functions run as processes under functions-framework. A
second copy of price-request-source points at a port nobody listens on: a function that died.
"""

from __future__ import annotations

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
from tests.helpers.e2e import BASE_MANIFESTS, function_env, isolated_manifests, serve_functions, wait_for
from tests.helpers.kafka import produce_plain

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


def _with_dead_letter_source(directory: Path, topics: dict[str, str], suffix: str) -> Path:
    """Add the cluster's dead-letter-source (on this test's dead-letter topic) and a price source
    whose function is down (Service `down`, on the `down` topic, dead-lettering to the same sink)."""
    path = directory / "eventing.yaml"
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    base = {
        (d["kind"], d["metadata"]["name"]): d
        for d in yaml.safe_load_all((BASE_MANIFESTS / "kafkasources.yaml").read_text())
        if d
    }
    dead_letters = base[("KafkaSource", "dead-letter-source")]
    dead_letters["spec"].update(
        topics=[topics["price_dead_letter"]],
        initialOffset="earliest",
        consumerGroup=f"{dead_letters['spec']['consumerGroup']}-{suffix}",
    )
    price = next(d for d in documents if d["metadata"]["name"] == "price-request-source")
    down = copy.deepcopy(price)
    down["metadata"]["name"] = "down-request-source"
    down["spec"].update(topics=[topics["down"]], consumerGroup=f"price-crawler-down-{suffix}")
    down["spec"]["sink"]["ref"]["name"] = "down"
    # The price source retries for two minutes (a database outage of a minute must not dead-letter);
    # this test is about what happens after the last retry, so it gets there in a second.
    down["spec"]["delivery"].update(retry=1, backoffPolicy="linear", backoffDelay="PT0.5S")
    path.write_text(yaml.safe_dump_all([*documents, dead_letters, down], sort_keys=False))
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
        _with_dead_letter_source(
            isolated_manifests(tmp_path, topics, sources=("price",), group_suffix=suffix), topics, suffix
        )
    )
    environ = {f"{n.upper()}_FUNCTION_URL": u for n, u in function_urls.items()}
    environ["DOWN_FUNCTION_URL"] = f"http://127.0.0.1:{free_port()}"  # nothing listens: the function died
    topology = resolve_topology(manifests, environ)
    assert {s.manifest.name for s in topology.kafka_sources} == {
        "price-request-source",
        "down-request-source",
        "dead-letter-source",
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
