"""The plausibility screen every price batch passes before it is written (docs/pricing.md).

One rule for every token set: the pure `screen_prices` of `shared.crawler.domain.pricing`,
against each token's last stored price read in the batch's own transaction. Top-100 and
trending prices, live and replayed from bronze, all come here, so none can judge a price differently.
"""

from __future__ import annotations

import logging

from shared.config import Settings
from shared.crawler import store
from shared.crawler.domain.pricing import PlausibilityLimits, ReferencePrice, SuspectPrice, screen_prices
from shared.crawler.models import PriceQuote
from shared.observability import metrics

log = logging.getLogger(__name__)


def plausibility_limits(settings: Settings) -> PlausibilityLimits:
    """The plausibility thresholds the settings configure."""
    return PlausibilityLimits(
        max_jump_ratio=settings.price_max_jump_ratio,
        max_source_spread_ratio=settings.price_max_source_spread_ratio,
        same_tick_seconds=settings.price_same_tick_seconds,
        reference_max_age_seconds=settings.price_reference_max_age_seconds,
    )


def screen_against_stored(
    conn: store.Conn,
    quotes: list[PriceQuote],
    limits: PlausibilityLimits,
    token_set: str,
    *,
    historical: bool = False,
) -> tuple[list[PriceQuote], list[SuspectPrice]]:
    """Hold back the quotes implausible against each token's last stored price (one query for the batch).

    `quotes` carry their stored token keys: the reference is looked up by them. Each suspect
    is logged at WARNING and counted in `crawler_prices_suspect{token_set}`.

    `historical` (the bronze replay): the reference is the token's last stored price *before*
    each quote's observation, the one the live job judged it against. The latest price would
    be a later one (a replay runs hours or days after the fact), so a genuine move since then
    would hold back a price the live path rightly stored, and a later bad price would pass one.
    """
    if not quotes:
        return quotes, []
    if historical:
        stored = store.prices_before(
            conn, [(q.token_key, q.observed_at) for q in quotes], limits.reference_max_age_seconds
        )
    else:
        stored = store.last_prices(conn, [q.token_key for q in quotes])
    references = {key: ReferencePrice(p.price_usdt, p.source, p.observed_at) for key, p in stored.items()}
    plausible, suspects = screen_prices(quotes, references, limits)
    for suspect in suspects:
        log.warning("%s held back: %s", suspect.quote.token_key, suspect.reason)
    if suspects:
        metrics.count("crawler_prices_suspect", len(suspects), token_set=token_set)
    return plausible, suspects
