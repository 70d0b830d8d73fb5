"""The overview in PostgreSQL (migration 0014): history, the latest, and the one last published.

`record_overview` decides and records in one transaction under the latest row's lock, as the
chain and bridge stores do, so two replicas handling one tick never both publish.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from shared.db.connection import Connection

from .overview import overview_changes


def record_overview(
    conn: Connection, overview: dict[str, Any], observed_ms: int, volume_relative: Decimal, retention_days: int
) -> list[str]:
    """Store `overview`; return what changed since the last published one (empty: publish nothing)."""
    observed_at = datetime.fromtimestamp(observed_ms / 1000, UTC)
    document = json.dumps(overview)
    conn.run("START TRANSACTION")
    try:
        rows = conn.run("SELECT published_overview FROM stats_overview_latest FOR UPDATE")
        previous = rows[0][0] if rows else None
        if isinstance(previous, str):
            previous = json.loads(previous)
        found = overview_changes(previous, overview, volume_relative)
        conn.run(
            "INSERT INTO stats_overview (observed_at, overview, published)"
            " VALUES (CAST(:at AS timestamptz), CAST(:doc AS jsonb), :published) ON CONFLICT (observed_at) DO NOTHING",
            at=observed_at,
            doc=document,
            published=bool(found),
        )
        conn.run(
            "INSERT INTO stats_overview_latest (singleton, observed_at, overview, published_overview, published_at)"
            " VALUES (true, CAST(:at AS timestamptz), CAST(:doc AS jsonb), CAST(:pub AS jsonb),"
            " CASE WHEN CAST(:pub AS jsonb) IS NULL THEN NULL ELSE CAST(:at AS timestamptz) END)"
            " ON CONFLICT (singleton) DO UPDATE SET observed_at = EXCLUDED.observed_at, overview = EXCLUDED.overview,"
            " published_overview = COALESCE(EXCLUDED.published_overview, stats_overview_latest.published_overview),"
            " published_at = COALESCE(EXCLUDED.published_at, stats_overview_latest.published_at)"
            " WHERE stats_overview_latest.observed_at <= EXCLUDED.observed_at",
            at=observed_at,
            doc=document,
            pub=document if found else None,
        )
        conn.run(
            "DELETE FROM stats_overview WHERE observed_at < now() - make_interval(days => :days)", days=retention_days
        )
        conn.run("COMMIT")
    except BaseException:
        conn.run("ROLLBACK")
        raise
    return found


def latest_overview(conn: Connection) -> tuple[datetime, dict[str, Any], datetime | None] | None:
    """(observed_at, overview, published_at) of the latest overview, or None before the first."""
    rows = conn.run("SELECT observed_at, overview, published_at FROM stats_overview_latest")
    if not rows:
        return None
    at, document, published_at = rows[0]
    return at, json.loads(document) if isinstance(document, str) else document, published_at
