"""Schedules and the jobs one tick emits (pure: no Kafka, no database).

| schedule          | PingSource cron     | topic                             | job                      |
|-------------------|---------------------|-----------------------------------|--------------------------|
| `top100-price`    | `*/5 * * * * *`     | price-crawler.price.request       | price / top100, batched  |
| `top100-metadata` | `0 0 0 * * *`       | price-crawler.metadata.request    | metadata / top100        |
| `trending`        | `0 * * * * *`       | price-crawler.price.request       | price+metadata / trending|

Trending jobs travel on the price topic: its KafkaSource is unordered, so a slow
trending crawl never holds back a 5-s top-100 batch (the pipelines are isolated).
A tick's jobs expire after two cadences: a consumer that receives one later skips it,
because a newer tick already superseded it (ticks never pile up).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True, slots=True)
class Schedule:
    """What one PingSource tick asks for."""

    name: str
    topic_setting: str  # the Settings field naming the topic
    job_type: str
    token_type: str
    cadence: timedelta
    batched: bool = False

    @property
    def expires_after(self) -> timedelta:
        return self.cadence * 2


SCHEDULES: dict[str, Schedule] = {
    s.name: s
    for s in (
        Schedule("top100-price", "price_topic", "price", "top100", timedelta(seconds=5), batched=True),
        Schedule("top100-metadata", "metadata_topic", "metadata", "top100", timedelta(hours=24)),
        Schedule("trending", "price_topic", "price", "trending", timedelta(minutes=1)),
    )
}


def shard(symbols: Sequence[str], batch_size: int) -> list[list[str]]:
    """Split a token set into batches that fit one upstream batch request each."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    return [list(symbols[i : i + batch_size]) for i in range(0, len(symbols), batch_size)]


@dataclass(frozen=True, slots=True)
class PriceMember:
    """A member of the token set as the scheduler routes it."""

    symbol: str
    last_source: str | None  # the source of its latest price; None when never priced
    dex_chain: str | None  # the chain DexScreener is asked on for it (its first supported contract)


@dataclass(frozen=True, slots=True)
class PriceBatch:
    """One price job of a tick: the symbols and the route that grouped them."""

    route: str  # "binance", "dexscreener:<chain>", "coingecko" or "discovery"
    symbols: list[str]


def price_batches(
    members: Sequence[PriceMember], *, discovery_size: int = 100, dex_job_size: int = 90, routed_job_size: int = 5000
) -> list[PriceBatch]:
    """Shard a tick by the source that priced each token last, so each API is asked the minimum.

    Sharding by rank made every job ask every source: ten 100-symbol jobs asked Binance ten
    times and each used 10-13 of DexScreener's 30 address slots per request. Routed by
    source instead, the Binance tokens share one job (one every-pair request), DexScreener
    tokens share jobs per chain in multiples of its 30-address batch, and the coins only
    CoinGecko prices share one `simple/price`. Tokens never priced yet go in rank batches
    ("discovery") that walk the whole source order; once priced, they are routed. A routed
    job still falls back along the source order when its source fails.
    """
    if min(discovery_size, dex_job_size, routed_job_size) < 1:
        raise ValueError("job sizes must be at least 1")
    groups: dict[str, list[str]] = {}
    for member in members:
        groups.setdefault(_route(member), []).append(member.symbol)
    batches = []
    for route, symbols in groups.items():
        size = (
            discovery_size
            if route == "discovery"
            else dex_job_size
            if route.startswith("dexscreener:")
            else routed_job_size
        )
        batches += [PriceBatch(route, batch) for batch in shard(symbols, size)]
    return batches


def _route(member: PriceMember) -> str:
    if member.last_source in ("binance", "coingecko"):
        return member.last_source
    if member.last_source == "dexscreener" and member.dex_chain:
        return f"dexscreener:{member.dex_chain}"
    return "discovery"


def tick_jobs(
    schedule: Schedule,
    tick: datetime,
    *,
    symbols: Sequence[str] = (),
    batch_size: int = 100,
    batches: Sequence[PriceBatch] | None = None,
    traceparent: str | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """The (partition key, job message) pairs one tick emits.

    A batched schedule emits one job per batch: `batches` as routed by `price_batches`, else
    `symbols` cut into `batch_size` rank batches. Job ids are derived from the schedule and
    the tick time, so a PingSource retry of the same tick produces the same ids and job_logs
    counts it as a redelivery.
    """
    stamp = tick.strftime("%Y%m%dT%H%M%S.%fZ")
    base = {
        "job_type": schedule.job_type,
        "token_type": schedule.token_type,
        "timestamp": tick.isoformat().replace("+00:00", "Z"),
        "expires_at": (tick + schedule.expires_after).isoformat().replace("+00:00", "Z"),
    }
    if traceparent:
        base["traceparent"] = traceparent
    if not schedule.batched:
        return [(schedule.token_type, {**base, "symbols": [], "job_id": f"{schedule.name}:{stamp}"})]
    if batches is None:
        batches = [PriceBatch("", batch) for batch in shard(list(symbols), batch_size)]
    return [
        # Distinct keys spread a tick's batches over the topic's partitions.
        (
            f"{schedule.token_type}:{i}",
            {
                **base,
                "symbols": batch.symbols,
                "job_id": f"{schedule.name}:{stamp}:{i}",
                "batch": i,
                "batches": len(batches),
                **({"route": batch.route} if batch.route else {}),
            },
        )
        for i, batch in enumerate(batches)
    ]
