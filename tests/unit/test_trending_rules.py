"""Pure decisions of the trending pipeline: merging discovery lists, the fallback order, which pool
prices a token, which error a failed job raises, and the ids and refs it derives. No infrastructure:
upstream answers are the recorded samples served through an httpx transport."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from shared.config import Settings
from shared.crawler.jobs import JobMessage
from shared.crawler.models import Contract, Pool
from shared.crawler.pipelines.source_ledger import SourceLedger, pricing_pool
from shared.crawler.pipelines.trending import audit_job_id, refs_from_job
from shared.crawler.pipelines.trending_discovery import discover_trending, merge_round_robin, ref_key
from shared.errors import PermanentUpstreamError, RateLimited, RetryableUpstreamError
from shared.upstream import UpstreamClients
from tests.helpers.upstream_doubles import FakeClock, ReplayTransport, Reply

BOOSTS = "/token-boosts/top/v1"
LATEST_BOOSTS = "/token-boosts/latest/v1"
PROFILES = "/token-profiles/latest/v1"
GT_TRENDING = "/api/v2/networks/trending_pools"
CG_TRENDING = "/api/v3/search/trending"
CG_LIST = "/api/v3/coins/list"


def c(chain: str, address: str) -> Contract:
    return Contract(chain, address)


# --- merging DexScreener's lists -------------------------------------------------------------


def test_merge_takes_turns_between_lists_and_keeps_each_token_once_in_its_first_place() -> None:
    top = [c("bsc", "0xa"), c("bsc", "0xb"), c("bsc", "0xc")]
    latest = [c("bsc", "0xb"), c("solana", "Mint1")]
    profiles = [c("solana", "Mint2")]

    merged = merge_round_robin([top, latest, profiles], limit=10)

    assert [ref_key(r) for r in merged] == ["bsc:0xa", "bsc:0xb", "solana:Mint2", "solana:Mint1", "bsc:0xc"]


def test_merge_stops_at_the_set_size_so_every_list_is_represented() -> None:
    top = [c("bsc", f"0xa{i}") for i in range(30)]
    latest = [c("bsc", f"0xb{i}") for i in range(30)]

    merged = merge_round_robin([top, latest, []], limit=4)

    assert [ref_key(r) for r in merged] == ["bsc:0xa0", "bsc:0xb0", "bsc:0xa1", "bsc:0xb1"]
    assert merge_round_robin([[], [], []], limit=30) == []
    assert merge_round_robin([top], limit=0) == []


# --- discovery fallback ----------------------------------------------------------------------


def clients(transport: ReplayTransport) -> UpstreamClients:
    settings = Settings()
    for api in ("dexscreener", "geckoterminal", "coingecko"):
        settings = settings.with_upstream(api, max_retries=0)  # one answer per request: the script is the world
    return UpstreamClients.from_settings(settings, transport=transport, **FakeClock().http_options())


def dexscreener_routes() -> dict[str, Reply]:
    return {
        BOOSTS: Reply.sample("dexscreener.token_boosts.item.json"),
        LATEST_BOOSTS: Reply.json([]),
        PROFILES: Reply.sample("dexscreener.token_profiles.latest.json"),
    }


def test_dexscreener_names_the_set_with_its_profile_items_for_links() -> None:
    transport = ReplayTransport(dexscreener_routes())
    ledger = SourceLedger()

    found = discover_trending(clients(transport), 30, ledger)

    assert found.source == "dexscreener" and found.refs and not ledger.errors
    assert set(found.dexscreener_items) == {ref_key(r) for r in found.refs}
    assert all(p not in transport.paths() for p in (GT_TRENDING, CG_TRENDING))


def test_items_on_chains_outside_the_mapping_are_reported_and_skipped() -> None:
    mystery = {"chainId": "mysterychain", "tokenAddress": "0xabc", "url": "https://dexscreener.com/mysterychain/0xabc"}
    routes = {**dexscreener_routes(), LATEST_BOOSTS: Reply.json([mystery])}

    found = discover_trending(clients(ReplayTransport(routes)), 30, SourceLedger())

    assert found.source == "dexscreener" and all(r.chain != "mysterychain" for r in found.refs)
    assert [(f.ref, f.reason) for f in found.failures] == [
        ("mysterychain:0xabc", "dexscreener boost on unsupported chain 'mysterychain'")
    ]


@pytest.mark.parametrize(
    ("failing", "down"),
    [
        (
            Reply.json({"statusCode": 429, "error": "Too Many Requests"}, status=429, headers={"retry-after": "60"}),
            True,
        ),
        (Reply(500, b"<html>oops</html>"), True),
        # Bad data about one list says nothing about DexScreener's health: it stays up for the
        # job's token requests (docs/resilience.md).
        (Reply(200, b'{"broken": '), False),
    ],
)
def test_any_dexscreener_list_failing_hands_the_whole_discovery_to_geckoterminal(failing: Reply, down: bool) -> None:
    routes = {
        **dexscreener_routes(),
        PROFILES: failing,
        GT_TRENDING: Reply.sample("geckoterminal.trending_pools.all.json"),
    }
    ledger = SourceLedger()

    found = discover_trending(clients(ReplayTransport(routes)), 30, ledger)

    assert found.source == "geckoterminal" and len(found.refs) == 1
    assert ledger.is_down("dexscreener") is down and found.dexscreener_items == {}


def test_an_empty_answer_hands_over_too_and_coingecko_comes_last() -> None:
    routes = {
        BOOSTS: Reply.json([]),
        LATEST_BOOSTS: Reply.json([]),
        PROFILES: Reply.json([]),
        GT_TRENDING: Reply.json({"data": [], "included": []}),
        CG_TRENDING: Reply.json(
            {
                "coins": [
                    {
                        "item": {
                            "id": "pepe",
                            "symbol": "pepe",
                            "name": "Pepe",
                            "market_cap_rank": 29,
                            "large": "https://img/pepe.png",
                        }
                    },
                    {"item": {"id": "bitcoin", "symbol": "btc", "name": "Bitcoin"}},
                ]
            }
        ),
        CG_LIST: Reply.json(
            [
                {
                    "id": "pepe",
                    "symbol": "pepe",
                    "name": "Pepe",
                    "platforms": {"ethereum": "0x6982508145454Ce325dDbE47a25d4ec3d2311933"},
                },
                {"id": "bitcoin", "symbol": "btc", "name": "Bitcoin", "platforms": {}},
            ]
        ),
    }
    ledger = SourceLedger()

    found = discover_trending(clients(ReplayTransport(routes)), 30, ledger)

    assert found.source == "coingecko" and not ledger.errors
    assert [ref_key(r) for r in found.refs] == ["ethereum:0x6982508145454ce325ddbe47a25d4ec3d2311933"]
    profile = found.coingecko_profiles["ethereum:0x6982508145454ce325ddbe47a25d4ec3d2311933"]
    assert (profile.symbol, profile.coingecko_id, profile.market_cap_rank, profile.source) == (
        "PEPE",
        "pepe",
        29,
        "coingecko",
    )
    # A native coin cannot be priced by contract: reported, not guessed.
    assert [f.ref for f in found.failures] == ["bitcoin"]


def test_every_source_failing_leaves_no_set_and_the_rate_limit_as_the_error_to_raise() -> None:
    routes = {
        BOOSTS: Reply(503, b""),
        GT_TRENDING: Reply.json({"errors": []}, status=429, headers={"retry-after": "60"}),
        CG_TRENDING: Reply(500, b""),
    }
    ledger = SourceLedger()

    found = discover_trending(clients(ReplayTransport(routes)), 30, ledger)

    assert found.source is None and found.refs == []
    error = ledger.retryable_error()
    assert isinstance(error, RateLimited) and error.api == "geckoterminal"


# --- the ledger ------------------------------------------------------------------------------


def test_only_a_retryable_error_takes_a_source_out_and_a_rate_limit_is_raised_first() -> None:
    ledger = SourceLedger()
    ledger.source_failed("geckoterminal", PermanentUpstreamError("geckoterminal", "HTTP 404"), ["ton:EQx"])
    assert not ledger.is_down("geckoterminal") and ledger.retryable_error() is None

    ledger.source_failed("dexscreener", RetryableUpstreamError("dexscreener", "HTTP 500"), ["bsc:0xa"])
    ledger.source_failed("coingecko", RateLimited("coingecko", "HTTP 429"), ["bsc:0xa"])
    ledger.token_failed("bsc:0xa", "geckoterminal: token not found")

    assert ledger.is_down("dexscreener") and ledger.is_down("coingecko")
    assert isinstance(ledger.retryable_error(), RateLimited)
    assert ledger.failure("bsc:0xa").reason == (
        "dexscreener: HTTP 500; coingecko: HTTP 429; geckoterminal: token not found"
    )
    assert ledger.failure("bsc:0xb").reason == "no source could crawl it"


# --- which pool prices a token ----------------------------------------------------------------


def pool(
    pair: str,
    *,
    liquidity: str | None,
    price_usd: str | None = "1",
    quote: str | None = None,
    price_native: str | None = None,
    chain: str = "bsc",
) -> Pool:
    return Pool(
        chain=chain,
        dex="pancakeswap",
        pair_address=pair,
        base_address="0xbase",
        quote_symbol="X",
        quote_address=quote,
        price_usd=Decimal(price_usd) if price_usd else None,
        price_native=Decimal(price_native) if price_native else None,
        liquidity_usd=Decimal(liquidity) if liquidity is not None else None,
        volume_24h_usd=None,
        fdv_usd=None,
        market_cap_usd=None,
    )


def test_the_most_liquid_priced_pool_prices_the_token() -> None:
    deep_unpriced = pool("0x1", liquidity="900000", price_usd=None)
    medium = pool("0x2", liquidity="50000")
    shallow = pool("0x3", liquidity="100")

    assert pricing_pool([shallow, deep_unpriced, medium]) is medium


def test_a_zero_liquidity_pool_never_prices_a_token_but_unknown_liquidity_may() -> None:
    abandoned = pool("0x1", liquidity="0", price_usd="7.5")
    unknown = pool("0x2", liquidity=None)

    assert pricing_pool([abandoned]) is None
    assert pricing_pool([abandoned, unknown]) is unknown
    assert pricing_pool([]) is None


def test_a_usdt_quoted_pool_without_a_usd_price_still_prices_directly() -> None:
    usdt = "0x55d398326f99059ff775485246999027b3197955"
    direct = pool("0x1", liquidity="1000", price_usd=None, quote=usdt, price_native="0.00000000001234")

    assert pricing_pool([direct]) is direct


# --- ids and refs ----------------------------------------------------------------------------


def test_the_audit_job_id_is_stable_and_always_a_valid_job_id() -> None:
    assert audit_job_id("trending:20260625T210000Z") == "audit:trending:20260625T210000Z"
    long_id = (
        "/apis/v1/namespaces/price-crawler/kafkasources/price-request-source#price-crawler.price.request#"
        "partition:5/offset:123456789"
    )
    derived = audit_job_id(long_id)
    assert len(derived) <= 128 and derived == audit_job_id(long_id) and derived != audit_job_id(long_id + "0")
    JobMessage.model_validate(
        {"job_type": "audit", "token_type": "trending", "timestamp": "2026-06-25T21:00:00Z", "job_id": derived}
    )


def test_refs_from_a_job_are_canonical_once_each_and_every_rejection_says_why() -> None:
    job = JobMessage.model_validate(
        {
            "job_type": "price",
            "token_type": "trending",
            "timestamp": datetime.now(UTC).isoformat(),
            "contracts": [
                {"chain": "bsc", "address": "0xBC6557b8Bba5B2EccC152e80899825FBA50D9Dd1"},
                {"chain": "dogechain", "address": "0xabc"},
                {"chain": "ethereum", "address": "0x123"},
            ],
            "token_keys": [
                "bsc:0xbc6557b8bba5b2eccc152e80899825fba50d9dd1",
                "native:bitcoin",
                "solana:EKpQGSJtjMFqKZ9KQanSqYXRcF8fBopzLHYxdM65zcjm",
            ],
        }
    )

    refs, failures = refs_from_job(job)

    assert [ref_key(r) for r in refs] == [
        "bsc:0xbc6557b8bba5b2eccc152e80899825fba50d9dd1",
        "solana:EKpQGSJtjMFqKZ9KQanSqYXRcF8fBopzLHYxdM65zcjm",
    ]
    reasons = {f.ref: f.reason for f in failures}
    assert reasons["dogechain:0xabc"] == "unsupported chain 'dogechain': not in the chain mapping"
    assert "not an EVM address" in reasons["ethereum:0x123"]
    assert reasons["native:bitcoin"] == "native coin: trending tokens are DEX tokens with a contract"
