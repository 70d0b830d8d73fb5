"""The stats function's handler: a scheduled tick in, change-only events out.

- `{"schedule": "chain-performance"}` (PingSource `chain-performance-tick`, every minute)
  reads every configured chain (shared/stats/collect.py), records each reading and publishes
  `stats.chain_performance_updated` on `stats-updates`, keyed by chain, only for chains whose
  reading changed (shared/stats/store.py decides, under a row lock).
- `{"schedule": "bridge-latency"}` (PingSource `bridge-latency-tick`, every 2 minutes) asks
  each provider for the routes its budget allows this cycle (shared/stats/budget.py rotates
  them), records every sample and publishes `stats.bridge_latency_updated` keyed by route for
  the samples that changed (shared/stats/bridge_store.py).
- `{"schedule": "overview"}` (PingSource `stats-overview-tick`, every 5 minutes) asks
  DefiLlama for each chain's DEX volume, composes it with the latest chain readings and bridge
  samples (shared/stats/overview.py) and publishes `stats.overview_updated` keyed "overview"
  when it changed (shared/stats/overview_store.py).
Any other schedule is refused (dead-lettered with the reason).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime
from decimal import Decimal
from typing import Any

from shared.config import UpstreamSettings
from shared.errors import BadMessage, CrawlerError
from shared.events import InboundEvent, OutboundEvent
from shared.observability import metrics
from shared.observability.logging import register_secret
from shared.runtime.resources import Resources
from shared.upstream.http import UpstreamHttp
from shared.upstream.jsonrpc import JsonRpcClient

from . import reads
from .bridge_store import record_sample
from .bridges import BridgeRoute, Provider
from .budget import cycle_number, routes_this_cycle
from .collect import ChainReading, read_chain
from .contracts import (
    BRIDGE_LATENCY_UPDATED,
    BRIDGE_LATENCY_UPDATED_SCHEMA,
    CHAIN_PERFORMANCE_UPDATED,
    CHAIN_PERFORMANCE_UPDATED_SCHEMA,
    OVERVIEW_UPDATED,
    OVERVIEW_UPDATED_SCHEMA,
    BridgeLatencyUpdated,
    ChainPerformanceUpdated,
    OverviewUpdated,
)
from .defillama import QUERY, DexVolume, VolumeAnomaly, overview_path, parse_dex_overview
from .overview import compose
from .overview_store import record_overview
from .sampling import RouteSample, sample_route
from .settings import StatsSettings
from .store import record_reading

log = logging.getLogger(__name__)

SCHEDULES = ("chain-performance", "bridge-latency", "overview")
HEALTH_LEVEL = {"healthy": 0, "degraded": 1, "down": 2}  # crawler_stats_chain_health


def stats_settings(resources: Resources) -> StatsSettings:
    return resources.once("stats.settings", StatsSettings)


def check_stats_settings(resources: Resources) -> None:
    """The stats function's startup probe: read the settings now, so routes that no budget can fit
    (`BudgetTooSmall`) or a malformed `STATS_*` stop the process at start with the reason, not at
    the first tick; the providers' keys become log secrets."""
    settings = stats_settings(resources)
    register_secret(settings.lifi.api_key, settings.relay.api_key, settings.oneinch.api_key)
    for provider, plan in settings.bridge_plans().items():
        if plan.routes:
            log.info(
                "%s: %d of %d route(s) per %d-s cycle, each every %d cycle(s)",
                provider,
                plan.per_cycle,
                len(plan.routes),
                settings.bridge_cycle_seconds,
                plan.every_cycles,
            )


def rpc_clients(resources: Resources) -> dict[str, JsonRpcClient]:
    """One client per configured RPC URL, for the life of the process (budgets and breakers persist)."""

    def build() -> dict[str, JsonRpcClient]:
        settings = stats_settings(resources)
        clients = {}
        for chain in settings.chains:
            for i, url in enumerate(chain.rpc_urls):
                upstream = UpstreamSettings(
                    base_url=url,
                    timeout_seconds=settings.rpc_timeout_seconds,
                    max_retries=settings.rpc_max_retries,
                    rate_limit_per_minute=settings.rpc_rate_limit_per_minute,
                )
                clients[url] = JsonRpcClient(UpstreamHttp(f"rpc.{chain.name}.{i}", upstream))
        return clients

    return resources.once("stats.rpc", build)


