"""Bridge samples in PostgreSQL (migration 0014), and whether a sample is news.

`record_sample` decides and records in one transaction, as `store.record_reading` does for
chains: it locks the (route, provider) latest row, compares the sample with the one last
published (`sample_changes`), writes history and latest, and moves the published sample only
when there is news. A `rate_limited` sample is recorded but never published and never
compared: it says nothing about the bridge, only that our budget was spent.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from shared.db.connection import Connection

from .bridges import BridgeStatus
from .sampling import RouteSample
from .settings import BridgeTolerances


def _published(sample: RouteSample) -> dict[str, Any]:
    estimate = sample.estimate

    def text(value: Decimal | None) -> str | None:
        return None if value is None else str(value)

    return {
        "status": sample.status.value,
        "output_amount": text(estimate.output_amount if estimate else None),
        "duration_seconds": text(estimate.duration_seconds if estimate else None),
        "fees_usd": text(estimate.fees_usd if estimate else None),
    }


def sample_changes(previous: dict[str, Any] | None, sample: RouteSample, tolerances: BridgeTolerances) -> list[str]:
    """What changed since the last published sample beyond tolerance (empty: no event)."""
    if sample.status is BridgeStatus.RATE_LIMITED:
        return []
    current = _published(sample)
    if previous is None:
        return ["first sample"]
    found = []
    if previous["status"] != current["status"]:
        found.append(f"status {previous['status']} -> {current['status']}")
    for key, tolerance, unit in (
        ("duration_seconds", tolerances.duration_relative, " s"),
        ("output_amount", tolerances.output_relative, ""),
        ("fees_usd", tolerances.fees_relative, " USD"),
    ):
        before, after = previous.get(key), current[key]
        if _moved(before, after, tolerance):
            found.append(f"{key.replace('_', ' ')} {before} -> {after}{unit}")
    return found


def _moved(before: str | None, after: str | None, tolerance: Decimal) -> bool:
    if before is None or after is None:
        return (before is None) != (after is None)
    old, new = Decimal(before), Decimal(after)
    if old == 0:
        return new != 0
    return abs(new - old) / abs(old) > tolerance


def record_sample(conn: Connection, sample: RouteSample, tolerances: BridgeTolerances) -> list[str]:
    """Store `sample`; return what changed since the last published one (empty: publish nothing)."""
    estimate = sample.estimate
    values: dict[str, Any] = {
        "route": sample.route,
        "provider": sample.provider,
        "observed_at": datetime.fromtimestamp(sample.observed_ms / 1000, UTC),
        "status": sample.status.value,
        "response_seconds": Decimal(str(round(sample.response_seconds, 4))),
        "output_amount": estimate.output_amount if estimate else None,
        "output_base_units": Decimal(estimate.output_base_units) if estimate else None,
        "duration_seconds": estimate.duration_seconds if estimate else None,
        "fees_usd": estimate.fees_usd if estimate else None,
        "tool": estimate.tool if estimate else None,
        "detail": sample.detail,
    }
    conn.run("START TRANSACTION")
    try:
        rows = conn.run(
            "SELECT published_sample FROM bridge_stats_latest WHERE route = :route AND provider = :provider FOR UPDATE",
            route=sample.route,
            provider=sample.provider,
        )
        previous = rows[0][0] if rows else None
        if isinstance(previous, str):
            previous = json.loads(previous)
        found = sample_changes(previous, sample, tolerances)
        published = json.dumps(_published(sample)) if found else None
        columns = (
            "route, provider, observed_at, status, response_seconds, output_amount, output_base_units,"
            " duration_seconds, fees_usd, tool, detail"
        )
        params = (
            ":route, :provider, CAST(:observed_at AS timestamptz), :status, :response_seconds, :output_amount,"
            " :output_base_units, :duration_seconds, :fees_usd, :tool, :detail"
        )
        conn.run(
            f"INSERT INTO bridge_stats ({columns}, published) VALUES ({params}, :published)"
            " ON CONFLICT (route, provider, observed_at) DO NOTHING",
            published=bool(found),
            **values,
        )
        conn.run(
            f"INSERT INTO bridge_stats_latest ({columns}, published_sample, published_at)"
            f" VALUES ({params}, CAST(:published_sample AS jsonb),"
            " CASE WHEN CAST(:published_sample AS jsonb) IS NULL THEN NULL ELSE CAST(:observed_at AS timestamptz) END)"
            " ON CONFLICT (route, provider) DO UPDATE SET observed_at = EXCLUDED.observed_at,"
            " status = EXCLUDED.status, response_seconds = EXCLUDED.response_seconds,"
            " output_amount = EXCLUDED.output_amount, output_base_units = EXCLUDED.output_base_units,"
            " duration_seconds = EXCLUDED.duration_seconds, fees_usd = EXCLUDED.fees_usd,"
            " tool = EXCLUDED.tool, detail = EXCLUDED.detail,"
            " published_sample = COALESCE(EXCLUDED.published_sample, bridge_stats_latest.published_sample),"
            " published_at = COALESCE(EXCLUDED.published_at, bridge_stats_latest.published_at)"
            " WHERE bridge_stats_latest.observed_at <= EXCLUDED.observed_at",
            published_sample=published,
            **values,
        )
        conn.run("COMMIT")
    except BaseException:
        conn.run("ROLLBACK")
        raise
    return found
