"""The simulated market over real HTTP: each endpoint answers in the shape of the recorded samples
(tests/fixtures/upstream), with exact, moving prices that agree across APIs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from local.market.pools import main_pool, pools_of
from tests.helpers.upstream_doubles import samples_dir

SAMPLES = samples_dir()
FROZEN_AT = datetime(2026, 6, 25, 21, 0, 0, tzinfo=UTC)


def sample(name: str) -> Any:
    path = SAMPLES / name
    return json.loads(path.read_text(), parse_float=Decimal)


def kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, Decimal)):
        return "number"
    return type(value).__name__


# Keys the real APIs document as nullable: a null from the simulator is as valid as a value.
NULLABLE = frozenset(
    {
        "max_supply",
        "fully_diluted_valuation",
        "market_cap_usd",
        "genesis_date",
        "hashing_algorithm",
        "coingecko_coin_id",
        "market_cap_fdv_ratio",
    }
)


def assert_shape(ours: Any, theirs: Any, where: str = "$", optional: frozenset[str] = frozenset()) -> None:
    """Every key of the sample is in our body with the same JSON type (a null in the sample accepts anything)."""
    if theirs is None or (ours is None and where.rsplit(".", 1)[-1] in NULLABLE):
        return
    assert kind(ours) == kind(theirs), f"{where}: sample has {kind(theirs)}, simulator sent {kind(ours)} ({ours!r:.80})"
    if isinstance(theirs, dict):
        for key, value in theirs.items():
            if key not in ours:
                assert key in optional, f"{where}: key {key!r} of the sample is missing"
                continue
            assert_shape(ours[key], value, f"{where}.{key}", optional)
    elif isinstance(theirs, list) and theirs and ours:
        for i, item in enumerate(ours):
            assert_shape(item, theirs[0], f"{where}[{i}]", optional)


@pytest.fixture
def market(simulated_market):
    simulated_market.clock.freeze(FROZEN_AT)
    return simulated_market


@pytest.fixture
def client(market):
    with httpx.Client(base_url=market.url, timeout=10) as http:
        yield http


def get(client: httpx.Client, path: str, status: int = 200, **params: Any) -> Any:
    response = client.get(path, params=params or None)
    assert response.status_code == status, response.text[:500]
    return response.json(parse_float=Decimal)


# --- Binance -----------------------------------------------------------------------------------------


def test_binance_ticker_single_array_and_all(client, market):
    universe = market.universe
    single = get(client, "/binance/api/v3/ticker/price", symbol="BTCUSDT")
    assert_shape(single, sample("binance.ticker_price.single.json"))
    assert Decimal(single["price"]) == universe.price_usdt("BTC", FROZEN_AT)
    assert len(single["price"].split(".")[1]) == 8

    raw = client.get('/binance/api/v3/ticker/price?symbols=["BTCUSDT","ETHUSDT"]')  # not URL-encoded
    encoded = client.get("/binance/api/v3/ticker/price?symbols=" + quote('["BTCUSDT","ETHUSDT"]'))
    assert raw.json() == encoded.json()
    assert_shape(raw.json(), sample("binance.ticker_price.symbols.json"))
    assert [item["symbol"] for item in raw.json()] == ["BTCUSDT", "ETHUSDT"]

    everything = get(client, "/binance/api/v3/ticker/price")
    symbols = {item["symbol"] for item in everything}
    listed = {t.binance_symbol for t in universe.tokens if t.binance_status}
    assert listed <= symbols
    assert "ETHBTC" in symbols, "non-USDT pairs are listed too"
    assert "USDTUSDT" not in symbols and "HYPEUSDT" not in symbols


def test_binance_used_weight_header_counts_documented_weights(client):
    weights = []
    for path in (
        "/binance/api/v3/ticker/price?symbol=BTCUSDT",
        '/binance/api/v3/ticker/price?symbols=["BTCUSDT"]',
        "/binance/api/v3/ticker/price",
        "/binance/api/v3/exchangeInfo",
    ):
        response = client.get(path)
        assert response.status_code == 200
        weights.append(int(response.headers["X-MBX-USED-WEIGHT-1M"]))
    assert weights == [2, 6, 10, 30]


@pytest.mark.parametrize("query", ["symbol=FOOBARUSDT", 'symbols=["BTCUSDT","FOOBARUSDT"]'])
def test_binance_unknown_symbol_fails_the_whole_request(client, query):
    response = client.get(f"/binance/api/v3/ticker/price?{query}")
    assert response.status_code == 400
    assert response.json() == sample("binance.error.invalid_symbol.json")
    assert "X-MBX-USED-WEIGHT-1M" in response.headers


@pytest.mark.parametrize("query", ['symbols=["BTCUSDT", "ETHUSDT"]', "symbols=BTCUSDT", "symbol=btcusdt"])
def test_binance_rejects_illegal_symbol_parameters(client, query):
    response = client.get(f"/binance/api/v3/ticker/price?{query}")
    assert response.status_code == 400
    assert response.json()["code"] == -1100


def test_binance_exchange_info(client, market):
    body = get(client, "/binance/api/v3/exchangeInfo")
    assert_shape(body, sample("binance.exchangeInfo.skeleton.json"))
    assert body["rateLimits"] == sample("binance.exchangeInfo.rateLimits.json")
    by_symbol = {s["symbol"]: s for s in body["symbols"]}
    assert by_symbol["BTCUSDT"]["status"] == "TRADING"
    assert (by_symbol["BTCUSDT"]["baseAsset"], by_symbol["BTCUSDT"]["quoteAsset"]) == ("BTC", "USDT")
    halted = next(t for t in market.universe.tokens if t.binance_status == "BREAK")
    assert by_symbol[halted.binance_symbol]["status"] == "BREAK"
    trading = get(client, "/binance/api/v3/exchangeInfo", symbolStatus="TRADING")
    assert halted.binance_symbol not in {s["symbol"] for s in trading["symbols"]}


def test_binance_weight_limit_gives_429_with_retry_after(client, market):
    market.configure(binance_weight_limit=6)
    assert client.get("/binance/api/v3/ticker/price?symbol=BTCUSDT").status_code == 200
    assert client.get("/binance/api/v3/ticker/price").status_code == 200
    limited = client.get("/binance/api/v3/ticker/price?symbol=BTCUSDT")
    assert limited.status_code == 429
    assert limited.json()["code"] == -1003
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.headers["X-MBX-USED-WEIGHT-1M"] == "6"


# --- CoinGecko ---------------------------------------------------------------------------------------


def test_coingecko_markets_top_100_in_rank_order(client, market):
    body = get(
        client,
        "/coingecko/api/v3/coins/markets",
        vs_currency="usd",
        order="market_cap_desc",
        per_page=100,
        page=1,
        sparkline="true",
        price_change_percentage="1h,24h,7d,14d,30d,200d,1y",
    )
    assert_shape(body, sample("coingecko.coins_markets.json"))
    assert [c["market_cap_rank"] for c in body] == list(range(1, 101))
    caps = [c["market_cap"] for c in body]
    assert caps == sorted(caps, reverse=True)
    bitcoin = body[0]
    assert bitcoin["id"] == "bitcoin"
    assert bitcoin["current_price"] == market.universe.price_usd("BTC", FROZEN_AT)
    assert bitcoin["low_24h"] <= bitcoin["current_price"] <= bitcoin["high_24h"]
    assert len(get(client, "/coingecko/api/v3/coins/markets", vs_currency="usd", per_page=250)) == 139
    assert get(client, "/coingecko/api/v3/coins/markets", vs_currency="usd", page=3) == []


def test_coingecko_markets_filters_and_validation(client):
    stables = get(client, "/coingecko/api/v3/coins/markets", vs_currency="usd", category="stablecoins")
    assert {c["symbol"] for c in stables} == {"usdt", "usdc", "dai", "usde", "fdusd", "pyusd", "tusd"}
    some = get(client, "/coingecko/api/v3/coins/markets", vs_currency="usd", ids="ethereum,bitcoin,nope")
    assert [c["id"] for c in some] == ["bitcoin", "ethereum"]
    assert get(client, "/coingecko/api/v3/coins/markets", 400) == {"error": "Missing parameter vs_currency"}
    assert "error" in get(client, "/coingecko/api/v3/coins/markets", 400, vs_currency="usdt")


def test_coingecko_coin_list_and_detail(client, market):
    coins = get(client, "/coingecko/api/v3/coins/list", include_platform="true")
    by_id = {c["id"]: c for c in coins}
    assert by_id["bitcoin"]["platforms"] == {}
    assert by_id["tether"]["platforms"]["ethereum"] == "0xdac17f958d2ee523a2206206994597c13d831ec7"
    assert by_id["usd-coin"]["platforms"]["solana"] == "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
    assert "platforms" not in get(client, "/coingecko/api/v3/coins/list")[0]

    bitcoin = get(client, "/coingecko/api/v3/coins/bitcoin")
    assert_shape(
        bitcoin, sample("coingecko.coins_id.bitcoin.json"), optional=frozenset({"eur", "btc"})
    )  # usd is served
    assert bitcoin["platforms"] == {"": ""}
    assert bitcoin["detail_platforms"] == {"": {"decimal_place": None, "contract_address": ""}}
    pepe = get(client, "/coingecko/api/v3/coins/pepe", tickers="false", community_data="false", developer_data="false")
    assert pepe["detail_platforms"]["ethereum"] == {
        "decimal_place": 18,
        "contract_address": "0x6982508145454ce325ddbe47a25d4ec3d2311933",
    }
    assert "meme" in [c.lower() for c in pepe["categories"]]
    assert "tickers" not in pepe and "market_data" in pepe
    assert get(client, "/coingecko/api/v3/coins/not-a-coin", 404) == {"error": "coin not found"}


def test_coingecko_simple_prices_include_tether_off_one(client, market):
    body = get(
        client,
        "/coingecko/api/v3/simple/price",
        ids="bitcoin,tether,nope",
        vs_currencies="usd",
        include_market_cap="true",
        include_24hr_vol="true",
        include_24hr_change="true",
        include_last_updated_at="true",
    )
    assert_shape(body["bitcoin"], sample("coingecko.simple_price.json")["bitcoin"])
    assert set(body) == {"bitcoin", "tether"}
    rate = body["tether"]["usd"]
    assert rate != 1 and abs(rate - 1) < Decimal("0.01")
    assert body["bitcoin"]["usd"] / rate == market.universe.price_usdt("BTC", FROZEN_AT)

    tokens = get(
        client,
        "/coingecko/api/v3/simple/token_price/ethereum",
        vs_currencies="usd",
        include_market_cap="true",
        include_24hr_vol="true",
        include_24hr_change="true",
        include_last_updated_at="true",
        contract_addresses="0x2260FAC5E5542a773Aa44fBCfeDf7C193bc2C599,0x0000000000000000000000000000000000000001",
    )
    assert list(tokens) == ["0x2260fac5e5542a773aa44fbcfedf7c193bc2c599"]
    assert_shape(tokens, sample("coingecko.simple_token_price.ethereum.json"))
    solana = get(
        client,
        "/coingecko/api/v3/simple/token_price/solana",
        vs_currencies="usd",
        contract_addresses="DezXAZ8z7PnMcsqqq7rTPXDLzmEKi6MSc4pnmTC2Bo4f",
    )
    assert list(solana) == ["DezXAZ8z7PnMcsqqq7rTPXDLzmEKi6MSc4pnmTC2Bo4f"]


def test_coingecko_tiny_price_is_an_exact_json_number(client, market):
    body = client.get("/coingecko/api/v3/simple/price", params={"ids": "picocat", "vs_currencies": "usd"})
    expected = market.universe.price_usd("PICO", FROZEN_AT)
    assert "e-11" in body.text
    assert body.json(parse_float=Decimal)["picocat"]["usd"] == expected


def test_coingecko_trending(client, market):
    body = get(client, "/coingecko/api/v3/search/trending")
    assert_shape(body, sample("coingecko.search_trending.json"))
    ids = [c["item"]["id"] for c in body["coins"]]
    assert ids and all(market.universe.get(i).is_trending for i in ids)
    assert body["coins"][0]["item"]["data"]["market_cap"].startswith("$")


# --- DexScreener -------------------------------------------------------------------------------------


def test_dexscreener_boosts_and_profiles(client, market):
    top = get(client, "/dexscreener/token-boosts/top/v1")
    assert_shape(top, sample("dexscreener.token_boosts.item.json"), optional=frozenset({"description", "header"}))
    assert {b["chainId"] for b in top} >= {"solana", "ethereum", "base", "bsc"}
    amounts = [b["totalAmount"] for b in top]
    assert amounts == sorted(amounts, reverse=True)
    latest = get(client, "/dexscreener/token-boosts/latest/v1")
    addresses = [b["tokenAddress"] for b in latest]
    assert len(addresses) > len(set(addresses)), "a token boosted twice is listed twice"
    assert "ton" in {b["chainId"] for b in latest}

    profiles = get(client, "/dexscreener/token-profiles/latest/v1")
    assert_shape(
        profiles, sample("dexscreener.token_profiles.latest.json")[1:], optional=frozenset({"header", "type", "label"})
    )  # a link has a type, a label or neither
    evm = [p["tokenAddress"] for p in profiles if p["chainId"] != "solana"]
    assert evm and all(a == a.lower() for a in evm)


def test_dexscreener_token_pairs_quote_exact_prices(client, market):
    universe = market.universe
    wif = universe.get("WIF")
    pairs = get(client, f"/dexscreener/tokens/v1/solana/{wif.address}")
    assert_shape(
        pairs,
        sample("dexscreener.tokens_v1.solana_wsol.json"),
        optional=frozenset({"priceUsd", "info", "m5", "fdv", "marketCap", "header", "labels"}),
    )
    assert all(p["baseToken"]["address"] == wif.address for p in pairs)
    deepest = max(pairs, key=lambda p: p["liquidity"]["usd"])
    assert Decimal(deepest["priceUsd"]) == universe.price_usd(wif, FROZEN_AT)
    assert len({p["pairAddress"] for p in pairs}) >= 2

    pico = universe.get("PICO")
    pico_pairs = get(client, f"/dexscreener/tokens/v1/bsc/{pico.address.lower()}")  # EVM: any case
    best = max(pico_pairs, key=lambda p: p["liquidity"]["usd"])
    assert Decimal(best["priceUsd"]) == universe.price_usd(pico, FROZEN_AT)
    assert best["baseToken"]["address"] == pico.address, "EVM addresses come back checksummed"
    assert best["url"] == best["url"].lower()


def test_dexscreener_messy_pairs_are_served(client, market):
    universe = market.universe
    seen = set()
    for token in universe.trending():
        pairs = get(client, f"/dexscreener/tokens/v1/{token.chain}/{token.address}")
        if any("priceUsd" not in p for p in pairs):
            seen.add("no_price_usd")
        if any(p["liquidity"]["usd"] == 0 for p in pairs):
            seen.add("zero_liquidity")
        if len(pairs) != len({p["pairAddress"] for p in pairs}):
            seen.add("duplicate")
    assert seen == {"no_price_usd", "zero_liquidity", "duplicate"}


def test_dexscreener_batches_and_legacy_endpoint(client, market):
    universe = market.universe
    solana = [t.address for t in universe.tokens if t.chain == "solana"][:30]
    pairs = get(client, "/dexscreener/tokens/v1/solana/" + ",".join(solana))
    assert {p["baseToken"]["address"] for p in pairs} == set(solana)
    too_many = [t.address for t in universe.tokens if t.chain == "ethereum"][:31]
    assert client.get("/dexscreener/tokens/v1/ethereum/" + ",".join(too_many)).status_code == 400
    assert get(client, "/dexscreener/tokens/v1/solana/" + solana[0].lower()) == [], "base58 is case-sensitive"

    legacy = get(client, f"/dexscreener/latest/dex/tokens/{universe.get('BONK').address}")
    assert legacy["schemaVersion"] == "1.0.0" and legacy["pairs"]
    assert get(client, "/dexscreener/latest/dex/tokens/NotAToken111") == {"schemaVersion": "1.0.0", "pairs": None}


# --- GeckoTerminal -----------------------------------------------------------------------------------


def _assert_included(body: dict, reference: dict) -> None:
    by_type = {r["type"]: r for r in reference["included"]}
    for resource in body["included"]:
        assert_shape(resource, by_type[resource["type"]])


def test_geckoterminal_trending_pools(client, market):
    body = get(client, "/geckoterminal/api/v2/networks/trending_pools", include="base_token,quote_token,dex,network")
    reference = sample("geckoterminal.trending_pools.all.json")
    assert_shape(body["data"], reference["data"])
    _assert_included(body, reference)
    assert {r["type"] for r in body["included"]} == {"token", "dex", "network"}
    ids = {r["id"] for r in body["included"]}
    for pool in body["data"]:
        assert pool["relationships"]["base_token"]["data"]["id"] in ids

    eth = get(client, "/geckoterminal/api/v2/networks/eth/trending_pools", include="base_token,quote_token,dex")
    assert_shape(eth["data"], sample("geckoterminal.trending_pools.network.json")["data"])
    assert eth["data"] and all(p["id"].startswith("eth_0x") and p["id"] == p["id"].lower() for p in eth["data"])
    assert get(client, "/geckoterminal/api/v2/networks/ethereum/trending_pools", 404)["errors"]


def test_geckoterminal_tokens_multi_and_simple_price(client, market):
    universe = market.universe
    tokens = [t for t in universe.trending() if t.chain == "solana"][:3]
    mints = ",".join([t.address for t in tokens] + ["UnknownMint1111111111111111111111111111111"])
    body = get(client, f"/geckoterminal/api/v2/networks/solana/tokens/multi/{mints}", include="top_pools")
    reference = sample("geckoterminal.tokens_multi.solana.json")
    assert_shape(body["data"], reference["data"][:1])
    assert_shape(body["included"], reference["included"])
    assert [d["attributes"]["address"] for d in body["data"]] == [t.address for t in tokens]
    for token, resource in zip(tokens, body["data"], strict=True):
        assert Decimal(resource["attributes"]["price_usd"]) == universe.price_usd(token, FROZEN_AT)
        assert resource["relationships"]["top_pools"]["data"][0]["id"] == f"solana_{main_pool(universe, token).address}"
    unlisted = [r for t, r in zip(tokens, body["data"], strict=True) if t.coingecko_id is None]
    assert unlisted and all(r["attributes"]["market_cap_usd"] is None for r in unlisted)

    weth = universe.get("WETH")
    price = get(
        client,
        f"/geckoterminal/api/v2/simple/networks/eth/token_price/{weth.address}",
        include_market_cap="true",
        include_24hr_vol="true",
        include_24hr_price_change="true",
        include_total_reserve_in_usd="true",
    )
    assert_shape(price, sample("geckoterminal.simple_token_price.eth.json"))
    assert Decimal(price["data"]["attributes"]["token_prices"][weth.address.lower()]) == universe.price_usd(
        weth, FROZEN_AT
    )
    many = ",".join(t.address for t in universe.tokens if t.chain == "ethereum")
    assert client.get(f"/geckoterminal/api/v2/simple/networks/eth/token_price/{many}").status_code == 400


# --- GoPlus ------------------------------------------------------------------------------------------


def test_goplus_evm_security(client, market):
    reference = sample("goplus.token_security.eth_weth.json")
    body = get(
        client,
        "/goplus/api/v1/token_security/1",
        contract_addresses="0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2,0x0000000000000000000000000000000000000bad",
    )
    assert_shape(body, reference)
    assert list(body["result"]) == ["0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"], "unknown addresses are left out"
    assert body["result"]["0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"]["trust_list"] == "1"

    verdicts = {}
    for token in (t for t in market.universe.trending() if t.chain != "solana"):
        chain_id = {"ethereum": "1", "bsc": "56", "base": "8453", "arbitrum": "42161"}[token.chain]
        entry = get(client, f"/goplus/api/v1/token_security/{chain_id}", contract_addresses=token.address)["result"]
        verdicts[token.risk] = entry[token.address.lower()]
    assert verdicts["honeypot"]["is_honeypot"] == "1"
    assert (verdicts["high_tax"]["buy_tax"], verdicts["high_tax"]["sell_tax"]) == ("0.1", "0.1")
    assert verdicts["mintable"]["is_mintable"] == "1"
    assert verdicts["proxy"]["is_proxy"] == "1"
    assert verdicts["closed_source"]["is_open_source"] == "0" and "is_honeypot" not in verdicts["closed_source"]
    clean = verdicts["clean"]
    assert clean["is_honeypot"] == "0" and clean["lp_holders"] and clean["holders"]
    assert get(client, "/goplus/api/v1/token_security/999", contract_addresses="0x1")["code"] == 2018


def test_goplus_solana_security_is_keyed_by_the_exact_mint(client, market):
    usdc = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
    body = get(client, "/goplus/api/v1/solana/token_security", contract_addresses=usdc)
    assert (body["code"], body["message"]) == (1, "OK")
    assert_shape(body["result"][usdc], sample("goplus.solana_token_security.usdc.result_entry.json"))
    assert get(client, "/goplus/api/v1/solana/token_security", contract_addresses=usdc.lower())["result"] == {}
    risky = next(t for t in market.universe.trending() if t.risk == "sol_mintable")
    entry = get(client, "/goplus/api/v1/solana/token_security", contract_addresses=risky.address)["result"][
        risky.address
    ]
    assert entry["mintable"]["status"] == "1" and entry["trusted_token"] == 0


# --- across APIs -------------------------------------------------------------------------------------


def test_every_api_quotes_one_consistent_price_that_moves(client, market):
    universe = market.universe
    pepe = universe.get("ethereum:0x6982508145454ce325ddbe47a25d4ec3d2311933")
    quotes = []
    for _ in range(2):
        binance = Decimal(get(client, "/binance/api/v3/ticker/price", symbol="PEPEUSDT")["price"])
        tether = get(client, "/coingecko/api/v3/simple/price", ids="tether", vs_currencies="usd")["tether"]["usd"]
        gecko = get(client, "/coingecko/api/v3/simple/price", ids="pepe", vs_currencies="usd")["pepe"]["usd"]
        dex = get(client, f"/dexscreener/tokens/v1/ethereum/{pepe.address}")
        dex_usd = Decimal(max(dex, key=lambda p: p["liquidity"]["usd"])["priceUsd"])
        terminal = get(client, f"/geckoterminal/api/v2/networks/eth/tokens/multi/{pepe.address}")
        terminal_usd = Decimal(terminal["data"][0]["attributes"]["price_usd"])
        assert binance == gecko / tether == dex_usd / tether == terminal_usd / tether
        assert binance == universe.price_usdt(pepe, market.clock.now())
        quotes.append(binance)
        market.clock.advance(3600)
    assert quotes[0] != quotes[1]


def test_pool_order_is_not_always_deepest_first(market):
    universe = market.universe
    assert any(pools_of(universe, t)[0] is not main_pool(universe, t) for t in universe.trending())
