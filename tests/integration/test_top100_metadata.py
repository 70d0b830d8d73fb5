"""The top-100 metadata refresh (functions/metadata/main.py) against the simulated CoinGecko:
the set, token identities and contracts, the detail fan-out, and coalesced refreshes."""

from __future__ import annotations

import pytest

from shared.crawler.jobs import parse_job_message
from tests.helpers.cloudevents import request_for_message
from tests.helpers.kafka import read_all
from tests.helpers.stack import Top100Stack, body_of, utc_now_iso

pytestmark = pytest.mark.infra


def test_a_refresh_stores_the_100_largest_tokens_that_are_not_stablecoins(stack: Top100Stack):
    response = stack.refresh_top100()

    assert response.status == 200, response.body
    assert body_of(response)["top100"] == 100
    expected = [t for t in stack.market.universe.ranked() if not t.is_stablecoin and t.symbol != "WETH"][:100]
    assert stack.db.top100_keys() == [t.key for t in expected]  # rank order kept
    tokens = {r["token_key"]: r for r in stack.db.rows("SELECT * FROM tokens")}
    assert tokens["native:bitcoin"]["symbol"] == "BTC" and tokens["native:bitcoin"]["contract"] is None
    contracts = {(r["chain"], r["address"]): r["token_key"] for r in stack.db.rows("SELECT * FROM token_contracts")}
    for token in expected:
        for contract in token.contracts:
            address = contract.canonical_address  # EVM lower-case, Solana exactly as minted
            assert contracts[(contract.chain, address)] == token.key, token.symbol
    bonk = stack.market.universe.get("BONK")
    assert bonk.address is not None and bonk.address != bonk.address.lower()
    assert tokens[bonk.key]["contract"] == bonk.address
    assert stack.market.stats.count("coingecko") == 3  # markets, stablecoin category, coins/list


def test_the_refresh_fans_out_detail_jobs_that_enrich_the_tokens(stack: Top100Stack):
    assert stack.refresh_top100().status == 200
    messages = read_all(stack.bootstrap, stack.topics["metadata"])
    assert len(messages) == 10
    jobs = [parse_job_message(m.value()) for m in messages]
    assert sorted(k for j in jobs for k in j.token_keys) == sorted(stack.db.top100_keys())

    detail = request_for_message(messages[0], source_name="metadata-request-source").to(stack.metadata_app)

    assert detail.status == 200, detail.body
    assert body_of(detail)["succeeded"] == 10
    enriched = stack.db.rows(
        "SELECT websites, socials FROM tokens WHERE token_key = ANY(CAST(:k AS text[]))", k=jobs[0].token_keys
    )
    assert all(row["websites"] for row in enriched)


def test_a_second_refresh_soon_after_is_coalesced(stack: Top100Stack):
    assert stack.refresh_top100().status == 200
    stack.market.stats.reset()

    again = stack.refresh_top100()

    assert again.status == 200
    assert body_of(again)["skipped"] == "fresh"
    assert stack.market.stats.count("coingecko") == 0
    assert len(stack.db.top100_keys()) == 100


def test_detail_jobs_whose_publish_failed_after_the_set_committed_are_published_by_the_retry(stack: Top100Stack):
    # The metadata topic refuses every record for now (each detail job is far larger than
    # this limit): the set commits, then the fan-out fails, as when Kafka is lost just then.
    set_topic_config(stack.bootstrap, stack.topics["metadata"], {"max.message.bytes": "64"})
    job = {
        "job_type": "metadata",
        "token_type": "top100",
        "symbols": [],
        "timestamp": utc_now_iso(),
        "job_id": "metadata:top100:tick-1",
    }

    failed = stack.deliver(
        stack.metadata_app, job, topic=stack.topics["metadata"], offset=0, source_name="metadata-request-source"
    )

    assert failed.status == 503, failed.body
    assert len(stack.db.top100_keys()) == 100  # the set committed before the publish failed
    assert read_all(stack.bootstrap, stack.topics["metadata"]) == []

    set_topic_config(stack.bootstrap, stack.topics["metadata"], {"max.message.bytes": "1048588"})
    stack.market.stats.reset()
    retried = stack.deliver(
        stack.metadata_app, job, topic=stack.topics["metadata"], offset=0, source_name="metadata-request-source"
    )  # KafkaSource's retry: same record

    assert retried.status == 200, retried.body
    jobs = [parse_job_message(m.value()) for m in read_all(stack.bootstrap, stack.topics["metadata"])]
    assert sorted(k for j in jobs for k in j.token_keys) == sorted(stack.db.top100_keys())
    # The same ids the first attempt would have published: consumers can deduplicate.
    assert [j.job_id for j in jobs] == [f"metadata:top100:tick-1:detail:{i}" for i in range(10)]
    assert stack.market.stats.count("coingecko") == 0  # the committed set is not fetched again

    # Now the refresh is complete: the next request within the interval is coalesced.
    again = stack.refresh_top100()
    assert again.status == 200 and body_of(again)["skipped"] == "fresh"
    assert len(read_all(stack.bootstrap, stack.topics["metadata"])) == 10


def set_topic_config(bootstrap: str, topic: str, config: dict[str, str]) -> None:
    """Change a topic's configuration on the broker (incremental: other settings stay)."""
    from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

    resource = ConfigResource(
        ConfigResource.Type.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET) for name, value in config.items()
        ],
    )
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=10)
