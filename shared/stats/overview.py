"""The stats overview (every 5 minutes): chain health with DEX volume, and the bridges in summary.

Composed from what the other schedules recorded (the latest chain readings and bridge
samples) plus DefiLlama's DEX volume per chain, asked now. It is news when a chain's health
changes, a route's best status changes, or a chain's 24 h DEX volume moves beyond
`volume_relative` (a volume that cannot be read is reported per chain, not guessed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from .defillama import DexVolume
from .reads import BridgeStat, ChainStat

# Best first: a route's summary status is the best any provider reached this cycle.
STATUS_RANK = ("ok", "slow", "no_route", "error", "anomaly", "rate_limited")


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def compose(
    chains: Sequence[ChainStat],
    bridges: Sequence[BridgeStat],
    volumes: Mapping[str, DexVolume | str],
) -> dict[str, Any]:
    """The overview document (the event's data but `changes` and `observed_at_ms`)."""
    chain_items = []
    for stat in chains:
        volume = volumes.get(stat.chain)
        chain_items.append(
            {
                "chain": stat.chain,
                "health": stat.health,
                "block_time_seconds": _text(stat.block_time_seconds),
                "dex_volume_24h_usd": _text(volume.volume_24h_usd) if isinstance(volume, DexVolume) else None,
                "dex_volume_7d_usd": _text(volume.volume_7d_usd) if isinstance(volume, DexVolume) else None,
                "dex_change_1d_percent": _text(volume.change_1d_percent) if isinstance(volume, DexVolume) else None,
                "volume_error": volume if isinstance(volume, str) else None,
            }
        )
    by_route: dict[str, list[BridgeStat]] = {}
    for sample in bridges:
        by_route.setdefault(sample.route, []).append(sample)
    bridge_items = []
    for route, samples in sorted(by_route.items()):
        best = min(samples, key=lambda s: STATUS_RANK.index(s.status) if s.status in STATUS_RANK else len(STATUS_RANK))
        timed = [s for s in samples if s.status in ("ok", "slow") and s.duration_seconds is not None]
        fastest = min(timed, key=lambda s: s.duration_seconds or 0) if timed else None
        bridge_items.append(
            {
                "route": route,
                "status": best.status,
                "providers": {s.provider: s.status for s in sorted(samples, key=lambda s: s.provider)},
                "fastest_provider": fastest.provider if fastest else None,
                "fastest_duration_seconds": _text(fastest.duration_seconds) if fastest else None,
            }
        )
    counts = {h: sum(1 for c in chains if c.health == h) for h in ("healthy", "degraded", "down")}
    return {"chains": chain_items, "health_counts": counts, "bridges": bridge_items}


def overview_changes(
    previous: Mapping[str, Any] | None, current: Mapping[str, Any], volume_relative: Decimal
) -> list[str]:
    """What changed since the last published overview (empty: no event)."""
    if previous is None:
        return ["first overview"]
    found = []
    before = {c["chain"]: c for c in previous.get("chains", [])}
    for chain in current["chains"]:
        old = before.get(chain["chain"])
        if old is None:
            found.append(f"chain {chain['chain']} added")
            continue
        if old["health"] != chain["health"]:
            found.append(f"{chain['chain']} health {old['health']} -> {chain['health']}")
        a, b = old.get("dex_volume_24h_usd"), chain["dex_volume_24h_usd"]
        if (a is None) != (b is None) or (
            a is not None
            and b is not None
            and Decimal(a) != 0
            and abs(Decimal(b) - Decimal(a)) / Decimal(a) > volume_relative
        ):
            found.append(f"{chain['chain']} 24h DEX volume {a} -> {b} USD")
    routes = {r["route"]: r for r in previous.get("bridges", [])}
    for bridge in current["bridges"]:
        old = routes.get(bridge["route"])
        if old is None or old["status"] != bridge["status"]:
            found.append(f"route {bridge['route']} {old['status'] if old else 'new'} -> {bridge['status']}")
    if {c["chain"] for c in current["chains"]} != set(before):
        removed = set(before) - {c["chain"] for c in current["chains"]}
        found.extend(f"chain {name} removed" for name in sorted(removed))
    return found
