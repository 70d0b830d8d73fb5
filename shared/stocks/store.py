"""Every query on the stock system's silver tables (db/migrations/0011_stock_quotes.sql)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from shared.db.job_logs import record_job_outcome
from shared.stocks.models import QuoteRejected, StockQuote
from shared.wire import require_utc

_COLUMNS = (
    "symbol, instrument_key, currency, current_price, change, change_percent, day_high, day_low, "
    "day_open, previous_close, market_time, fetched_at"
)


def insert_quotes(conn: Any, quotes: Sequence[StockQuote]) -> list[StockQuote]:
    """Insert the quotes silver does not hold yet; return those inserted (the new ones).

    Deduplicated on (symbol, market_time): a quote already stored is left as it is.
    """
    inserted: list[StockQuote] = []
    for quote in quotes:
        rows = conn.run(
            f"INSERT INTO stock_quotes ({_COLUMNS}) VALUES (:symbol, :key, :currency, :c, :d, :dp, :h, :l, :o, :pc, "
            ":market_time, :fetched_at) ON CONFLICT (symbol, market_time) DO NOTHING RETURNING symbol",
            symbol=quote.symbol,
            key=quote.instrument_key,
            currency=quote.currency,
            c=quote.current_price,
            d=quote.change,
            dp=quote.change_percent,
            h=quote.day_high,
            l=quote.day_low,
            o=quote.day_open,
            pc=quote.previous_close,
            market_time=quote.market_time,
            fetched_at=quote.fetched_at,
        )
        if rows:
            inserted.append(quote)
    return inserted


def record_rejections(
    conn: Any, rejections: Sequence[QuoteRejected], fetched_at: datetime, job_id: str | None = None
) -> None:
    """Log each rejected answer with its reason."""
    fetched_at = require_utc(fetched_at, "fetched_at")
    for rejected in rejections:
        conn.run(
            "INSERT INTO stock_quote_rejections (symbol, reason, detail, job_id, fetched_at) "
            "VALUES (:symbol, :reason, :detail, :job_id, :fetched_at)",
            symbol=rejected.symbol,
            reason=rejected.reason.value,
            detail=rejected.detail[:500],
            job_id=job_id,
            fetched_at=fetched_at,
        )


def latest_quote(conn: Any, symbol: str) -> StockQuote | None:
    """The symbol's quote of the latest market time in silver (for `is_new_quote`), or None."""
    rows = conn.run(
        f"SELECT {_COLUMNS} FROM stock_quotes WHERE symbol = :symbol ORDER BY market_time DESC LIMIT 1",
        symbol=symbol,
    )
    if not rows:
        return None
    (symbol, key, currency, c, d, dp, h, low, o, pc, market_time, fetched_at) = rows[0]
    return StockQuote(key, symbol, c, d, dp, h, low, o, pc, market_time, fetched_at, currency)


def rejection_counts(conn: Any) -> dict[str, int]:
    """Rejected answers per reason."""
    return {
        reason: count
        for reason, count in conn.run("SELECT reason, count(*) FROM stock_quote_rejections GROUP BY reason")
    }


def record_job(
    conn: Any,
    *,
    job_id: str,
    job_type: str,
    status: str,
    message: str,
    requested: int,
    succeeded: int,
    failures: Sequence[tuple[str, str]],
    started_at: datetime,
    event_id: str | None = None,
) -> None:
    """One job_logs row for a stock job (a quote tick or a gold run), plus one row per failure
    (`token_ref` = the symbol or the dbt node, `message` = the reason)."""
    record_job_outcome(
        conn,
        job_id=job_id,
        job_type=job_type,
        system="stocks",
        status=status,
        message=message,
        requested=requested,
        succeeded=succeeded,
        failures=failures,
        started_at=started_at,
        event_id=event_id,
    )
