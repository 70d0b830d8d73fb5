"""The trending job through the price function's edge, on real PostgreSQL and Kafka, against the
simulated market over real HTTP: discovery, profiles, exact USDT prices, membership, the
completion event, and the fallbacks when DexScreener or every source is down."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from local.market.server import SimulatedMarket
from shared.crawler import store
from shared.crawler.jobs import parse_job_message
from shared.crawler.models import PriceQuote
from shared.runtime.app import FunctionApp
from shared.runtime.resources import Resources
from shared.runtime.verdict import HttpResponse
from tests.helpers.cloudevents import job_request
from tests.helpers.db import Database
from tests.helpers.functions import function_app
from tests.helpers.kafka import headers_of, json_value, read_all
from tests.helpers.market import market_resources

FROZEN_AT = datetime(2026, 6, 25, 21, 0, 0, tzinfo=UTC)
PICO = "bsc:0xbc6557b8bba5b2eccc152e80899825fba50d9dd1"
TON_BOOST = "ton:EQBq3w7yO2mL5P2YjbvBwNHhr1FrX5R4F5JnZkFFnjw5SVgm"  # boosted, but no pair anywhere


@dataclass
class TrendingStack:
    market: SimulatedMarket
    resources: Resources
    app: FunctionApp
    db: Database
    topics: dict[str, str]
    bootstrap: str
    offset: int = 0

    def run(self, job: dict[str, Any] | None = None, *, offset: int | None = None) -> HttpResponse:
        """Deliver a trending job (the scheduler's tick by default) as KafkaSource would."""
        if offset is None:
            offset, self.offset = self.offset, self.offset + 1
        job = job or trending_job("trending:test")
        return job_request(job, topic="price-crawler.price.request", offset=offset).to(self.app)

    def audit_requests(self) -> list[Any]:
        """Every completion event on the audit topic (read to its end: the job answered after the broker confirmed)."""
        return read_all(self.bootstrap, self.topics["audit"])

    def trending_members(self) -> dict[str, dict[str, Any]]:
        return {
            r["token_key"]: r
            for r in self.db.rows("SELECT * FROM token_set_members WHERE token_set = 'trending' ORDER BY rank")
        }


def trending_job(job_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "job_type": "price",
        "token_type": "trending",
        "symbols": [],
        "job_id": job_id,
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        **fields,
    }


def job_log(db: Database, job_id: str, kind: str = "job") -> list[dict[str, Any]]:
    """The job_logs rows of one job and kind, oldest first."""
    return db.rows("SELECT * FROM job_logs WHERE job_id = :job AND row_kind = :kind ORDER BY id", job=job_id, kind=kind)


def body(response: HttpResponse) -> dict[str, Any]:
    return json.loads(response.body)


def make_stack(market: SimulatedMarket, db_url: str, bootstrap: str, unique_topic, **upstream: Any) -> TrendingStack:
    topics = {"audit": unique_topic("audit", partitions=1), "price_updated": unique_topic("updated", partitions=1)}
    resources = market_resources(
        market,
        database_url=db_url,
        kafka_bootstrap_servers=bootstrap,
        audit_topic=topics["audit"],
        price_updated_topic=topics["price_updated"],
        upstream=upstream or None,
    )
    return TrendingStack(market, resources, function_app("price", resources), Database(db_url), topics, bootstrap)


@pytest.fixture
def stack(
    simulated_market: SimulatedMarket, clean_db: str, kafka_bootstrap: str, unique_topic
) -> Iterator[TrendingStack]:
    # No in-process retries against a faulted API: the fallback is the point, not patience.
    built = make_stack(
        simulated_market,
        clean_db,
        kafka_bootstrap,
        unique_topic,
        dexscreener={"max_retries": 0},
        geckoterminal={"max_retries": 0},
        coingecko={"max_retries": 0},
    )
    simulated_market.clock.freeze(FROZEN_AT)
    try:
        yield built
    finally:
        built.db.close()
        built.resources.close()


def expected_trending(market: SimulatedMarket) -> dict[str, Decimal]:
    """Every trending token of the market with its exact USDT price at the frozen second."""
    return {t.key: market.universe.price_usdt(t, at=FROZEN_AT) for t in market.universe.trending()}


def test_discovery_commits_profiles_exact_prices_membership_then_requests_audits(stack: TrendingStack) -> None:
    response = stack.run(trending_job("trending:20260625T210000Z"))

    assert response.status == 200, response.body
    result = body(response)
    expected = expected_trending(stack.market)
    assert result["discovery"] == "dexscreener"
    assert result["succeeded"] == len(expected)
    # The one boosted TON token has no pair on any source: a failure with every source's reason.
    assert [f["token"] for f in result["failures"]] == [TON_BOOST]
    assert "dexscreener" in result["failures"][0]["reason"] and "geckoterminal" in result["failures"][0]["reason"]

    # Exact USDT prices, digit for digit, for EVM and Solana tokens (PICO ~1.2e-11 USDT included).
    prices = stack.db.latest_prices()
    assert {k: p["price_usdt"] for k, p in prices.items()} == expected
    assert prices[PICO]["price_usdt"] == stack.market.universe.price_usdt(PICO, at=FROZEN_AT) < Decimal("1e-10")
    assert {p["source"] for p in prices.values()} == {"dexscreener"}

    # Full profiles: logo, links, markets and the most liquid pool as the main pool.
    pico = stack.db.rows("SELECT * FROM tokens WHERE token_key = :k", k=PICO)[0]
    assert pico["symbol"] == "PICO" and pico["name"] == "Picocat" and pico["source"] == "dexscreener"
    assert pico["logo_url"].startswith("https://") and pico["websites"] and pico["socials"]
    assert pico["contracts"] == {"bsc": "0xbc6557b8bba5b2eccc152e80899825fba50d9dd1"}
    markets = pico["markets"]
    assert len(markets) >= 2 and len({m["pair_address"] for m in markets}) == len(markets)  # duplicates gone
    liquidity = [Decimal(m["liquidity_usd"]) for m in markets]
    assert pico["main_pool"]["pair_address"] == markets[0]["pair_address"] and liquidity[0] == max(liquidity)
    assert {
        "dex",
        "pair_address",
        "quote_symbol",
        "liquidity_usd",
        "volume_24h_usd",
        "fdv_usd",
        "market_cap_usd",
    } <= set(pico["main_pool"])
    solana = [k for k in expected if k.startswith("solana:")]
    assert solana and all(k in prices for k in solana)  # mints stored exactly as written (case kept)

    # Membership: every committed token, ranked, current.
    members = stack.trending_members()
    assert set(members) == set(expected) and all(m["left_at"] is None for m in members.values())

    # One completion event on the audit topic, after commit, naming exactly the committed tokens.
    [record] = stack.audit_requests()
    headers = headers_of(record)
    assert headers["ce_type"] == "price-crawler.trending.committed"
    assert record.key() == b"trending" and "ce_traceparent" in headers
    job = parse_job_message(record.value())
    assert (job.job_type, job.token_type, job.job_id) == ("audit", "trending", "audit:trending:20260625T210000Z")
    assert set(job.token_keys) == set(expected) and job.symbols == []

    # The price.updated event carries the same prices as exact strings.
    [updated] = read_all(stack.bootstrap, stack.topics["price_updated"])
    sent = {p["token_key"]: Decimal(p["price_usdt"]) for p in json_value(updated)["prices"]}
    assert sent == expected

    job_row = job_log(stack.db, "trending:20260625T210000Z", "job")[0]
    assert (job_row["status"], job_row["tokens_succeeded"], job_row["tokens_failed"]) == ("partial", len(expected), 1)


def test_tokens_that_leave_the_trending_set_are_marked_not_deleted(stack: TrendingStack) -> None:
    first = stack.run(trending_job("trending:first"))
    assert first.status == 200, first.body
    # The next minute's discovery names only a handful of tokens (an explicit job does not
    # touch the membership, so shrink the set through the discovery limit instead).
    stack.resources.settings = stack.resources.settings.model_copy(update={"trending_set_size": 3})
    second = stack.run(trending_job("trending:second"))
    assert second.status == 200, second.body

    members = stack.trending_members()
    current = {k for k, m in members.items() if m["left_at"] is None}
    left = {k for k, m in members.items() if m["left_at"] is not None}
    assert len(current) == 3 and len(left) == len(expected_trending(stack.market)) - 3
    # Leavers keep their token row and their prices.
    assert stack.db.value("SELECT count(*) FROM tokens WHERE token_key = ANY(:k)", k=list(left)) == len(left)
    assert set(stack.db.latest_prices()) >= left


def test_a_top100_token_that_trends_stays_one_row_in_both_sets(stack: TrendingStack) -> None:
    metadata = function_app("metadata", stack.resources)
    top100 = {
        "job_type": "metadata",
        "token_type": "top100",
        "symbols": [],
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
    assert job_request(top100, topic="price-crawler.metadata.request").to(metadata).status == 200

    assert stack.run(trending_job("trending:both")).status == 200
    pepe = "ethereum:0x6982508145454ce325ddbe47a25d4ec3d2311933"
    sets = stack.db.rows("SELECT token_set FROM token_set_members WHERE token_key = :k AND left_at IS NULL", k=pepe)
    assert {r["token_set"] for r in sets} == {"top100", "trending"}
    assert stack.db.value("SELECT count(*) FROM tokens WHERE symbol = 'PEPE' AND chain = 'ethereum'") == 1


def test_an_explicit_contract_job_crawls_those_tokens_and_leaves_the_membership_alone(stack: TrendingStack) -> None:
    wif = "solana:EKpQGSJtjMFqKZ9KQanSqYXRcF8fBopzLHYxdM65zcjm"
    job = trending_job(
        "trending:explicit",
        contracts=[{"chain": "bsc", "address": "0xBC6557b8Bba5B2EccC152e80899825FBA50D9Dd1"}],
        token_keys=[wif, "native:bitcoin"],
    )
    response = stack.run(job)

    assert response.status == 200, response.body
    result = body(response)
    assert (result["requested"], result["succeeded"]) == (3, 2)
    assert result["failures"] == [
        {"token": "native:bitcoin", "reason": "native coin: trending tokens are DEX tokens with a contract"}
    ]
    assert set(stack.db.latest_prices()) == {PICO, wif}
    assert stack.trending_members() == {}
    [record] = stack.audit_requests()
    assert set(parse_job_message(record.value()).token_keys) == {PICO, wif}


def test_a_trending_job_naming_only_symbols_is_rejected_with_its_reason(stack: TrendingStack) -> None:
    response = stack.run(trending_job("trending:symbols", symbols=["PEPE"]))

    assert response.status == 400
    assert "by contract or token key" in body(response)["error"]
    assert stack.db.value("SELECT count(*) FROM tokens") == 0


@pytest.mark.parametrize("fault", ["500", "429"])
def test_dexscreener_down_or_rate_limited_falls_back_to_geckoterminal(stack: TrendingStack, fault: str) -> None:
    stack.market.faults.add(fault, api="dexscreener", count="until_cleared", retry_after=1 if fault == "429" else None)

    response = stack.run()

    assert response.status == 200, response.body
    result = body(response)
    assert result["discovery"] == "geckoterminal"
    assert result["sources"] == {"geckoterminal": result["succeeded"]} and result["succeeded"] >= 15
    prices = stack.db.latest_prices()
    expected = expected_trending(stack.market)
    assert {k: p["price_usdt"] for k, p in prices.items()} == {k: expected[k] for k in prices}
    assert stack.db.value("SELECT DISTINCT source FROM tokens") == "geckoterminal"
    # DexScreener was asked once (its first list) and then left alone for the rest of the job.
    assert stack.market.stats.count("dexscreener") == 1
    [record] = stack.audit_requests()
    assert set(parse_job_message(record.value()).token_keys) == set(prices)


def test_dexscreener_and_geckoterminal_down_falls_back_to_coingecko(stack: TrendingStack) -> None:
    stack.market.faults.add("503", api="dexscreener", count="until_cleared")
    stack.market.faults.add("500", api="geckoterminal", count="until_cleared")

    response = stack.run()

    assert response.status == 200, response.body
    result = body(response)
    assert result["discovery"] == "coingecko" and result["succeeded"] >= 5
    prices = stack.db.latest_prices()
    expected = expected_trending(stack.market)
    assert {p["source"] for p in prices.values()} == {"coingecko"}
    assert {k: p["price_usdt"] for k, p in prices.items()} == {k: expected[k] for k in prices}
    assert stack.db.value("SELECT count(*) FROM tokens WHERE coingecko_id IS NULL") == 0


@pytest.mark.parametrize(("fault", "status"), [("500", 503), ("429", 429)])
def test_every_source_down_fails_cleanly_then_a_redelivery_succeeds(
    stack: TrendingStack, fault: str, status: int
) -> None:
    for api in ("dexscreener", "geckoterminal", "coingecko"):
        stack.market.faults.add(fault, api=api, count="until_cleared", retry_after=1 if fault == "429" else None)

    failed = stack.run(trending_job("trending:outage"), offset=7)

    assert failed.status == status, failed.body
    assert body(failed)["retryable"] is True
    [row] = job_log(stack.db, "trending:outage", "job")
    assert row["status"] == "failed" and row["message"]
    assert stack.db.value("SELECT count(*) FROM tokens") == 0
    assert stack.audit_requests() == []

    stack.market.faults.clear()
    retried = stack.run(trending_job("trending:outage"), offset=7)  # KafkaSource's retry: same record

    assert retried.status == 200, retried.body
    [row] = job_log(stack.db, "trending:outage", "job")
    assert (row["status"], row["attempts"]) == ("partial", 2)
    assert len(stack.audit_requests()) == 1


def test_a_discovery_that_prices_nothing_keeps_the_current_set_and_says_why(stack: TrendingStack) -> None:
    assert stack.run(trending_job("trending:before")).status == 200
    before = {k for k, m in stack.trending_members().items() if m["left_at"] is None}
    assert before
    # Discovery still names tokens, but every source refuses their profiles and prices for good
    # (a permanent 4xx is not retried): the job finds nothing it could show.
    for api, path in (
        ("dexscreener", "/tokens/v1/*"),
        ("geckoterminal", "/api/v2/networks/{network}/tokens/multi/{addresses}"),
        ("coingecko", "/api/v3/simple/token_price/{platform}"),
    ):
        stack.market.faults.add("451", api=api, path=path, count="until_cleared")

    response = stack.run(trending_job("trending:nothing-usable"))

    assert response.status == 200, response.body
    assert body(response)["succeeded"] == 0
    members = stack.trending_members()
    assert {k for k, m in members.items() if m["left_at"] is None} == before
    [row] = job_log(stack.db, "trending:nothing-usable", "job")
    assert row["status"] == "failed" and "trending set unchanged" in row["message"]
    assert len(stack.audit_requests()) == 1  # only the first job's


def test_trending_prices_pass_the_same_plausibility_screen_as_top100(stack: TrendingStack) -> None:
    """docs/pricing.md: a trending price far from the token's last stored one is held back too."""
    wif = "solana:EKpQGSJtjMFqKZ9KQanSqYXRcF8fBopzLHYxdM65zcjm"
    expected = expected_trending(stack.market)
    assert stack.run(trending_job("trending:before")).status == 200  # the tokens exist, priced right
    now = datetime.now(UTC)
    # Then, before the next minute's crawl, PICO's last stored price is a thousand times the market's (a jump); WIF's came from
    # CoinGecko seconds ago at five times the market (two sources disagreeing in one tick).
    seeded = [
        PriceQuote(PICO, "PICO", expected[PICO] * 1000, "dexscreener", now),
        PriceQuote(wif, "WIF", expected[wif] * 5, "coingecko", now),
    ]
    with stack.resources.db.transaction() as conn:
        store.write_prices(conn, seeded, "seed")

    response = stack.run(trending_job("trending:suspect"))

    assert response.status == 200, response.body
    result = body(response)
    assert result["suspect"] == 2 and result["succeeded"] == len(expected) - 2
    reasons = {f["token"]: f["reason"] for f in result["failures"]}
    assert reasons[PICO].startswith("suspect price: dexscreener says") and "1e+03x the last stored" in reasons[PICO]
    assert "coingecko said" in reasons[wif] and "across sources" in reasons[wif]
    # Held back: the last good prices stay served, nothing new is stored or announced for them.
    latest = stack.db.latest_prices()
    assert {k: latest[k]["price_usdt"] for k in (PICO, wif)} == {q.token_key: q.price_usdt for q in seeded}
    assert (
        stack.db.value(
            "SELECT count(*) FROM token_prices WHERE token_key = ANY(:k) AND observed_at > :t", k=[PICO, wif], t=now
        )
        == 0
    )
    assert {k: latest[k]["price_usdt"] for k in expected if k not in (PICO, wif)} == {
        k: v for k, v in expected.items() if k not in (PICO, wif)
    }
    [_, updated] = read_all(stack.bootstrap, stack.topics["price_updated"])
    announced = {p["token_key"] for p in json_value(updated)["prices"]}
    assert announced == set(expected) - {PICO, wif}
    [_, record] = stack.audit_requests()
    assert set(parse_job_message(record.value()).token_keys) == set(expected) - {PICO, wif}
    # They still trend: members of the set, served at their last good price.
    assert {PICO, wif} <= set(stack.trending_members())
