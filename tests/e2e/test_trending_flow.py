"""One minute of the trending flow, end to end, on real Kafka and PostgreSQL:

    PingSource → scheduler → price-crawler.price.request → KafkaSource → price function
    (discovery, profiles, prices committed) → completion event on price-crawler.audit.request
    → KafkaSource → audit function (GoPlus) → audits committed

The functions run under functions-framework as separate processes, served over HTTP; the
local eventing plane runs the PingSource and the two KafkaSources of `infra/knative/base`
(the manifests the cluster uses), with only what isolates the test changed: fresh topics and
consumer groups, and a tick every 2 seconds instead of every minute. Upstream APIs are the
simulated market over HTTP, its clock frozen so every price is known exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from local.eventing import EventingPlane, EventingSettings, load_manifests, resolve_topology
from local.market.server import SimulatedMarket
from shared.crawler.jobs import parse_job_message
from tests.helpers.db import Database
from tests.helpers.e2e import function_env, isolated_manifests, serve_functions, wait_for
from tests.helpers.kafka import read_all

pytestmark = [pytest.mark.infra, pytest.mark.slow]

FROZEN_AT = datetime(2026, 6, 25, 21, 0, 0, tzinfo=UTC)
FUNCTIONS = ("scheduler", "price", "audit", "deadletter")
FLOW_TIMEOUT = 45.0


# --- the test ---------------------------------------------------------------------------------------


@pytest.fixture
def topics(unique_topic) -> dict[str, str]:
    return {
        "price": unique_topic("price", partitions=2),
        "metadata": unique_topic("metadata", partitions=1),
        "audit": unique_topic("audit", partitions=1),
        "price_updated": unique_topic("price-updated", partitions=1),
        "price_dead_letter": unique_topic("price-dlq", partitions=1),
        "audit_dead_letter": unique_topic("audit-dlq", partitions=1),
    }


@pytest.fixture
def function_urls(
    simulated_market: SimulatedMarket, clean_db: str, kafka_bootstrap: str, topics: dict[str, str]
) -> Iterator[dict[str, str]]:
    yield from serve_functions(FUNCTIONS, function_env(simulated_market.env(), clean_db, kafka_bootstrap, topics))


def test_one_minute_of_trending_from_the_ping_to_committed_audits(
    simulated_market: SimulatedMarket,
    clean_db: str,
    kafka_bootstrap: str,
    topics: dict[str, str],
    function_urls: dict[str, str],
    tmp_path: Path,
) -> None:
    simulated_market.clock.freeze(FROZEN_AT)
    manifests = load_manifests(
        isolated_manifests(tmp_path, topics, pings={"trending-tick": "*/2 * * * * *"}, sources=("price", "audit"))
    )
    topology = resolve_topology(manifests, {f"{n.upper()}_FUNCTION_URL": u for n, u in function_urls.items()})
    settings = EventingSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        commit_interval_seconds=0.5,
        session_timeout_ms=6000,
        shutdown_grace_seconds=5,
        ping_jitter_ms=0,
        port=0,
    )
    db = Database(clean_db)
    plane = EventingPlane(topology, settings)
    plane.start()
    try:
        # The first trending job whose audit job committed closes the minute.
        audited = wait_for(
            lambda: db.rows(
                "SELECT a.job_id AS audit_job, t.job_id AS trending_job FROM job_logs a JOIN job_logs t"
                " ON a.job_id = 'audit:' || t.job_id WHERE a.row_kind = 'job' AND t.row_kind = 'job'"
                " AND a.status = 'succeeded' ORDER BY a.finished_at LIMIT 1"
            ),
            FLOW_TIMEOUT,
            "a committed audit job",
        )
    finally:
        plane.stop()
    try:
        trending_job, audit_job = audited[0]["trending_job"], audited[0]["audit_job"]
        jobs = {
            r["job_id"]: r
            for r in db.rows(
                "SELECT * FROM job_logs WHERE row_kind = 'job' AND job_id IN (:t, :a)", t=trending_job, a=audit_job
            )
        }
        prices = db.rows(
            "SELECT p.*, t.chain FROM token_prices p JOIN tokens t USING (token_key) WHERE p.job_id = :job",
            job=trending_job,
        )
        audits = db.rows("SELECT * FROM token_audits")  # later ticks may have overwritten them: same set
        members = db.rows("SELECT token_key FROM token_set_members WHERE token_set = 'trending' AND left_at IS NULL")
    finally:
        db.close()

    # The scheduler's tick became a trending job (PingSource → scheduler → Kafka → price function).
    assert trending_job.startswith("trending:") and jobs[trending_job]["status"] in ("succeeded", "partial")
    # Profiles and exact prices committed for EVM and Solana tokens, as the trending set.
    committed = {p["token_key"] for p in prices}
    assert {p["chain"] for p in prices} >= {"solana", "ethereum", "bsc", "base"}
    assert all(p["price_usdt"] == simulated_market.universe.price_usdt(p["token_key"], at=FROZEN_AT) for p in prices)
    assert committed == {m["token_key"] for m in members}
    # The completion event named exactly the committed tokens ...
    events = [parse_job_message(m.value()) for m in read_all(kafka_bootstrap, topics["audit"])]
    completion = next(e for e in events if e.job_id == audit_job)
    assert set(completion.token_keys) == committed
    # ... and the audit ran after the commit, for exactly those tokens, EVM and Solana.
    price_commit = max(p["ingested_at"] for p in prices)
    assert jobs[audit_job]["started_at"] > price_commit
    assert {a["token_key"] for a in audits} == committed
    assert all(a["updated_at"] > price_commit for a in audits)
    assert {a["token_key"].split(":")[0] for a in audits} >= {"solana", "ethereum"}
    # Nothing was dead-lettered on the way.
    assert read_all(kafka_bootstrap, topics["price_dead_letter"]) == []
    assert read_all(kafka_bootstrap, topics["audit_dead_letter"]) == []
