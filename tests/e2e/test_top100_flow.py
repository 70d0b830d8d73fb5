"""The top-100 pipeline end to end, on real Kafka and PostgreSQL, through the local eventing plane:

    plain Kafka record (the original job format, no headers) → KafkaSource → price function → PostgreSQL
    PingSource (*/5 s) → scheduler → price-crawler.price.request → KafkaSource → price function → PostgreSQL

Functions run under functions-framework as processes; the plane runs the cluster's manifests
(infra/knative/base) on this test's topics; upstreams are the simulated market, clock frozen.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sized
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest
from confluent_kafka import Producer

from local.eventing import EventingPlane, EventingSettings, load_manifests, resolve_topology
from local.market.server import SimulatedMarket
from tests.helpers.db import Database
from tests.helpers.e2e import function_env, isolated_manifests, serve_functions, wait_for
from tests.helpers.kafka import json_value, read_all

pytestmark = [pytest.mark.infra, pytest.mark.slow]

FROZEN_AT = datetime(2026, 6, 25, 21, 0, 0, tzinfo=UTC)
GROUP_SUFFIX = f"e2e{uuid.uuid4().hex[:8]}"
ORIGINAL_MESSAGE = b'{"job_type": "price", "token_type": "top100", "symbols": ["BTC", "ETH", "SOL"], "timestamp": "2025-06-25T21:00:00Z"}'


@pytest.fixture
def topics(unique_topic) -> dict[str, str]:
    return {
        "price": unique_topic("price", partitions=3),
        "metadata": unique_topic("metadata", partitions=1),
        "price_updated": unique_topic("price-updated", partitions=1),
        "price_dead_letter": unique_topic("price-dlq", partitions=1),
        "metadata_dead_letter": unique_topic("metadata-dlq", partitions=1),
    }


@pytest.fixture
def function_urls(
    simulated_market: SimulatedMarket, clean_db: str, kafka_bootstrap: str, topics: dict[str, str]
) -> Iterator[dict[str, str]]:
    env = function_env(simulated_market.env(), clean_db, kafka_bootstrap, topics)
    # The scheduler's backlog check reads the lag of the price KafkaSource's consumer group.
    env["PRICE_CONSUMER_GROUP"] = f"price-crawler-price-{GROUP_SUFFIX}"
    yield from serve_functions(("scheduler", "price", "metadata", "deadletter"), env)


SizedT = TypeVar("SizedT", bound=Sized)


def at_least(n: int, rows: SizedT | None) -> SizedT | None:
    return rows if rows is not None and len(rows) >= n else None


def committed_ticks(db: Database, bootstrap: str, topic: str) -> dict[str, int] | None:
    """Prices per tick (by tick stamp) of the ticks whose every job succeeded."""
    emitted: dict[str, int] = {}  # tick stamp -> jobs the scheduler emitted for it
    for message in read_all(bootstrap, topic):
        job = json_value(message)
        if str(job.get("job_id", "")).startswith("top100-price:"):
            emitted[job["job_id"].split(":")[1]] = job["batches"]
    done: dict[str, list[int]] = {}
    for row in db.rows(
        "SELECT job_id, tokens_succeeded FROM job_logs WHERE row_kind = 'job'"
        " AND status = 'succeeded' AND job_id LIKE 'top100-price:%'"
    ):
        done.setdefault(row["job_id"].split(":")[1], []).append(row["tokens_succeeded"])
    return {stamp: sum(counts) for stamp, counts in done.items() if len(counts) == emitted.get(stamp)}


def produce_plain(bootstrap: str, topic: str, value: bytes) -> None:
    """What `kcat -P` does: a record with no key and no headers."""
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(topic, value=value)
    assert producer.flush(10) == 0


def test_plain_record_and_five_second_ticks_reach_postgresql(
    simulated_market: SimulatedMarket,
    clean_db: str,
    kafka_bootstrap: str,
    topics: dict[str, str],
    function_urls: dict[str, str],
    tmp_path: Path,
) -> None:
    simulated_market.clock.freeze(FROZEN_AT)
    manifests = load_manifests(
        isolated_manifests(tmp_path, topics, sources=("price", "metadata"), group_suffix=GROUP_SUFFIX)
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
    try:
        with EventingPlane(topology, settings):
            # The top-100 set first: a metadata job written by a plain client.
            produce_plain(
                kafka_bootstrap,
                topics["metadata"],
                json.dumps(
                    {"job_type": "metadata", "token_type": "top100", "timestamp": "2025-06-25T21:00:00Z"}
                ).encode(),
            )
            wait_for(
                lambda: db.value("SELECT count(*) FROM token_set_members WHERE token_set = 'top100'") == 100,
                30,
                "the top-100 set",
            )

            produce_plain(kafka_bootstrap, topics["price"], ORIGINAL_MESSAGE)
            priced = wait_for(
                lambda: at_least(
                    3,
                    db.rows(
                        "SELECT t.symbol, p.price_usdt, p.source, p.job_id FROM token_prices p JOIN tokens t USING (token_key)"
                        " WHERE t.symbol IN ('BTC', 'ETH', 'SOL')"
                    ),
                ),
                15,
                "BTC, ETH and SOL prices",
            )

        # Delivered as a CloudEvent of KafkaSource's plain-record form (id partition:P/offset:O).
        assert {r["symbol"] for r in priced} == {"BTC", "ETH", "SOL"}
        assert all(r["job_id"].endswith("/offset:0") and "#partition:" in r["job_id"] for r in priced)
        assert all(r["price_usdt"] == simulated_market.universe.price_usdt(r["symbol"], at=FROZEN_AT) for r in priced)
        assert all(r["source"] == "binance" for r in priced)

        # Now the schedule: PingSource every 5 s → scheduler → the tick's jobs, routed by the
        # source that priced each token last (BTC, ETH and SOL are already Binance's).
        simulated_market.stats.reset()
        manifests = load_manifests(
            isolated_manifests(
                tmp_path,
                topics,
                pings={"top100-price-tick": "*/5 * * * * *"},
                sources=("price",),
                group_suffix=GROUP_SUFFIX,
            )
        )
        topology = resolve_topology(manifests, {f"{n.upper()}_FUNCTION_URL": u for n, u in function_urls.items()})
        with EventingPlane(topology, settings):
            ticks = wait_for(
                lambda: at_least(2, committed_ticks(db, kafka_bootstrap, topics["price"])),
                20,
                "two 5-s ticks committed",
            )
        assert all(priced == 100 for priced in ticks.values())  # every token of the set, each tick
        stamps = sorted(datetime.strptime(stamp, "%Y%m%dT%H%M%S.%fZ") for stamp in ticks)
        assert all(4 <= (b - a).total_seconds() <= 6 for a, b in zip(stamps, stamps[1:]))
        # Never more than one ticker request per job (the tightest bound, per tick, is in
        # tests/integration/test_top100_prices.py).
        jobs = db.value("SELECT count(DISTINCT job_id) FROM token_prices WHERE job_id LIKE 'top100-price:%'")
        assert 1 <= simulated_market.stats.count("binance", "/api/v3/ticker/price") <= jobs
        assert read_all(kafka_bootstrap, topics["price_dead_letter"]) == []
    finally:
        db.close()
