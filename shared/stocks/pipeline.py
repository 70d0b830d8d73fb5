"""One stock-quotes job: each symbol's Finnhub answer -> silver quote, no data, rejection or refusal.

Finnhub has no batch endpoint, so a job asks once per symbol inside the client's budget
(`shared.upstream.finnhub`). Per symbol, the outcome is one of:

- a new quote (`is_new_quote` against silver's latest): inserted, returned for publishing;
- a repeat (the frozen `t` outside market hours): nothing written;
- no data (Finnhub's all-zero answer); a rejection (logged with its reason);
- not covered (HTTP 403): permanent for that symbol, the job goes on with the others.

A rate limit or an outage (`RetryableUpstreamError`) is raised: the job is retried whole,
and the quotes already stored are repeats then, never duplicates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from shared.errors import PermanentUpstreamError
from shared.events import OutboundEvent
from shared.stocks.events import quote_event
from shared.stocks.models import NoQuoteData, QuoteRejected, StockQuote
from shared.stocks.normalize_finnhub import QuoteRules, is_new_quote, normalise_quote
from shared.stocks.store import insert_quotes, latest_quote, record_rejections
from shared.upstream.finnhub import FinnhubClient, is_not_covered


@dataclass
class StockJobOutcome:
    """What one job did, per symbol."""

    new: list[StockQuote] = field(default_factory=list)
    repeats: list[str] = field(default_factory=list)
    no_data: list[str] = field(default_factory=list)
    rejected: list[QuoteRejected] = field(default_factory=list)
    not_covered: list[str] = field(default_factory=list)


def run_stock_quotes(
    symbols: Sequence[str],
    client: FinnhubClient,
    transaction: Callable[[], Any],
    *,
    rules: QuoteRules | None = None,
    job_id: str | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    publish: Callable[[list[OutboundEvent]], None] | None = None,
) -> StockJobOutcome:
    """Fetch, judge and store one quote per symbol (module docstring).

    `transaction()` is a context manager giving a connection (`ConnectionPool.transaction`).
    `publish` (e.g. `EventProducer.publish` on `stock-quotes`) gets the events of the new
    quotes once silver committed them; its failure raises, so the job is retried (the events
    then carry the same ids).
    """
    outcome = StockJobOutcome()
    fetched_at = clock()
    for symbol in symbols:
        try:
            body = client.quote(symbol)
        except PermanentUpstreamError as error:
            if not is_not_covered(error):
                raise
            outcome.not_covered.append(symbol)
            continue
        fetched_at = clock()
        judged = normalise_quote(symbol, body, fetched_at, rules)
        if isinstance(judged, NoQuoteData):
            outcome.no_data.append(judged.symbol)
        elif isinstance(judged, QuoteRejected):
            outcome.rejected.append(judged)
        else:
            with transaction() as conn:
                if is_new_quote(judged, latest_quote(conn, judged.symbol)) and insert_quotes(conn, [judged]):
                    outcome.new.append(judged)
                else:
                    outcome.repeats.append(judged.symbol)
    if outcome.rejected:
        with transaction() as conn:
            record_rejections(conn, outcome.rejected, fetched_at, job_id)
    if publish is not None and outcome.new:
        publish([quote_event(quote) for quote in outcome.new])
    return outcome
