"""The current USDT/USD rate, for converting USD-quoted prices (never assumed to be 1)."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

from shared.config import Settings
from shared.crawler.domain.normalize_coingecko import TETHER_ID, usdt_usd_rate
from shared.errors import RetryableUpstreamError
from shared.upstream import UpstreamClients

_lock = threading.Lock()
_fetch_lock = threading.Lock()
_cached: tuple[Decimal, float] | None = None


def current_usdt_usd_rate(settings: Settings, upstream: UpstreamClients) -> Decimal:
    """USD per 1 USDT: the configured override, else CoinGecko's tether price (cached briefly).

    Raises `RetryableUpstreamError` when no current rate can be had: a USD price is then
    not converted at all rather than converted with a guess.
    """
    global _cached
    if settings.usdt_usd_rate_override is not None:
        return settings.usdt_usd_rate_override
    if (rate := _fresh(settings)) is not None:
        return rate
    with _fetch_lock:  # one fetch per expiry: the jobs of a tick that all find it stale share it
        if (rate := _fresh(settings)) is not None:
            return rate
        rate = fetch_usdt_usd_rate(upstream)
        with _lock:
            _cached = (rate, time.monotonic())
        return rate


def _fresh(settings: Settings) -> Decimal | None:
    with _lock:
        if _cached and time.monotonic() - _cached[1] < settings.usdt_usd_max_age_seconds:
            return _cached[0]
    return None


def fetch_usdt_usd_rate(upstream: UpstreamClients) -> Decimal:
    """CoinGecko's tether price, asked now (no cache); `RetryableUpstreamError` when implausible."""
    rate = usdt_usd_rate(upstream.coingecko.simple_price([TETHER_ID]))
    if rate is None:
        raise RetryableUpstreamError("coingecko", "no plausible USDT/USD rate in /simple/price?ids=tether")
    return rate


def forget_cached_rate() -> None:
    """Drop the cached rate (tests)."""
    global _cached
    with _lock:
        _cached = None