def quote_clients(resources: Resources) -> dict[Provider, UpstreamHttp]:
    """One HTTP layer per quote provider for the life of the process (its budget and breaker persist)."""

    def build() -> dict[Provider, UpstreamHttp]:
        settings = stats_settings(resources)
        clients: dict[Provider, UpstreamHttp] = {}
        providers: tuple[Provider, ...] = ("lifi", "relay", "oneinch")
        for provider in providers:
            upstream = settings.provider_settings(provider)
            headers = {}
            if upstream.api_key:  # keys travel in headers only; the HTTP layer never logs headers
                headers = (
                    {"Authorization": f"Bearer {upstream.api_key}"}
                    if provider == "oneinch"
                    else {"x-lifi-api-key" if provider == "lifi" else "x-api-key": upstream.api_key}
                )
            # 1inch: 1 request per second; the others' per-second rate is well inside their budgets.
            burst = 1 if provider == "oneinch" else None
            clients[provider] = UpstreamHttp(provider, upstream, headers=headers, burst_limit_per_second=burst)
        return clients

    return resources.once("stats.quotes", build)


def run_stats_tick(event: InboundEvent, resources: Resources) -> dict[str, Any]:
    """Handle one tick; the summary names each chain's health (or each route's status) and what was published."""
    try:
        data = json.loads(event.data or b"{}")
    except (ValueError, RecursionError):
        raise BadMessage('ping data is not JSON: expected {"schedule": "chain-performance"}') from None
    schedule = data.get("schedule") if isinstance(data, dict) else None
    if schedule not in SCHEDULES:
        raise BadMessage(f"unknown stats schedule {schedule!r}: expected one of {list(SCHEDULES)}")
    settings = stats_settings(resources)
    if schedule == "bridge-latency":
        return run_bridge_tick(event, resources, settings)
    if schedule == "overview":
        return run_overview_tick(resources, settings)
    clients = rpc_clients(resources)
    with resources.db.connection() as conn:  # partitions ahead, old days dropped (one maintainer at a time)
        conn.run("SELECT maintain_chain_stats(:days)", days=settings.history_retention_days)
    summary: dict[str, Any] = {"schedule": schedule, "chains": {}}
    events = []
    for chain in settings.chains:
        reading = read_chain(chain, clients)
        with resources.db.connection() as conn:
            changed = record_reading(conn, reading, settings.tolerances)
        summary["chains"][chain.name] = {"health": reading.verdict.health.value, "published": bool(changed)}
        metrics.set_gauge("crawler_stats_chain_health", HEALTH_LEVEL[reading.verdict.health.value], chain=reading.chain)
        if changed:
            events.append(_event(reading, changed))
    if events:
        resources.producer.publish(settings.updates_topic, events)
    return summary


def chain_performance_data(reading: ChainReading, changed: list[str]) -> dict[str, Any]:
    """The data of a `stats.chain_performance_updated` event, validated against its schema."""
    performance = reading.performance
    data = {
        "chain": reading.chain,
        "health": reading.verdict.health.value,
        "reasons": list(reading.verdict.reasons),
        "changes": changed,
        "observed_at_ms": reading.observed_ms,
        "head_number": performance.head_number if performance else None,
        "block_time_seconds": _decimal_text(performance.block_time_seconds if performance else None),
        "max_block_interval_seconds": _decimal_text(performance.max_block_interval_seconds if performance else None),
        "gas_used_ratio": _decimal_text(performance.gas_used_ratio if performance else None),
        "base_fee_gwei": _decimal_text(performance.base_fee_gwei if performance else None),
        "anomaly": reading.anomaly,
        "urls": [
            {"url": v.url, "status": v.status.value, "head": v.head, "lag_blocks": v.lag_blocks, "detail": v.detail}
            for v in reading.agreement.verdicts
        ],
    }
    ChainPerformanceUpdated.model_validate(data)  # a reading that breaks the contract is our bug: fail loudly
    return data


def _decimal_text(value: Decimal | None) -> str | None:
    # Positional: str(Decimal) would write 1E-7, which the schema (and most readers) refuse.
    return None if value is None else format(value, "f")


def _event(reading: ChainReading, changed: list[str]) -> OutboundEvent:
    return OutboundEvent(
        type=CHAIN_PERFORMANCE_UPDATED,
        source="/stats/chain-performance",
        data=chain_performance_data(reading, changed),
        key=reading.chain,
        subject=reading.chain,
        dataschema=CHAIN_PERFORMANCE_UPDATED_SCHEMA,
    )


