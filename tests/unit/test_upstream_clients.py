"""The per-API clients, each served the real recorded samples through httpx.MockTransport."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest

from shared.config import (
    BinanceSettings,
    CoinGeckoSettings,
    DexScreenerSettings,
    GeckoTerminalSettings,
    GoPlusSettings,
    Settings,
)
from shared.errors import BadUpstreamBody, PermanentUpstreamError, RateLimited, RetryableUpstreamError
from shared.upstream import UpstreamClients
from shared.upstream.binance import MAX_SYMBOLS_QUERY_CHARS, BinanceClient
from shared.upstream.coingecko import CoinGeckoClient
from shared.upstream.dexscreener import DexScreenerClient
from shared.upstream.geckoterminal import GeckoTerminalClient
from shared.upstream.goplus import GoPlusClient
from shared.upstream.jsonbody import decode_json
from tests.helpers.upstream_doubles import FakeClock, ReplayTransport, Reply, sample_bytes

FAST: dict[str, Any] = {"max_retries": 2, "backoff_initial_seconds": 0.01, "backoff_max_seconds": 0.05}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def query(request: httpx.Request) -> dict[str, list[str]]:
    return parse_qs(urlsplit(str(request.url)).query)


def sample(name: str) -> Any:
    return decode_json(sample_bytes(name))


# --- Binance -----------------------------------------------------------------------------------


def exchange_info(symbols: dict[str, str]) -> Reply:
    """The recorded exchangeInfo with its one symbol entry repeated for each `PAIR: status`."""
    doc = sample("binance.exchangeInfo.skeleton.json")
    template = doc["symbols"][0]
    doc["symbols"] = []
    for pair, status in symbols.items():
        entry = copy.deepcopy(template)
        base, quote = (pair[:-4], "USDT") if pair.endswith("USDT") else (pair[:-3], pair[-3:])
        entry.update(symbol=pair, status=status, baseAsset=base, quoteAsset=quote)
        doc["symbols"].append(entry)
    return Reply(200, json.dumps(doc, default=str).encode(), {"x-mbx-used-weight-1m": "20"})


def ticker_answer(request: httpx.Request) -> Reply:
    """Answers /ticker/price for whatever was asked, in the recorded item shape, and rejects unlisted symbols."""
    asked = json.loads(query(request)["symbols"][0])
    template = sample("binance.ticker_price.symbols.json")[0]
    if any(s.startswith("DELISTED") for s in asked):
        return Reply.sample("binance.error.invalid_symbol.json", status=400)
    items = [{**template, "symbol": s, "price": f"0.000000{i + 1:02d}00"} for i, s in enumerate(asked)]
    return Reply.json(items, headers={"x-mbx-used-weight-1m": "24"})


def binance(transport: ReplayTransport, clock: FakeClock, **overrides: Any) -> BinanceClient:
    s = BinanceSettings(base_url="https://binance.test", **{**FAST, **overrides})
    return BinanceClient.from_settings(s, transport=transport, **clock.http_options())


def test_binance_symbols_are_sent_as_a_compact_json_array_and_prices_are_exact_decimals(clock: FakeClock) -> None:
    transport = ReplayTransport(
        {
            "/api/v3/exchangeInfo": exchange_info({"LTCBTC": "TRADING", "ETHBTC": "TRADING"}),
            "/api/v3/ticker/price": Reply.sample("binance.ticker_price.symbols.json"),
        }
    )
    prices = binance(transport, clock).ticker_prices(["LTCBTC", "ETHBTC"])
    assert prices == [
        {"symbol": "LTCBTC", "price": Decimal("4.00000200")},
        {"symbol": "ETHBTC", "price": Decimal("0.07946600")},
    ]
    assert str(prices[0]["price"]) == "4.00000200"  # digits as printed, trailing zeros kept
    ticker_request = transport.requests[-1]
    assert ticker_request.url.query == b"symbols=%5B%22LTCBTC%22%2C%22ETHBTC%22%5D"
    assert unquote(ticker_request.url.query.decode()) == 'symbols=["LTCBTC","ETHBTC"]'


def test_binance_one_malformed_ticker_entry_fails_that_pair_only(clock: FakeClock) -> None:
    transport = ReplayTransport(
        {
            "/api/v3/exchangeInfo": exchange_info({"LTCBTC": "TRADING", "ETHBTC": "TRADING", "XRPBTC": "TRADING"}),
            "/api/v3/ticker/price": Reply(
                200,
                b'[{"symbol":"LTCBTC","price":"1e999999999"},{"symbol":"ETHBTC","price":"0.07946600"},'
                b'{"symbol":"XRPBTC","price":{"v":1}},{"price":"1"}]',
            ),
        }
    )
    client = binance(transport, clock, breaker_failure_threshold=1)
    prices = client.ticker_prices(["LTCBTC", "ETHBTC", "XRPBTC"])
    assert prices[1] == {"symbol": "ETHBTC", "price": Decimal("0.07946600")}
    assert [p["symbol"] for p in prices] == ["LTCBTC", "ETHBTC", "XRPBTC"]  # bad ones left for the normaliser
    assert len(transport.requests) == 2 and client.http.breaker_state == "closed"


def test_binance_ticker_object_of_another_shape_is_bad_data_not_an_outage(clock: FakeClock) -> None:
    transport = ReplayTransport(
        {
            "/api/v3/exchangeInfo": exchange_info({"LTCBTC": "TRADING", "ETHBTC": "TRADING"}),
            "/api/v3/ticker/price": Reply(200, b'"maintenance"'),
        }
    )
    client = binance(transport, clock, breaker_failure_threshold=1)
    for _ in range(3):
        with pytest.raises(BadUpstreamBody, match="expected a JSON array of tickers"):
            client.ticker_prices(["LTCBTC", "ETHBTC"])
    assert len(transport.requests) == 4 and client.http.breaker_state == "closed"


def test_binance_100_symbols_cost_one_request_and_unlisted_ones_are_never_sent(clock: FakeClock) -> None:
    pairs = {f"T{i:03d}USDT": "TRADING" for i in range(100)} | {"HALTUSDT": "BREAK"}
    transport = ReplayTransport({"/api/v3/exchangeInfo": exchange_info(pairs), "/api/v3/ticker/price": ticker_answer})
    client = binance(transport, clock)
    asked = [*pairs, "NOPEUSDT", "T000USDT"]  # one halted, one unknown, one duplicate
    prices = client.ticker_prices(asked)
    assert transport.paths() == ["/api/v3/exchangeInfo", "/api/v3/ticker/price"]
    sent = json.loads(query(transport.requests[1])["symbols"][0])
    assert sent == [f"T{i:03d}USDT" for i in range(100)]
    assert len(prices) == 100 and str(prices[0]["price"]) == "1.00E-8"  # "0.0000000100" as sent
    assert client.http.used_weight == 24


def test_binance_usdt_symbols_are_trading_usdt_bases_and_cached(clock: FakeClock) -> None:
    pairs = {"BTCUSDT": "TRADING", "ETHUSDT": "TRADING", "ETHBTC": "TRADING", "LUNAUSDT": "BREAK"}
    transport = ReplayTransport({"/api/v3/exchangeInfo": exchange_info(pairs)})
    client = binance(transport, clock)
    assert client.usdt_symbols() == {"BTC", "ETH"}
    clock.advance(3599)
    client.usdt_symbols()
    assert len(transport.requests) == 1
    clock.advance(2)
    client.usdt_symbols()
    assert len(transport.requests) == 2


def test_binance_stale_listing_is_refreshed_once_on_invalid_symbol(clock: FakeClock) -> None:
    transport = ReplayTransport(
        {
            "/api/v3/exchangeInfo": [
                exchange_info({"BTCUSDT": "TRADING", "DELISTEDUSDT": "TRADING"}),
                exchange_info({"BTCUSDT": "TRADING"}),
            ],
            "/api/v3/ticker/price": ticker_answer,
        }
    )
    prices = binance(transport, clock).ticker_prices(["BTCUSDT", "DELISTEDUSDT"])
    assert [p["symbol"] for p in prices] == ["BTCUSDT"]
    assert transport.paths() == ["/api/v3/exchangeInfo", "/api/v3/ticker/price"] * 2


def test_binance_asks_every_pair_once_when_the_symbols_would_not_fit_one_url(clock: FakeClock) -> None:
    wanted = {f"LONGNAME{i:04d}USDT": "TRADING" for i in range(1000)}
    listed = {**wanted, "OTHERUSDT": "TRADING", "BADUSDT": "TRADING"}

    def every_pair(request: httpx.Request) -> Reply:
        assert "symbols" not in query(request)  # the no-parameter form: every pair
        items = [{"symbol": s, "price": f"0.000000{i % 90 + 10}00"} for i, s in enumerate(wanted)]
        # Pairs nobody asked for are not validated: a bad one must not fail the wanted ones.
        return Reply.json(items + [{"symbol": "OTHERUSDT", "price": "1"}, {"symbol": "BADUSDT", "price": None}])

    transport = ReplayTransport({"/api/v3/exchangeInfo": exchange_info(listed), "/api/v3/ticker/price": every_pair})
    prices = binance(transport, clock).ticker_prices(list(wanted))
    assert transport.paths() == ["/api/v3/exchangeInfo", "/api/v3/ticker/price"]
    assert [p["symbol"] for p in prices] == list(wanted)
    assert prices[0]["price"] == Decimal("0.0000001000")


def test_binance_symbols_within_one_url_are_one_symbols_request(clock: FakeClock) -> None:
    pairs = {f"LONGNAME{i:04d}USDT": "TRADING" for i in range(200)}
    transport = ReplayTransport({"/api/v3/exchangeInfo": exchange_info(pairs), "/api/v3/ticker/price": ticker_answer})
    prices = binance(transport, clock).ticker_prices(list(pairs))
    (request,) = transport.requests[1:]
    assert len(request.url.query) <= len("symbols=") + MAX_SYMBOLS_QUERY_CHARS and len(prices) == 200


# --- CoinGecko ---------------------------------------------------------------------------------


def coingecko(transport: ReplayTransport, clock: FakeClock, **overrides: Any) -> CoinGeckoClient:
    s = CoinGeckoSettings(base_url="https://cg.test", **{**FAST, **overrides})
    return CoinGeckoClient.from_settings(s, transport=transport, **clock.http_options())


def test_coingecko_top_markets_query_and_exact_numbers(clock: FakeClock) -> None:
    transport = ReplayTransport({"/api/v3/coins/markets": Reply.sample("coingecko.coins_markets.json")})
    markets = coingecko(transport, clock).top_markets(100)
    assert query(transport.requests[0]) == {
        "vs_currency": ["usd"],
        "order": ["market_cap_desc"],
        "per_page": ["100"],
        "page": ["1"],
    }
    raw = sample_bytes("coingecko.coins_markets.json").decode()
    change = markets[0]["price_change_percentage_24h"]
    assert isinstance(change, Decimal) and str(change) in raw  # printed digits survive
    with pytest.raises(ValueError, match="limit must be 1-250"):
        coingecko(transport, clock).top_markets(251)


def test_coingecko_trending_keeps_exponent_prices_exact(clock: FakeClock) -> None:
    transport = ReplayTransport({"/api/v3/search/trending": Reply.sample("coingecko.search_trending.json")})
    item = coingecko(transport, clock).trending()["coins"][0]["item"]
    assert item["price_btc"] == Decimal("7.821066970851871E-11")


def test_coingecko_demo_key_header_and_coin_detail_params(clock: FakeClock) -> None:
    transport = ReplayTransport({"/api/v3/coins/": Reply.sample("coingecko.coins_id.bitcoin.json")})
    detail = coingecko(transport, clock, api_key="demo-key").coin_detail("bitcoin")
    assert detail["id"] == "bitcoin" and detail["platforms"] == {"": ""}
    request = transport.requests[0]
    assert request.url.path == "/api/v3/coins/bitcoin" and request.headers["x-cg-demo-api-key"] == "demo-key"
    assert {k: v[0] for k, v in query(request).items()} == {
        "localization": "false",
        "tickers": "false",
        "market_data": "false",
        "community_data": "false",
        "developer_data": "false",
        "sparkline": "false",
    }
    with pytest.raises(ValueError):
        coingecko(transport, clock).coin_detail("")
    coingecko(transport, clock).coin_detail("../simple/price")
    assert transport.requests[-1].url.raw_path.startswith(b"/api/v3/coins/..%2Fsimple%2Fprice?")  # one segment


def test_coingecko_token_prices_batch_100_addresses_per_request(clock: FakeClock) -> None:
    def answer(request: httpx.Request) -> Reply:
        template = sample("coingecko.simple_token_price.ethereum.json")
        usd = next(iter(template.values()))
        addresses = query(request)["contract_addresses"][0].split(",")
        return Reply(200, json.dumps({a: usd for a in addresses}, default=str).encode())

    transport = ReplayTransport({"/api/v3/simple/token_price/ethereum": answer})
    addresses = [f"0x{i:040x}" for i in range(150)]
    prices = coingecko(transport, clock).token_prices("ethereum", addresses)
    assert len(transport.requests) == 2 and len(prices) == 150
    assert [len(query(r)["contract_addresses"][0].split(",")) for r in transport.requests] == [100, 50]


def test_coingecko_simple_price_and_cached_lists(clock: FakeClock) -> None:
    transport = ReplayTransport(
        {
            "/api/v3/simple/price": Reply.sample("coingecko.simple_price.json"),
            "/api/v3/coins/markets": Reply.sample("coingecko.coins_markets.json"),
            "/api/v3/coins/list": Reply.json([{"id": "weth", "symbol": "weth", "name": "WETH", "platforms": {}}]),
        }
    )
    client = coingecko(transport, clock)
    assert client.simple_price(["bitcoin", "bitcoin"])["bitcoin"]["usd_24h_change"] == Decimal("-1.4093297098441402")
    assert query(transport.requests[0])["ids"] == ["bitcoin"]
    assert client.stablecoin_ids() == {"bitcoin"}  # the recorded markets page, served for the category
    assert query(transport.requests[1])["category"] == ["stablecoins"]
    client.coins_list_with_platforms()
    assert query(transport.requests[2]) == {"include_platform": ["true"]}
    clock.advance(3601)  # the coin list expires after 1 h, the stablecoins after 24 h
    client.stablecoin_ids()
    client.coins_list_with_platforms()
    assert transport.paths() == [
        "/api/v3/simple/price",
        "/api/v3/coins/markets",
        "/api/v3/coins/list",
        "/api/v3/coins/list",
    ]


def test_cached_list_is_served_stale_when_a_refresh_fails(clock: FakeClock) -> None:
    transport = ReplayTransport({"/api/v3/coins/markets": [Reply.sample("coingecko.coins_markets.json"), Reply(500)]})
    client = coingecko(transport, clock, max_retries=0)
    assert client.stablecoin_ids() == {"bitcoin"}
    clock.advance(25 * 3600)
    assert client.stablecoin_ids() == {"bitcoin"}
    assert len(transport.requests) == 2


# --- DexScreener ---------------------------------------------------------------------------------


def dexscreener(transport: ReplayTransport, clock: FakeClock, **overrides: Any) -> DexScreenerClient:
    s = DexScreenerSettings(base_url="https://dex.test", **{**FAST, **overrides})
    return DexScreenerClient.from_settings(s, transport=transport, **clock.http_options())


def test_dexscreener_token_pairs_chunk_61_addresses_into_3_requests(clock: FakeClock) -> None:
    transport = ReplayTransport({"/tokens/v1/solana/": Reply.sample("dexscreener.tokens_v1.solana_wsol.json")})
    mints = ["So11111111111111111111111111111111111111112"] + [f"Mint{i}pump" for i in range(60)]
    pairs = dexscreener(transport, clock).token_pairs("solana", mints)
    assert len(transport.requests) == 3
    batches = [r.url.path.removeprefix("/tokens/v1/solana/").split(",") for r in transport.requests]
    assert sorted(len(b) for b in batches) == [1, 30, 30]  # chunks are fetched in parallel: any order
    assert "So11111111111111111111111111111111111111112" in {a for b in batches for a in b}  # case kept (base58)
    assert len(pairs) == 3 * len(sample("dexscreener.tokens_v1.solana_wsol.json"))
    assert isinstance(pairs[0]["priceUsd"], str)  # decimal strings stay strings for the normalizer


def test_dexscreener_answers_are_handled_one_batch_at_a_time(clock: FakeClock) -> None:
    """The handler reduces each 30-address answer where it arrived: the caller gets one
    small result per batch, in batch order, never the answers themselves."""
    transport = ReplayTransport({"/tokens/v1/solana/": Reply.sample("dexscreener.tokens_v1.solana_wsol.json")})
    mints = [f"Mint{i}pump" for i in range(61)]
    seen: list[int] = []

    def count(pairs: list[dict]) -> int:
        seen.append(len(pairs))
        return len(pairs)

    per_batch = dexscreener(transport, clock).token_pairs_per_batch("solana", mints, count)
    answer = len(sample("dexscreener.tokens_v1.solana_wsol.json"))
    assert per_batch == [answer] * 3 and seen == [answer] * 3
    assert len(transport.requests) == 3


def test_dexscreener_profiles_share_their_own_budget(clock: FakeClock) -> None:
    transport = ReplayTransport(
        {
            "/token-profiles/latest/v1": Reply.sample("dexscreener.token_profiles.latest.json"),
            "/token-boosts/": Reply.sample("dexscreener.token_boosts.item.json"),
            "/tokens/v1/": Reply.sample("dexscreener.tokens_v1.solana_wsol.json"),
        }
    )
    client = dexscreener(transport, clock, profiles_rate_limit_per_minute=2)
    assert len(client.latest_profiles()) == 3
    assert client.top_boosts()[0]["chainId"] == "solana"
    with pytest.raises(RateLimited, match="own rate limit of 2 requests/min"):
        client.latest_boosts()
    assert client.token_pairs("solana", ["So11111111111111111111111111111111111111112"])  # other budget
    assert transport.paths() == [
        "/token-profiles/latest/v1",
        "/token-boosts/top/v1",
        "/tokens/v1/solana/So11111111111111111111111111111111111111112",
    ]


def test_dexscreener_refuses_an_address_that_would_split_the_batch(clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="without commas"):
        dexscreener(ReplayTransport(), clock).token_pairs("ethereum", ["0xa,0xb"])


# --- GeckoTerminal --------------------------------------------------------------------------------


def geckoterminal(transport: ReplayTransport, clock: FakeClock) -> GeckoTerminalClient:
    s = GeckoTerminalSettings(base_url="https://gt.test", **FAST)
    return GeckoTerminalClient.from_settings(s, transport=transport, **clock.http_options())


def test_geckoterminal_trending_pools_includes_tokens_and_dex(clock: FakeClock) -> None:
    transport = ReplayTransport(
        {
            "/api/v2/networks/trending_pools": Reply.sample("geckoterminal.trending_pools.all.json"),
            "/api/v2/networks/eth/trending_pools": Reply.sample("geckoterminal.trending_pools.network.json"),
        }
    )
    client = geckoterminal(transport, clock)
    everywhere = client.trending_pools()
    on_eth = client.trending_pools("eth")
    assert query(transport.requests[0])["include"] == ["base_token,quote_token,dex,network"]
    assert query(transport.requests[1])["include"] == ["base_token,quote_token,dex"]
    assert transport.requests[0].headers["accept"] == "application/json;version=20230302"
    assert (
        everywhere["data"]
        and on_eth["data"]
        and isinstance(everywhere["data"][0]["attributes"]["base_token_price_usd"], str)
    )


def test_geckoterminal_tokens_multi_and_prices_merge_batches_of_30(clock: FakeClock) -> None:
    transport = ReplayTransport(
        {
            "/api/v2/networks/solana/tokens/multi/": Reply.sample("geckoterminal.tokens_multi.solana.json"),
            "/api/v2/simple/networks/eth/token_price/": Reply.sample("geckoterminal.simple_token_price.eth.json"),
        }
    )
    client = geckoterminal(transport, clock)
    mints = [f"Mint{i}" for i in range(31)]
    doc = client.tokens_multi("solana", mints)
    per_page = sample("geckoterminal.tokens_multi.solana.json")
    assert len(transport.requests) == 2 and query(transport.requests[0])["include"] == ["top_pools"]
    assert len(doc["data"]) == 2 * len(per_page["data"])
    assert len(doc["included"]) == len(per_page["included"])  # the same pools, once
    prices = client.token_prices("eth", [f"0x{i:040x}" for i in range(45)])
    assert len(transport.requests) == 4
    weth = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
    assert isinstance(prices["data"]["attributes"]["token_prices"][weth], str)


# --- GoPlus -------------------------------------------------------------------------------------------


def goplus(transport: ReplayTransport, clock: FakeClock, **overrides: Any) -> GoPlusClient:
    s = GoPlusSettings(base_url="https://goplus.test", **{**FAST, **overrides})
    return GoPlusClient.from_settings(s, transport=transport, **clock.http_options())


WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"


def test_goplus_token_security_one_address_per_request_by_default(clock: FakeClock) -> None:
    transport = ReplayTransport({"/api/v1/token_security/1": Reply.sample("goplus.token_security.eth_weth.json")})
    client = goplus(transport, clock, api_key="access-token")
    audits = client.token_security("1", [WETH, "0x" + "1" * 40, WETH])
    assert len(transport.requests) == 2  # duplicates asked once
    assert query(transport.requests[0]) == {"contract_addresses": [WETH]}
    assert transport.requests[0].headers["authorization"] == "Bearer access-token"
    assert audits[WETH]["trust_list"] == "1"


def test_goplus_solana_and_partial_answers(clock: FakeClock) -> None:
    usdc = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
    entry = json.loads(sample_bytes("goplus.solana_token_security.usdc.result_entry.json"))
    transport = ReplayTransport(
        {"/api/v1/solana/token_security": Reply.json({"code": 2, "message": "partial", "result": {usdc: entry}})}
    )
    audits = goplus(transport, clock).solana_token_security([usdc])
    assert audits[usdc]["holder_count"] == "7348314"
    assert transport.requests[0].url.path == "/api/v1/solana/token_security"


def test_goplus_legacy_envelope_fails_the_token_without_retry_or_breaker(clock: FakeClock) -> None:
    transport = ReplayTransport({"/api/v1/token_security/1": Reply.json({"data": {WETH: {"is_honeypot": "0"}}})})
    client = goplus(transport, clock, breaker_failure_threshold=1)
    for _ in range(3):
        with pytest.raises(BadUpstreamBody, match="no GoPlus envelope"):
            client.token_security("1", [WETH])
    assert len(transport.requests) == 3 and client.http.breaker_state == "closed"


def test_goplus_4029_is_rate_limited_and_holds_further_calls(clock: FakeClock) -> None:
    transport = ReplayTransport({"/api/v1/token_security/56": Reply.json({"code": 4029, "message": "too frequent"})})
    client = goplus(transport, clock)
    with pytest.raises(RateLimited, match="code 4029") as caught:
        client.token_security("56", [WETH])
    assert caught.value.code == 4029 and len(transport.requests) == 1
    with pytest.raises(RateLimited):
        client.token_security("56", [WETH])
    assert len(transport.requests) == 1  # no request while the minute has not passed


def test_goplus_4029_hold_is_configurable(clock: FakeClock) -> None:
    transport = ReplayTransport(
        {
            "/api/v1/token_security/56": [
                Reply.json({"code": 4029, "message": "too frequent"}),
                Reply.json({"code": 1, "result": {}}),
            ]
        }
    )
    # A hold the job may wait out is waited in-process; the default minute is not (test above).
    client = goplus(transport, clock, too_frequent_hold_seconds=2, max_wait_seconds=3)
    assert client.token_security("56", [WETH]) == {}
    assert len(transport.requests) == 2 and clock.elapsed >= 2


def test_goplus_permanent_and_retryable_codes(clock: FakeClock) -> None:
    transport = ReplayTransport(
        {
            "/api/v1/token_security/1": Reply.json({"code": 2018, "message": "chain not supported", "result": {}}),
            "/api/v1/token_security/10": Reply.json({"code": 5000, "message": "server error", "result": {}}),
        }
    )
    client = goplus(transport, clock)
    with pytest.raises(PermanentUpstreamError, match="code 2018: chain not supported") as permanent:
        client.token_security("1", [WETH])
    assert permanent.value.code == 2018 and len(transport.requests) == 1
    with pytest.raises(RetryableUpstreamError, match="code 5000") as retryable:
        client.token_security("10", [WETH])
    assert retryable.value.code == 5000 and len(transport.requests) == 1 + 3  # retried twice


# --- factory ----------------------------------------------------------------------------------------


def test_factory_builds_each_client_once_on_first_use(clock: FakeClock) -> None:
    transport = ReplayTransport({"/api/v3/search/trending": Reply.sample("coingecko.search_trending.json")})
    clients = UpstreamClients.from_settings(Settings(), transport=transport, **clock.http_options())
    assert clients.breaker_states() == {}
    assert clients.coingecko is clients.coingecko
    assert clients.coingecko.trending()["coins"]
    assert transport.requests[0].url.host == "api.coingecko.com"  # the configured default, served offline
    for name in ("binance", "dexscreener", "geckoterminal", "goplus"):
        getattr(clients, name)
    assert clients.breaker_states() == dict.fromkeys(
        ["coingecko", "binance", "dexscreener", "geckoterminal", "goplus"], "closed"
    )
    clients.close()
