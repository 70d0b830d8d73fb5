"""Reads of the gold tables: candles, 24 h KPIs and volatility per token.

All three read `token_candles` by its primary key (token_key, resolution, bucket_start):
an index range per token, whatever the tick history holds. Prices stay `Decimal` as
stored (numeric without a scale); only derived statistics are computed numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from shared.db.connection import Connection

Conn = Connection  # what the pool lends: pg8000 with cached statement translation

# Mirrors `candle_resolutions()` (0003_gold_candles.sql), so parameters can be
# validated without a round trip; tests/integration/test_candles_gold.py checks they agree.
RESOLUTIONS: dict[str, timedelta] = {"1m": timedelta(minutes=1), "1h": timedelta(hours=1), "1d": timedelta(days=1)}
# Buckets are aligned on this instant (UTC midnight), like the upsert in store.insert_prices.
BUCKET_ORIGIN = "TIMESTAMPTZ '2000-01-01 00:00:00+00'"
PERCENT_QUANTUM = Decimal("0.0001")


def resolution_width(resolution: str) -> timedelta:
    """The bucket width of a resolution ("1m", "1h", "1d"); ValueError for any other."""
    try:
        return RESOLUTIONS[resolution]
    except KeyError:
        raise ValueError(f"unknown resolution {resolution!r}: expected one of {', '.join(RESOLUTIONS)}") from None


@dataclass(frozen=True, slots=True)
class Candle:
    """One OHLC bucket: open/close are the prices of the earliest/latest tick in it."""

    token_key: str
    resolution: str
    bucket_start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    open_at: datetime
    close_at: datetime
    ticks: int


def candles(
    conn: Conn,
    token_key: str,
    resolution: str,
    *,
    start: datetime,
    end: datetime,
    after: datetime | None = None,
    limit: int = 200,
) -> list[Candle]:
    """Candles with `start <= bucket_start < end` (and `> after`, for paging), oldest first."""
    resolution_width(resolution)
    rows = conn.run(
        "SELECT token_key, resolution, bucket_start, open, high, low, close, open_at, close_at, ticks"
        " FROM token_candles WHERE token_key = :k AND resolution = :r"
        " AND bucket_start >= :start AND bucket_start < :end"
        " AND (CAST(:after AS timestamptz) IS NULL OR bucket_start > CAST(:after AS timestamptz))"
        " ORDER BY bucket_start LIMIT :limit",
        k=token_key,
        r=resolution,
        start=start,
        end=end,
        after=after,
        limit=limit,
    )
    return [Candle(*row) for row in rows]


@dataclass(frozen=True, slots=True)
class Kpis:
    """A token's latest price and its last 24 hours.

    The window starts at the beginning of the minute 24 h before `as_of`; `open_24h` is the
    price of the first tick in it. Fields of the window are None when no tick fell in it.
    """

    token_key: str
    price_usdt: Decimal
    observed_at: datetime
    as_of: datetime
    window_start: datetime
    open_24h: Decimal | None
    open_24h_at: datetime | None
    high_24h: Decimal | None
    low_24h: Decimal | None
    ticks_24h: int

    @property
    def change_24h(self) -> Decimal | None:
        """Latest price minus the window's first price (exact)."""
        return None if self.open_24h is None else self.price_usdt - self.open_24h

    @property
    def change_pct_24h(self) -> Decimal | None:
        """The change in percent of the first price, to 4 decimal places."""
        change = self.change_24h
        if change is None or not self.open_24h:
            return None
        return (change * 100 / self.open_24h).quantize(PERCENT_QUANTUM, rounding=ROUND_HALF_EVEN)


