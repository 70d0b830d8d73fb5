"""The current USDT/USD rate, for converting USD-quoted prices (never assumed to be 1)."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

from shared.config import Settings
from shared.crawler.domain.normalize_coingecko import TETHER_ID, usdt_usd_rate
from shared.errors import RetryableUpstreamError
from shared.runtime.resources import Resources
from shared.upstream import UpstreamClients


class UsdtUsdRate:
    """USD per 1 USDT for one process: the configured override, else CoinGecko's tether price,
    kept for USDT_USD_MAX_AGE_SECONDS and fetched once per expiry however many jobs ask."""

    def __init__(self, settings: Settings, upstream: UpstreamClients):
        self._settings = settings
        self._upstream = upstream
        self._lock = threading.Lock()
        self._fetch_lock = threading.Lock()
        self._cached: tuple[Decimal, float] | None = None

    def current(self) -> Decimal:
        """The rate now; `RetryableUpstreamError` when no current rate can be had (a USD price is
        then not converted at all rather than converted with a guess)."""
        if self._settings.usdt_usd_rate_override is not None:
            return self._settings.usdt_usd_rate_override
        if (rate := self._fresh()) is not None:
            return rate
        with self._fetch_lock:  # the jobs of a tick that all find it stale share one fetch
            if (rate := self._fresh()) is not None:
                return rate
            rate = fetch_usdt_usd_rate(self._upstream)
            with self._lock:
                self._cached = (rate, time.monotonic())
            return rate

    def _fresh(self) -> Decimal | None:
        with self._lock:
            if self._cached and time.monotonic() - self._cached[1] < self._settings.usdt_usd_max_age_seconds:
                return self._cached[0]
        return None


def usdt_usd_rate_of(resources: Resources) -> UsdtUsdRate:
    """The process's rate cache, kept with its other resources."""
    return resources.once("usdt_usd_rate", lambda: UsdtUsdRate(resources.settings, resources.upstream))


def fetch_usdt_usd_rate(upstream: UpstreamClients) -> Decimal:
    """CoinGecko's tether price, asked now (no cache); `RetryableUpstreamError` when implausible."""
    rate = usdt_usd_rate(upstream.coingecko.simple_price([TETHER_ID]))
    if rate is None:
        raise RetryableUpstreamError("coingecko", "no plausible USDT/USD rate in /simple/price?ids=tether")
    return rate
