"""The published contract of the stats system's events (DESIGN.md §10).

    stats.chain_performance_updated  ChainPerformanceUpdated  (stats → stats-updates, key: chain)
    stats.bridge_latency_updated     BridgeLatencyUpdated     (stats → stats-updates, key: route)
    stats.overview_updated           OverviewUpdated          (stats → stats-updates, key: "overview")

The JSON Schemas `schemas/chain-performance-updated.v1.json`,
`schemas/bridge-latency-updated.v1.json` and `schemas/overview-updated.v1.json` are generated from the model
(`python -m shared.stats.contracts` rewrites it; a test fails when file and model differ);
each event names it in its CloudEvent `dataschema`, and the pipeline validates what it
publishes against it. Measured decimals travel as positional decimal text, never floats.
"""

from __future__ import annotations

import sys
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.schemas import DATASCHEMA_BASE, rewrite_schema_files

CHAIN_PERFORMANCE_UPDATED = "stats.chain_performance_updated"
CHAIN_PERFORMANCE_UPDATED_SCHEMA = DATASCHEMA_BASE + "chain-performance-updated.v1.json"

BRIDGE_LATENCY_UPDATED = "stats.bridge_latency_updated"
BRIDGE_LATENCY_UPDATED_SCHEMA = DATASCHEMA_BASE + "bridge-latency-updated.v1.json"

OVERVIEW_UPDATED = "stats.overview_updated"
OVERVIEW_UPDATED_SCHEMA = DATASCHEMA_BASE + "overview-updated.v1.json"

DECIMAL_TEXT = r"^(0|[1-9][0-9]*)(\.[0-9]+)?$"
SIGNED_DECIMAL_TEXT = r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?$"


class RpcUrlVerdict(BaseModel):
    """How one RPC URL of the chain fared in the head agreement."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    url: str = Field(min_length=1)
    status: Literal["ok", "wrong_chain", "lagging", "ahead", "error"]
    head: int | None = Field(ge=0)
    lag_blocks: int | None
    detail: str


class ChainPerformanceUpdated(BaseModel):
    """Data of `stats.chain_performance_updated`: a chain's reading that changed."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    chain: str = Field(min_length=1, max_length=64)
    health: Literal["healthy", "degraded", "down"]
    reasons: list[str]
    changes: list[str] = Field(min_length=1)
    observed_at_ms: int = Field(gt=0)
    head_number: int | None = Field(ge=0)
    block_time_seconds: str | None = Field(pattern=DECIMAL_TEXT)
    max_block_interval_seconds: str | None = Field(pattern=DECIMAL_TEXT)
    gas_used_ratio: str | None = Field(pattern=DECIMAL_TEXT)
    base_fee_gwei: str | None = Field(pattern=DECIMAL_TEXT)
    anomaly: str | None
    urls: list[RpcUrlVerdict]


class BridgeLatencyUpdated(BaseModel):
    """Data of `stats.bridge_latency_updated`: one provider's sample of a route that changed.

    `output_amount` is in destination token units, exact; `response_seconds` is how long the
    provider took to quote, `duration_seconds` its own estimate of the transfer.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    route: str = Field(min_length=1, max_length=64)
    provider: Literal["lifi", "relay", "oneinch"]
    status: Literal["ok", "slow", "no_route", "error", "anomaly"]
    changes: list[str] = Field(min_length=1)
    observed_at_ms: int = Field(gt=0)
    from_chain_id: int = Field(gt=0)
    to_chain_id: int = Field(gt=0)
    from_token: str
    to_token: str
    amount_in: str = Field(pattern=DECIMAL_TEXT)
    response_seconds: str = Field(pattern=DECIMAL_TEXT)
    output_amount: str | None = Field(pattern=DECIMAL_TEXT)
    duration_seconds: str | None = Field(pattern=DECIMAL_TEXT)
    fees_usd: str | None = Field(pattern=DECIMAL_TEXT)
    tool: str | None
    detail: str


class OverviewChain(BaseModel):
    """One chain in the overview: its health and DEX volume (USD, DefiLlama)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    chain: str = Field(min_length=1, max_length=64)
    health: Literal["healthy", "degraded", "down"]
    block_time_seconds: str | None = Field(pattern=DECIMAL_TEXT)
    dex_volume_24h_usd: str | None = Field(pattern=DECIMAL_TEXT)
    dex_volume_7d_usd: str | None = Field(pattern=DECIMAL_TEXT)
    dex_change_1d_percent: str | None = Field(pattern=SIGNED_DECIMAL_TEXT)
    volume_error: str | None


class OverviewBridge(BaseModel):
    """One route in the overview: the best status any provider reached, the fastest estimate."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    route: str = Field(min_length=1, max_length=64)
    status: Literal["ok", "slow", "no_route", "rate_limited", "error", "anomaly"]
    providers: dict[str, str]
    fastest_provider: str | None
    fastest_duration_seconds: str | None = Field(pattern=DECIMAL_TEXT)


class OverviewUpdated(BaseModel):
    """Data of `stats.overview_updated`: the whole overview, when it changed."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    changes: list[str] = Field(min_length=1)
    observed_at_ms: int = Field(gt=0)
    chains: list[OverviewChain]
    health_counts: dict[str, int]
    bridges: list[OverviewBridge]


EVENT_DATASCHEMAS: dict[str, str] = {
    CHAIN_PERFORMANCE_UPDATED: CHAIN_PERFORMANCE_UPDATED_SCHEMA,
    BRIDGE_LATENCY_UPDATED: BRIDGE_LATENCY_UPDATED_SCHEMA,
    OVERVIEW_UPDATED: OVERVIEW_UPDATED_SCHEMA,
}
SCHEMA_MODELS: dict[str, type[BaseModel]] = {
    CHAIN_PERFORMANCE_UPDATED_SCHEMA: ChainPerformanceUpdated,
    BRIDGE_LATENCY_UPDATED_SCHEMA: BridgeLatencyUpdated,
    OVERVIEW_UPDATED_SCHEMA: OverviewUpdated,
}


if __name__ == "__main__":
    for name in rewrite_schema_files(SCHEMA_MODELS):
        print(f"schemas/{name}")
    sys.exit(0)
