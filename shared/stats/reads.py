"""Read models of the stats: the latest reading per chain (migration 0010) and its history.

Used by the read routes beside the quotes API (`/v1/stats/...`, shared/crawler/quotes/stats_routes.py)
and by `make status`. Decimals come back as stored (exact `Decimal`), times as aware UTC.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from shared.db.connection import Connection

_CHAIN_COLUMNS = (
    "chain, observed_at, health, reasons, head_number, head_age_seconds, block_time_seconds,"
    " max_block_interval_seconds, gas_used_ratio, base_fee_gwei, urls, anomaly"
)


@dataclass(frozen=True)
class ChainStat:
    """One stored reading of a chain (the latest, or one of its history)."""

    chain: str
    observed_at: datetime
    health: str
    reasons: tuple[str, ...]
    head_number: int | None
    head_age_seconds: Decimal | None
    block_time_seconds: Decimal | None
    max_block_interval_seconds: Decimal | None
    gas_used_ratio: Decimal | None
    base_fee_gwei: Decimal | None
    urls: tuple[dict[str, Any], ...]
    anomaly: str | None
    published_at: datetime | None = None


def _chain_stat(row: Any, published_at: datetime | None = None) -> ChainStat:
    urls = row[10] if not isinstance(row[10], str) else json.loads(row[10])
    return ChainStat(
        chain=row[0],
        observed_at=row[1],
        health=row[2],
        reasons=tuple(row[3] or ()),
        head_number=row[4],
        head_age_seconds=row[5],
        block_time_seconds=row[6],
        max_block_interval_seconds=row[7],
        gas_used_ratio=row[8],
        base_fee_gwei=row[9],
        urls=tuple(urls or ()),
        anomaly=row[11],
        published_at=published_at,
    )


def latest_chain_stats(conn: Connection) -> list[ChainStat]:
    """The latest reading of every chain ever read, by chain name."""
    rows = conn.run(f"SELECT {_CHAIN_COLUMNS}, published_at FROM chain_stats_latest ORDER BY chain")
    return [_chain_stat(row, row[12]) for row in rows]


def chain_history(
    conn: Connection, chain: str, *, start: datetime, end: datetime, before: datetime | None, limit: int
) -> list[ChainStat]:
    """Readings of `chain` in [start, end), newest first, older than `before` when given (paging)."""
    rows = conn.run(
        f"SELECT {_CHAIN_COLUMNS} FROM chain_stats WHERE chain = :chain"
        " AND observed_at >= CAST(:start AS timestamptz) AND observed_at < CAST(:end AS timestamptz)"
        " AND (CAST(:before AS timestamptz) IS NULL OR observed_at < CAST(:before AS timestamptz))"
        " ORDER BY observed_at DESC LIMIT :limit",
        chain=chain,
        start=start,
        end=end,
        before=before,
        limit=limit,
    )
    return [_chain_stat(row) for row in rows]


# The window of each RPC URL's error rate and mean latency on /v1/stats/chains.
URL_HEALTH_WINDOW = timedelta(hours=1)
RATE_PLACES = Decimal("0.0001")


@dataclass(frozen=True)
class UrlHealth:
    """How one RPC URL of a chain fared over the readings of a window."""

    url: str
    readings: int
    errors: int  # readings where the URL failed (status `error`): transport, HTTP or JSON-RPC errors
    mean_latency_seconds: Decimal | None

    @property
    def error_rate(self) -> Decimal:
        """errors / readings, exact to four places (half-even)."""
        return (Decimal(self.errors) / Decimal(self.readings)).quantize(RATE_PLACES)


def url_health(conn: Connection, since: datetime) -> dict[str, list[UrlHealth]]:
    """Per chain, each RPC URL's readings, errors and mean latency since `since`, by URL."""
    rows = conn.run(
        "SELECT chain, u->>'url', count(*), count(*) FILTER (WHERE u->>'status' = 'error'),"
        " avg((u->>'latency_seconds')::numeric)"
        " FROM chain_stats, jsonb_array_elements(urls) AS u"
        " WHERE observed_at >= CAST(:since AS timestamptz) AND u ? 'url'"
        " GROUP BY 1, 2 ORDER BY 1, 2",
        since=since,
    )
    health: dict[str, list[UrlHealth]] = {}
    for chain, url, readings, errors, latency in rows:
        mean = None if latency is None else Decimal(latency).quantize(RATE_PLACES)
        health.setdefault(chain, []).append(UrlHealth(url, int(readings), int(errors), mean))
    return health


def known_chain(conn: Connection, chain: str) -> bool:
    """Whether `chain` has ever been read (it has a latest row)."""
    return bool(conn.run("SELECT 1 FROM chain_stats_latest WHERE chain = :chain", chain=chain))


@dataclass(frozen=True)
class BridgeStat:
    """The latest sample of one route from one provider."""

    route: str
    provider: str
    observed_at: datetime
    status: str
    response_seconds: Decimal
    output_amount: Decimal | None
    output_base_units: Decimal | None
    duration_seconds: Decimal | None
    fees_usd: Decimal | None
    tool: str | None
    detail: str
    published_at: datetime | None


def latest_bridge_stats(conn: Connection) -> list[BridgeStat]:
    """The latest sample of every (route, provider) ever sampled, by route then provider."""
    rows = conn.run(
        "SELECT route, provider, observed_at, status, response_seconds, output_amount, output_base_units,"
        " duration_seconds, fees_usd, tool, detail, published_at FROM bridge_stats_latest ORDER BY route, provider"
    )
    return [BridgeStat(*row) for row in rows]
