"""The stats read routes beside the quotes API (docs/openapi.yaml, "stats" tag): `/v1/stats/...`.

A block of its own so the quotes routes stay as they are; the read models are the stats
system's (shared/stats/reads.py). Decimals are strings as everywhere in the API.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from shared.crawler.quotes.api import MAX_PAGE_SIZE, ApiError, Query, QuotesApi, route, stat_text, time_text
from shared.stats import reads
from shared.stats.overview_store import latest_overview

DEFAULT_HISTORY_LIMIT = 60
DEFAULT_HISTORY_WINDOW = timedelta(hours=1)
CHAIN_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")  # docs/openapi.yaml ChainName


def chain_json(stat: reads.ChainStat) -> dict[str, Any]:
    """A chain's reading as the API shows it."""
    return {
        "chain": stat.chain,
        "health": stat.health,
        "reasons": list(stat.reasons),
        "observed_at": time_text(stat.observed_at),
        "head_number": stat.head_number,
        "head_age_seconds": stat_text(stat.head_age_seconds),
        "block_time_seconds": stat_text(stat.block_time_seconds),
        "max_block_interval_seconds": stat_text(stat.max_block_interval_seconds),
        "gas_used_ratio": stat_text(stat.gas_used_ratio),
        "base_fee_gwei": stat_text(stat.base_fee_gwei),
        "anomaly": stat.anomaly,
        "urls": [
            {
                "url": u.get("url"),
                "status": u.get("status"),
                "head": u.get("head"),
                "lag_blocks": u.get("lag_blocks"),
                "latency_seconds": None if u.get("latency_seconds") is None else str(u["latency_seconds"]),
                "detail": u.get("detail", ""),
            }
            for u in stat.urls
        ],
    }


def url_health_json(health: reads.UrlHealth) -> dict[str, Any]:
    """One RPC URL's error rate and mean latency over the window, as the API shows them."""
    return {
        "url": health.url,
        "readings": health.readings,
        "errors": health.errors,
        "error_rate": stat_text(health.error_rate),
        "mean_latency_seconds": stat_text(health.mean_latency_seconds),
    }


@route("stats_chains", "/stats/chains")
def _chains(api: QuotesApi, conn: Any, params: Query, _: list[str]) -> tuple[int, Any]:
    window = reads.URL_HEALTH_WINDOW
    per_url = reads.url_health(conn, datetime.now(timezone.utc) - window)
    return 200, {
        "chains": [
            {
                **chain_json(s),
                "published_at": time_text(s.published_at),
                "url_health": {
                    "window_seconds": int(window.total_seconds()),
                    "urls": [url_health_json(h) for h in per_url.get(s.chain, [])],
                },
            }
            for s in reads.latest_chain_stats(conn)
        ]
    }


@route("stats_chain_history", "/stats/chains/{ref}/history", params=("from", "to", "limit", "cursor"))
def _chain_history(api: QuotesApi, conn: Any, params: Query, segments: list[str]) -> tuple[int, Any]:
    limit = params.integer("limit", DEFAULT_HISTORY_LIMIT, 1, MAX_PAGE_SIZE)
    end = params.instant("to")
    start = params.instant("from")
    before = params.instant("cursor")
    chain = segments[0]
    if not CHAIN_NAME.fullmatch(chain):
        raise ApiError(400, "a chain name is 1 to 64 of a-z, 0-9, '_' and '-', opening with a letter or digit")
    if not reads.known_chain(conn, chain):
        raise ApiError(404, f"no reading of chain {chain!r} (GET /v1/stats/chains lists the chains)", chain=chain)
    if end is None:
        end = datetime.now(timezone.utc)
    if start is None:
        start = end - DEFAULT_HISTORY_WINDOW
    rows = reads.chain_history(conn, chain, start=start, end=end, before=before, limit=limit + 1) if start < end else []
    page, more = rows[:limit], len(rows) > limit
    return 200, {
        "chain": chain,
        "from": time_text(start),
        "to": time_text(end),
        "readings": [chain_json(s) for s in page],
        "next_cursor": time_text(page[-1].observed_at) if more else None,
    }


@route("stats_bridges", "/stats/bridges")
def _bridges(api: QuotesApi, conn: Any, params: Query, _: list[str]) -> tuple[int, Any]:
    items = []
    for s in reads.latest_bridge_stats(conn):
        items.append(
            {
                "route": s.route,
                "provider": s.provider,
                "status": s.status,
                "observed_at": time_text(s.observed_at),
                "response_seconds": stat_text(s.response_seconds),
                "output_amount": stat_text(s.output_amount),
                "output_base_units": None if s.output_base_units is None else format(s.output_base_units, "f"),
                "duration_seconds": stat_text(s.duration_seconds),
                "fees_usd": stat_text(s.fees_usd),
                "tool": s.tool,
                "detail": s.detail,
                "published_at": time_text(s.published_at),
            }
        )
    return 200, {"bridges": items}


@route("stats_overview", "/stats/overview")
def _overview(api: QuotesApi, conn: Any, params: Query, _: list[str]) -> tuple[int, Any]:
    found = latest_overview(conn)
    if found is None:
        raise ApiError(404, "no overview yet (the stats-overview-tick runs every 5 minutes)")
    observed_at, overview, published_at = found
    return 200, {"observed_at": time_text(observed_at), "published_at": time_text(published_at), **overview}
