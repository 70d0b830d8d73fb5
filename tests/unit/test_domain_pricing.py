"""USDT pricing: exact USD->USDT conversion, direct USDT pools, top-100 source choice."""

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from shared.crawler.domain.pricing import (
    choose_top100_sources,
    price_sources,
    price_usdt_direct,
    quote_from_pool,
    quote_from_usd,
    usd_to_usdt,
)
from shared.crawler.models import Pool, PriceQuote, TokenFailure, TokenProfile

NOW = datetime(2025, 6, 25, 21, 0, 5, tzinfo=timezone.utc)
USDT_ETH = "0xdac17f958d2ee523a2206206994597c13d831ec7"
USDC_ETH = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"


def test_conversion_divides_by_the_rate():
    assert usd_to_usdt(Decimal("2"), Decimal("1.0003")) == Decimal("1.999400179946016195141457562731180645806")
    assert usd_to_usdt(Decimal("2701.37"), Decimal("1")) == Decimal("2701.37")


def test_conversion_keeps_at_least_40_significant_digits():
    result = usd_to_usdt(Decimal("0.000000000012345"), Decimal("0.9987"))
    assert len(result.as_tuple().digits) == 40
    assert abs(result * Decimal("0.9987") - Decimal("0.000000000012345")) < Decimal("1e-50")
    long_price = Decimal("2.01740501818281139006336492319318380811954562178395002842369476")
    assert usd_to_usdt(long_price, Decimal(1)) == long_price  # no input digit rounded away


@pytest.mark.parametrize("rate", [None, Decimal(0), Decimal("-1"), "abc"])
def test_conversion_never_assumes_a_rate(rate):
    with pytest.raises(ValueError, match="rate"):
        usd_to_usdt(Decimal(1), rate)


def test_conversion_refuses_non_positive_prices_and_floats():
    with pytest.raises(ValueError, match="price"):
        usd_to_usdt(Decimal(0), Decimal(1))
    with pytest.raises(TypeError):
        usd_to_usdt(1.5, Decimal(1))


def pool(quote_address, price_native="2701.5", price_usd="2701.37", chain="ethereum"):
    return Pool(
        chain,
        "uniswap",
        "0x" + "1" * 40,
        "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2",
        "USDT",
        quote_address,
        Decimal(price_usd) if price_usd else None,
        Decimal(price_native) if price_native else None,
        Decimal(1000),
        None,
        None,
        None,
    )


def test_direct_usdt_price_only_for_the_real_usdt_contract():
    assert price_usdt_direct(pool(USDT_ETH)) == Decimal("2701.5")
    assert price_usdt_direct(pool(USDC_ETH)) is None
    assert price_usdt_direct(pool("0x" + "9" * 40)) is None  # a fake "USDT" by symbol only
    assert price_usdt_direct(pool(USDT_ETH, price_native=None)) is None
    assert price_usdt_direct(pool(USDT_ETH, chain="base")) is None  # no known USDT on base


def test_quote_from_pool_prefers_direct_then_converts():
    direct = quote_from_pool("k", "WETH", pool(USDT_ETH), Decimal("1.001"), "dexscreener", NOW)
    assert isinstance(direct, PriceQuote) and direct.price_usdt == Decimal("2701.5")
    converted = quote_from_pool("k", "WETH", pool(USDC_ETH), Decimal("1.001"), "dexscreener", NOW)
    assert converted.price_usdt == usd_to_usdt(Decimal("2701.37"), Decimal("1.001"))
    no_rate = quote_from_pool("k", "WETH", pool(USDC_ETH), None, "dexscreener", NOW)
    assert isinstance(no_rate, TokenFailure) and "USDT/USD rate" in no_rate.reason
    no_price = quote_from_pool("k", "WETH", pool(USDC_ETH, price_usd=None), Decimal(1), "dexscreener", NOW)
    assert isinstance(no_price, TokenFailure)


def test_quote_from_usd():
    quote = quote_from_usd("native:bitcoin", "BTC", Decimal("76975"), Decimal("1.0005"), "coingecko", NOW)
    assert quote.price_usdt == usd_to_usdt(Decimal("76975"), Decimal("1.0005")) and quote.observed_at == NOW
    assert isinstance(quote_from_usd("k", "X", Decimal(0), Decimal(1), "coingecko", NOW), TokenFailure)


def profile(key, symbol, chain=None, address=None, coingecko_id=None):
    return TokenProfile(key, symbol, None, chain, address, coingecko_id=coingecko_id)


def test_top100_sources_binance_then_dexscreener_then_coingecko():
    btc = profile("native:bitcoin", "BTC", coingecko_id="bitcoin")
    link = profile(
        "ethereum:0x514910771af9ca656af840dff83e8264ecf986ca",
        "LINK",
        "ethereum",
        "0x514910771af9ca656af840dff83e8264ecf986ca",
        "chainlink",
    )
    xyz = profile("ethereum:0x" + "5" * 40, "XYZ", "ethereum", "0x" + "5" * 40, "xyz")
    kas = profile("native:kaspa", "KAS", coingecko_id="kaspa")
    lost = profile("native:lost", "LOST")
    dup_btc = profile("native:other-btc", "btc", coingecko_id="other-btc")
    bases = {"BTC", "LINK"}
    assert price_sources(link, bases) == ("binance", "dexscreener", "coingecko")
    plan, failures = choose_top100_sources([btc, link, xyz, kas, lost, dup_btc], bases)
    assert plan.binance == {"BTCUSDT": btc, "LINKUSDT": link}
    assert plan.dexscreener == (xyz,)
    assert plan.coingecko == (kas, dup_btc)  # the second "BTC" is not Binance's BTC
    assert [f.ref for f in failures] == ["native:lost"]
