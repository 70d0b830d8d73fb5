"""The top-100 metadata refresh (functions/metadata/main.py) against the simulated CoinGecko:
the set, token identities and contracts, the detail fan-out, and coalesced refreshes."""

from __future__ import annotations

import pytest

from shared.crawler.jobs import parse_job_message
from tests.helpers.cloudevents import request_for_message
from tests.helpers.kafka import read_all
from tests.helpers.stack import Top100Stack, body_of

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
    assert tokens[bonk.key]["contract"] == bonk.address and bonk.address != bonk.address.lower()
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
