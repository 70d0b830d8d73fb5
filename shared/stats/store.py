"""Chain readings in PostgreSQL (migration 0010): history, latest per chain, last published.

`record_reading` decides and records in one transaction: it locks the chain's latest row,
compares the new reading with the one last published (`shared.stats.change`), writes the
history row and the latest row, and moves the published reading only when there is news.
The caller publishes the event when the answer is non-empty; two replicas handling the
same tick therefore never both publish one change.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from shared.db.connection import Connection

from .change import ChangeTolerances, PublishedReading, changes
from .collect import ChainReading
from .health import Health, head_age_seconds


def published_reading(reading: ChainReading) -> PublishedReading:
    """The part of `reading` an event carries and change is judged on."""
    performance = reading.performance
    return PublishedReading(
        health=reading.verdict.health,
        url_statuses=tuple(sorted((v.url, v.status.value) for v in reading.agreement.verdicts)),
        block_time_seconds=performance.block_time_seconds if performance else None,
        gas_used_ratio=performance.gas_used_ratio if performance else None,
        base_fee_gwei=performance.base_fee_gwei if performance else None,
    )


def _encode(published: PublishedReading) -> str:
    def text(value: Decimal | None) -> str | None:
        return None if value is None else str(value)

    return json.dumps(
        {
            "health": published.health.value,
            "url_statuses": [list(pair) for pair in published.url_statuses],
            "block_time_seconds": text(published.block_time_seconds),
            "gas_used_ratio": text(published.gas_used_ratio),
            "base_fee_gwei": text(published.base_fee_gwei),
        }
    )


def _decode(document: Any) -> PublishedReading | None:
    if document is None:
        return None
    doc = json.loads(document) if isinstance(document, str) else document

    def number(key: str) -> Decimal | None:
        return None if doc.get(key) is None else Decimal(doc[key])

    return PublishedReading(
        health=Health(doc["health"]),
        url_statuses=tuple((str(url), str(status)) for url, status in doc["url_statuses"]),
        block_time_seconds=number("block_time_seconds"),
        gas_used_ratio=number("gas_used_ratio"),
        base_fee_gwei=number("base_fee_gwei"),
    )


def record_reading(conn: Connection, reading: ChainReading, tolerances: ChangeTolerances) -> list[str]:
    """Store `reading`; return what changed since the last published reading (empty: publish nothing)."""
    current = published_reading(reading)
    observed_at = datetime.fromtimestamp(reading.observed_ms / 1000, UTC)
    performance = reading.performance
    urls = json.dumps(
        [
            {
                "url": v.url,
                "status": v.status.value,
                "head": v.head,
                "lag_blocks": v.lag_blocks,
                "latency_seconds": round(v.latency_seconds, 4),
                "detail": v.detail,
            }
            for v in reading.agreement.verdicts
        ]
    )
    values: dict[str, Any] = {
        "chain": reading.chain,
        "observed_at": observed_at,
        "health": current.health.value,
        "reasons": list(reading.verdict.reasons),
        "head_number": performance.head_number if performance else None,
        "head_age": head_age_seconds(performance, reading.observed_ms) if performance else None,
        "block_time": current.block_time_seconds,
        "max_interval": performance.max_block_interval_seconds if performance else None,
        "gas_ratio": current.gas_used_ratio,
        "base_fee": current.base_fee_gwei,
        "urls": urls,
        "anomaly": reading.anomaly,
    }
    conn.run("START TRANSACTION")
    try:
        rows = conn.run(
            "SELECT published_reading FROM chain_stats_latest WHERE chain = :chain FOR UPDATE", chain=reading.chain
        )
        found = changes(_decode(rows[0][0]) if rows else None, current, tolerances)
        published = _encode(current) if found else None
        conn.run(
            "INSERT INTO chain_stats (chain, observed_at, health, reasons, head_number, head_age_seconds,"
            " block_time_seconds, max_block_interval_seconds, gas_used_ratio, base_fee_gwei, urls, anomaly, published)"
            " VALUES (:chain, CAST(:observed_at AS timestamptz), :health, CAST(:reasons AS text[]), :head_number, :head_age, :block_time,"
            " :max_interval, :gas_ratio, :base_fee, CAST(:urls AS jsonb), :anomaly, :published)"
            " ON CONFLICT (chain, observed_at) DO NOTHING",
            published=bool(found),
            **values,
        )
        conn.run(
            "INSERT INTO chain_stats_latest (chain, observed_at, health, reasons, head_number, head_age_seconds,"
            " block_time_seconds, max_block_interval_seconds, gas_used_ratio, base_fee_gwei, urls, anomaly,"
            " published_reading, published_at)"
            " VALUES (:chain, CAST(:observed_at AS timestamptz), :health, CAST(:reasons AS text[]), :head_number, :head_age, :block_time,"
            " :max_interval, :gas_ratio, :base_fee, CAST(:urls AS jsonb), :anomaly, CAST(:published AS jsonb),"
            " CASE WHEN CAST(:published AS jsonb) IS NULL THEN NULL ELSE CAST(:observed_at AS timestamptz) END)"
            " ON CONFLICT (chain) DO UPDATE SET observed_at = EXCLUDED.observed_at, health = EXCLUDED.health,"
            " reasons = EXCLUDED.reasons, head_number = EXCLUDED.head_number,"
            " head_age_seconds = EXCLUDED.head_age_seconds, block_time_seconds = EXCLUDED.block_time_seconds,"
            " max_block_interval_seconds = EXCLUDED.max_block_interval_seconds,"
            " gas_used_ratio = EXCLUDED.gas_used_ratio, base_fee_gwei = EXCLUDED.base_fee_gwei,"
            " urls = EXCLUDED.urls, anomaly = EXCLUDED.anomaly,"
            " published_reading = COALESCE(EXCLUDED.published_reading, chain_stats_latest.published_reading),"
            " published_at = COALESCE(EXCLUDED.published_at, chain_stats_latest.published_at)"
            " WHERE chain_stats_latest.observed_at <= EXCLUDED.observed_at",
            published=published,
            **values,
        )
        conn.run("COMMIT")
    except BaseException:
        conn.run("ROLLBACK")
        raise
    return found
