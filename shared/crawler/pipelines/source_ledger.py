"""What one job learns about its upstream sources, and which pool prices a token.

`SourceLedger` collects, for one job (top-100 prices, trending, audit), every source error
and every reason a token was not crawled, so that:

- a source that failed in a way that is not about one request (rate limited, 5xx, timeout,
  open circuit: a *retryable* error) is skipped for the rest of the job — asking DexScreener
  for prices right after its boosts answered 429 only spends budget and time;
- a token nobody could crawl gets one failure naming every source's reason;
- when nothing could be done because sources failed, the job raises the error that tells
  the delivery policy the most: a rate limit (429, retry later) before any other retryable
  error (503).

`LazyUsdtRate` is the USDT/USD rate of one job: asked for only when a USD price needs
converting, at most once, its failure recorded in the ledger.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from decimal import Decimal

from shared.crawler.domain.pools import select_main_pool
from shared.crawler.domain.pricing import price_usdt_direct
from shared.crawler.domain.sources import Source
from shared.crawler.models import Pool, TokenFailure
from shared.errors import CrawlerError, RateLimited

log = logging.getLogger(__name__)


class SourceLedger:
    """Source errors and per-token reasons of one job (not thread-safe: one job, one thread)."""

    def __init__(self) -> None:
        self.reasons: dict[str, list[str]] = defaultdict(list)
        self.errors: list[CrawlerError] = []
        self._down: dict[str, CrawlerError] = {}

    def source_failed(self, source: str, exc: CrawlerError, keys: Iterable[str] = ()) -> None:
        """Record a failed request; a retryable failure takes the source out for this job."""
        log.warning("%s failed: %s", source, exc)
        self.errors.append(exc)
        if exc.retryable:
            self._down.setdefault(source, exc)
        for key in keys:
            self.reasons[key].append(str(exc))

    def is_down(self, source: str) -> bool:
        """Whether an earlier request of this job found the source unavailable."""
        return source in self._down

    def skipped(self, source: str, keys: Iterable[str]) -> None:
        """Note that `keys` were not asked of `source` because it is down for this job."""
        reason = f"{source}: skipped, unavailable in this job ({self._down[source]})"
        for key in keys:
            self.reasons[key].append(reason)

    def token_failed(self, key: str, reason: str) -> None:
        """A reason this source could not give this token (no pair, no price, ...)."""
        self.reasons[key].append(reason)

    def failure(self, key: str) -> TokenFailure:
        """The token's failure with every source's reason, in the order they were tried."""
        return TokenFailure(key, "; ".join(dict.fromkeys(self.reasons.get(key, ()))) or "no source could crawl it")

    def retryable_error(self) -> CrawlerError | None:
        """The error to raise when nothing could be done: a rate limit first, else another retryable one."""
        limited: list[CrawlerError] = [e for e in self.errors if isinstance(e, RateLimited)]
        retryable = [e for e in self.errors if e.retryable]
        first = limited or retryable
        return first[0] if first else None


class LazyUsdtRate:
    """The USDT/USD rate of one job: fetched once, and only if a USD price needs converting."""

    def __init__(self, fetch: Callable[[], Decimal], ledger: SourceLedger):
        self._fetch = fetch
        self._ledger = ledger
        self._fetched = False
        self._rate: Decimal | None = None

    def get(self) -> Decimal | None:
        """The rate, or None when it could not be had (USD prices then stay unconverted: never a guess)."""
        if not self._fetched:
            self._fetched = True
            try:
                self._rate = self._fetch()
            except CrawlerError as exc:
                self._ledger.source_failed(Source.COINGECKO.value, exc)
        return self._rate


def pricing_pool(markets: Iterable[Pool]) -> Pool | None:
    """The pool a token's price is read from: its most liquid pool that has a price.

    A pool counts when it has a USD price, or a direct USDT price (quoted in the chain's USDT
    contract). A pool with **zero** liquidity never prices a token, even when it is the only
    one: an abandoned pair quotes a stale, far-off price, and no price beats a wrong one.
    Unknown liquidity (the key is missing) is allowed, ranked below any positive liquidity.
    """
    usable = [
        pool
        for pool in markets
        if (pool.price_usd is not None or price_usdt_direct(pool) is not None) and pool.liquidity_usd != 0
    ]
    return select_main_pool(usable)
