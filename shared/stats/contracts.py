"""The published contract of the stats system's events (DESIGN.md §10).

    stats.chain_performance_updated  ChainPerformanceUpdated  (stats → stats-updates, key: chain)

The JSON Schema `schemas/chain-performance-updated.v1.json` is generated from the model
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

DECIMAL_TEXT = r"^(0|[1-9][0-9]*)(\.[0-9]+)?$"


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


EVENT_DATASCHEMAS: dict[str, str] = {CHAIN_PERFORMANCE_UPDATED: CHAIN_PERFORMANCE_UPDATED_SCHEMA}
SCHEMA_MODELS: dict[str, type[BaseModel]] = {CHAIN_PERFORMANCE_UPDATED_SCHEMA: ChainPerformanceUpdated}


if __name__ == "__main__":
    for name in rewrite_schema_files(SCHEMA_MODELS):
        print(f"schemas/{name}")
    sys.exit(0)
