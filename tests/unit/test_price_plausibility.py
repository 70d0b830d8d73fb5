"""The plausibility rule (shared/crawler/domain/pricing.py, docs/pricing.md): pure, no I/O."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from shared.crawler.domain.pricing import PlausibilityLimits, ReferencePrice, implausibility, screen_prices
from shared.crawler.models import PriceQuote

NOW = datetime(2026, 12, 3, 8, 0, 0, tzinfo=timezone.utc)
LIMITS = PlausibilityLimits(
    max_jump_ratio=Decimal(10), max_source_spread_ratio=Decimal(3), same_tick_seconds=60, reference_max_age_seconds=900
)


def quote(price: str, source: str = "binance", at: datetime = NOW, key: str = "native:bitcoin") -> PriceQuote:
    return PriceQuote(key, "BTC", Decimal(price), source, at)


def last(price: str, source: str = "binance", seconds_before: float = 5) -> ReferencePrice:
    return ReferencePrice(Decimal(price), source, NOW - timedelta(seconds=seconds_before))


def test_a_price_within_an_order_of_magnitude_of_the_last_one_is_plausible():
    assert implausibility(quote("95000"), last("90000"), LIMITS) is None
    assert implausibility(quote("9.0001"), last("1", seconds_before=600), LIMITS) is None  # 9x, same source
    assert implausibility(quote("1"), None, LIMITS) is None  # a first price has nothing to disagree with


def test_a_jump_by_orders_of_magnitude_either_way_is_suspect_with_the_numbers():
    up = implausibility(quote("9000000"), last("90000"), LIMITS)
    down = implausibility(quote("0.0009"), last("90000"), LIMITS)
    assert up is not None and up.startswith("suspect price") and "100x" in up and "90000 USDT" in up
    assert down is not None and "1e+08x" in down


def test_sources_disagreeing_wildly_within_one_tick_is_suspect_even_below_the_jump_limit():
    reason = implausibility(quote("5", source="dexscreener"), last("1", source="coingecko", seconds_before=10), LIMITS)
    assert reason is not None and "coingecko said 1 USDT" in reason and "across sources" in reason
    # The same spread from the same source, or from another source long ago, is only a move.
    assert implausibility(quote("5"), last("1", seconds_before=10), LIMITS) is None
    assert (
        implausibility(quote("5", source="dexscreener"), last("1", source="coingecko", seconds_before=300), LIMITS)
        is None
    )


def test_a_reference_older_than_the_limit_lets_a_genuine_jump_through():
    assert implausibility(quote("1000"), last("1", seconds_before=901), LIMITS) is None


def test_screen_splits_plausible_from_suspect_in_order():
    quotes = [quote("100", key="a:1"), quote("100000", key="b:2"), quote("3", key="c:3")]
    references = {"a:1": last("99"), "b:2": last("100")}
    plausible, suspect = screen_prices(quotes, references, LIMITS)
    assert [q.token_key for q in plausible] == ["a:1", "c:3"]
    assert [s.quote.token_key for s in suspect] == ["b:2"] and "1e+03x" in suspect[0].reason
