"""Chain health: healthy / degraded / down, from thresholds in configuration.

Rules, first match wins for `down`, reasons accumulate for `degraded`:
- down: no URL on the right chain and in agreement answered (nothing to measure);
- down: the head is older than `head_age_down_seconds`;
- degraded: the head is older than `head_age_degraded_seconds`;
- degraded: the measured block time is above `block_time_degraded_seconds`;
- degraded: fewer URLs agree than `min_agreeing_urls`;
- degraded: the blocks did not form a chain (a reported anomaly: no block time this cycle).
A URL on the wrong chain, lagging or failing is reported per URL; it degrades the chain
only through `min_agreeing_urls` (our view of the chain, not the chain itself).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from .agreement import HeadAgreement
from .performance import ChainPerformance


class Health(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    DOWN = "down"


class HealthThresholds(BaseModel):
    """Per-chain thresholds; defaults fit no chain, each chain's configuration sets its own."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    head_age_degraded_seconds: Decimal = Field(default=Decimal(60), gt=0)
    head_age_down_seconds: Decimal = Field(default=Decimal(300), gt=0)
    block_time_degraded_seconds: Decimal = Field(default=Decimal(30), gt=0)
    min_agreeing_urls: int = Field(default=1, ge=1)


@dataclass(frozen=True)
class HealthVerdict:
    health: Health
    reasons: tuple[str, ...]


def judge(
    thresholds: HealthThresholds,
    agreement: HeadAgreement,
    performance: ChainPerformance | None,
    now_ms: int,
    anomaly: str | None = None,
) -> HealthVerdict:
    """The health of one chain this cycle and why (module docstring)."""
    agreeing = len(agreement.agreeing)
    if agreeing == 0:
        return HealthVerdict(Health.DOWN, ("no RPC URL on the right chain answered",))
    reasons: list[str] = []
    if performance is not None:
        age = head_age_seconds(performance, now_ms)
        if age > thresholds.head_age_down_seconds:
            return HealthVerdict(Health.DOWN, (f"head {age} s old (down above {thresholds.head_age_down_seconds} s)",))
        if age > thresholds.head_age_degraded_seconds:
            reasons.append(f"head {age} s old (degraded above {thresholds.head_age_degraded_seconds} s)")
        if performance.block_time_seconds > thresholds.block_time_degraded_seconds:
            reasons.append(
                f"block time {performance.block_time_seconds} s"
                f" (degraded above {thresholds.block_time_degraded_seconds} s)"
            )
    if anomaly is not None:
        reasons.append(f"blocks not measured: {anomaly}")
    if agreeing < thresholds.min_agreeing_urls:
        reasons.append(f"{agreeing} RPC URL(s) agree, fewer than {thresholds.min_agreeing_urls}")
    return HealthVerdict(Health.DEGRADED if reasons else Health.HEALTHY, tuple(reasons))


def head_age_seconds(performance: ChainPerformance, now_ms: int) -> Decimal:
    """How old the head block is at `now_ms` (never negative: a clock skew reads as fresh)."""
    return Decimal(max(0, now_ms - performance.head_timestamp_ms)) / 1000