def run_bridge_tick(event: InboundEvent, resources: Resources, settings: StatsSettings) -> dict[str, Any]:
    """One bridge-latency cycle: the routes each provider's budget allows now, sampled, recorded, published on change."""
    clients = quote_clients(resources)
    routes = {r.name: r for r in settings.bridge_routes}
    cycle = cycle_number(_tick_seconds(event), settings.bridge_cycle_seconds)
    with resources.db.connection() as conn:
        conn.run("SELECT maintain_bridge_stats(:days)", days=settings.history_retention_days)
    summary: dict[str, Any] = {"schedule": "bridge-latency", "cycle": cycle, "samples": {}}
    events = []
    for provider, provider_plan in settings.bridge_plans().items():
        for name in routes_this_cycle(provider_plan, cycle):
            route = routes[name]
            sample = sample_route(route, provider, clients[provider])
            with resources.db.connection() as conn:
                changed = record_sample(conn, sample, settings.bridge_tolerances)
            summary["samples"][f"{name}/{provider}"] = {"status": sample.status.value, "published": bool(changed)}
            metrics.set_gauge("crawler_stats_bridge_slow_after", float(route.slow_after_seconds), route=name)
            if sample.estimate is not None and sample.estimate.duration_seconds is not None:
                metrics.set_gauge(
                    "crawler_stats_bridge_duration",
                    float(sample.estimate.duration_seconds),
                    route=name,
                    provider=provider,
                )
            if changed:
                events.append(_bridge_event(route, sample, changed))
    if events:
        resources.producer.publish(settings.updates_topic, events)
    return summary


def _tick_seconds(event: InboundEvent) -> float:
    """The tick's own time (the CloudEvent `time`), so a late or redelivered tick keeps its cycle."""
    if event.time:
        try:
            return datetime.fromisoformat(event.time.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return time.time()


def bridge_latency_data(route: BridgeRoute, sample: RouteSample, changed: list[str]) -> dict[str, Any]:
    """The data of a `stats.bridge_latency_updated` event, validated against its schema."""
    estimate = sample.estimate
    data = {
        "route": route.name,
        "provider": sample.provider,
        "status": sample.status.value,
        "changes": changed,
        "observed_at_ms": sample.observed_ms,
        "from_chain_id": route.source.chain_id,
        "to_chain_id": route.destination.chain_id,
        "from_token": route.source.token,
        "to_token": route.destination.token,
        "amount_in": _decimal_text(route.amount),
        "response_seconds": _decimal_text(Decimal(str(round(sample.response_seconds, 4)))),
        "output_amount": _decimal_text(estimate.output_amount if estimate else None),
        "duration_seconds": _decimal_text(estimate.duration_seconds if estimate else None),
        "fees_usd": _decimal_text(estimate.fees_usd if estimate else None),
        "tool": estimate.tool if estimate else None,
        "detail": sample.detail,
    }
    BridgeLatencyUpdated.model_validate(data)
    return data


def _bridge_event(route: BridgeRoute, sample: RouteSample, changed: list[str]) -> OutboundEvent:
    return OutboundEvent(
        type=BRIDGE_LATENCY_UPDATED,
        source="/stats/bridge-latency",
        data=bridge_latency_data(route, sample, changed),
        key=route.name,
        subject=f"{route.name}/{sample.provider}",
        dataschema=BRIDGE_LATENCY_UPDATED_SCHEMA,
    )


def defillama_client(resources: Resources) -> UpstreamHttp:
    return resources.once("stats.defillama", lambda: UpstreamHttp("defillama", stats_settings(resources).defillama))


def dex_volumes(settings: StatsSettings, http: UpstreamHttp) -> dict[str, DexVolume | str]:
    """Each chain's DEX volume, or why it could not be read (reported per chain, never guessed)."""
    volumes: dict[str, DexVolume | str] = {}
    for chain in settings.chains:
        if chain.defillama_name is None:
            continue
        try:
            body = http.get_json(overview_path(chain.defillama_name), QUERY, expect=dict)
            volumes[chain.name] = parse_dex_overview(body, chain.defillama_name)
        except VolumeAnomaly as exc:
            volumes[chain.name] = f"anomaly: {exc}"[:300]
        except CrawlerError as exc:
            volumes[chain.name] = exc.reason[:300]
    return volumes


def run_overview_tick(resources: Resources, settings: StatsSettings) -> dict[str, Any]:
    """One overview: DefiLlama volumes with the latest chain and bridge stats; published on change."""
    volumes = dex_volumes(settings, defillama_client(resources))
    with resources.db.connection() as conn:
        overview = compose(reads.latest_chain_stats(conn), reads.latest_bridge_stats(conn), volumes)
        observed_ms = int(time.time() * 1000)
        changed = record_overview(
            conn, overview, observed_ms, settings.overview_volume_relative, settings.history_retention_days
        )
    if changed:
        data = {"changes": changed, "observed_at_ms": observed_ms, **overview}
        OverviewUpdated.model_validate(data)
        resources.producer.publish(
            settings.updates_topic,
            [
                OutboundEvent(
                    type=OVERVIEW_UPDATED,
                    source="/stats/overview",
                    data=data,
                    key="overview",
                    subject="overview",
                    dataschema=OVERVIEW_UPDATED_SCHEMA,
                )
            ],
        )
    return {"schedule": "overview", "published": bool(changed), "health_counts": overview["health_counts"]}