def kpis(conn: Conn, token_keys: Sequence[str]) -> dict[str, Kpis]:
    """KPIs of the tokens that have a price (others are absent from the result).

    The window is read from at most ~60 minute candles (its first, partial hour) plus
    ~24 hour candles (the rest, the current hour included, which is kept up to date).
    """
    if not token_keys:
        return {}
    rows = conn.run(
        f"""
        WITH w AS (
            SELECT now() AS as_of, date_bin('1 minute', now() - interval '24 hours', {BUCKET_ORIGIN}) AS ws
        ), h AS (
            SELECT as_of, ws, CASE WHEN date_bin('1 hour', ws, {BUCKET_ORIGIN}) = ws THEN ws
                                   ELSE date_bin('1 hour', ws, {BUCKET_ORIGIN}) + interval '1 hour' END AS whole_hours
            FROM w
        )
        SELECT k.key, l.price_usdt, l.observed_at, h.as_of, h.ws, g.open, g.open_at, g.high, g.low,
               COALESCE(g.ticks, 0)
        FROM unnest(CAST(:keys AS text[])) AS k(key)
        CROSS JOIN h
        JOIN token_latest_prices l ON l.token_key = k.key
        LEFT JOIN LATERAL (
            SELECT (array_agg(c.open ORDER BY c.open_at))[1] AS open, min(c.open_at) AS open_at,
                   max(c.high) AS high, min(c.low) AS low, sum(c.ticks) AS ticks
            FROM (
                SELECT open, open_at, high, low, ticks FROM token_candles
                WHERE token_key = k.key AND resolution = '1m' AND bucket_start >= h.ws
                  AND bucket_start < h.whole_hours
                UNION ALL
                SELECT open, open_at, high, low, ticks FROM token_candles
                WHERE token_key = k.key AND resolution = '1h' AND bucket_start >= h.whole_hours
            ) c
        ) g ON true
        """,
        keys=list(dict.fromkeys(token_keys)),
    )
    return {r[0]: Kpis(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], int(r[9])) for r in rows}


@dataclass(frozen=True, slots=True)
class Volatility:
    """Dispersion of a token's candle closes over the last `periods` buckets.

    `stddev` is the sample standard deviation of the closes (USDT), `relative` that
    divided by their mean (coefficient of variation), `returns_stddev` the sample standard
    deviation of the simple returns between consecutive candles present in the window
    (close / previous close - 1). Fewer than two candles: None.
    """

    token_key: str
    resolution: str
    periods: int
    window_start: datetime
    as_of: datetime
    samples: int
    mean: Decimal | None
    stddev: Decimal | None
    relative: Decimal | None
    returns_stddev: Decimal | None


def volatility(conn: Conn, token_key: str, resolution: str, periods: int) -> Volatility:
    """Volatility over the current bucket and the `periods - 1` before it."""
    resolution_width(resolution)
    if periods < 2:
        raise ValueError("periods must be at least 2")
    row = conn.run(
        f"""
        WITH b AS (
            SELECT now() AS as_of,
                   date_bin(r.width, now(), {BUCKET_ORIGIN}) - (CAST(:n AS integer) - 1) * r.width AS ws
            FROM candle_resolutions() r WHERE r.resolution = :r
        ), series AS (
            SELECT c.close, c.close / lag(c.close) OVER (ORDER BY c.bucket_start) - 1 AS ret
            FROM token_candles c, b
            WHERE c.token_key = :k AND c.resolution = :r AND c.bucket_start >= b.ws
        )
        SELECT b.ws, b.as_of, count(s.close), avg(s.close), stddev_samp(s.close),
               stddev_samp(s.close) / NULLIF(avg(s.close), 0), stddev_samp(s.ret)
        FROM b LEFT JOIN series s ON true
        GROUP BY b.ws, b.as_of
        """,
        k=token_key,
        r=resolution,
        n=periods,
    )[0]
    samples = int(row[2])
    enough = samples >= 2
    return Volatility(
        token_key,
        resolution,
        periods,
        row[0],
        row[1],
        samples,
        mean=row[3] if samples else None,
        stddev=row[4] if enough else None,
        relative=row[5] if enough else None,
        returns_stddev=row[6] if samples >= 3 else None,
    )
