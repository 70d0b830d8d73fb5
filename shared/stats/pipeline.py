"""The stats function's handler: a chain-performance tick in, change-only events out.

A PingSource tick (`{"schedule": "chain-performance"}`, every minute) reads every configured
chain (shared/stats/collect.py), records each reading and publishes
`stats.chain_performance_updated` on `stats-updates`, keyed by chain, only for chains whose
reading changed (shared/stats/store.py decides, under a row lock). Bridge and overview
schedules are not built yet: they are refused as unknown (dead-lettered with the reason).
"""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from typing import Any

from shared.config import UpstreamSettings
from shared.errors import BadMessage
from shared.events import InboundEvent, OutboundEvent
from shared.runtime.resources import Resources
from shared.upstream.http import UpstreamHttp
from shared.upstream.jsonrpc import JsonRpcClient

from .collect import ChainReading, read_chain
from .contracts import CHAIN_PERFORMANCE_UPDATED, CHAIN_PERFORMANCE_UPDATED_SCHEMA, ChainPerformanceUpdated
from .settings import StatsSettings
from .store import record_reading

log = logging.getLogger(__name__)

SCHEDULES = ("chain-performance",)


def stats_settings(resources: Resources) -> StatsSettings:
    return resources.once("stats.settings", StatsSettings)


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


def run_stats_tick(event: InboundEvent, resources: Resources) -> dict[str, Any]:
    """Handle one tick; the summary names each chain's health and whether it was published."""
    try:
        data = json.loads(event.data or b"{}")
    except (ValueError, RecursionError):
        raise BadMessage('ping data is not JSON: expected {"schedule": "chain-performance"}') from None
    schedule = data.get("schedule") if isinstance(data, dict) else None
    if schedule not in SCHEDULES:
        raise BadMessage(f"unknown stats schedule {schedule!r}: expected one of {list(SCHEDULES)}")
    settings = stats_settings(resources)
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
