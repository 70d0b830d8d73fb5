"""Whether a chain's new reading differs from the last published one enough to publish.

A new block is no news. Published: a change of health or of its reasons' kind, a change of
any URL's status, or a statistic moving beyond its tolerance (relative for block time and
base fee, absolute for the gas used ratio, all in configuration).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from .health import Health


class ChangeTolerances(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    block_time_relative: Decimal = Field(default=Decimal("0.2"), ge=0)
    base_fee_relative: Decimal = Field(default=Decimal("0.5"), ge=0)
    gas_used_ratio_absolute: Decimal = Field(default=Decimal("0.2"), ge=0)


@dataclass(frozen=True)
class PublishedReading:
    """The part of a chain reading that an event carries and that change is judged on."""

    health: Health
    url_statuses: tuple[tuple[str, str], ...]  # (url, status), sorted by url
    block_time_seconds: Decimal | None
    gas_used_ratio: Decimal | None
    base_fee_gwei: Decimal | None


def changes(previous: PublishedReading | None, current: PublishedReading, tolerances: ChangeTolerances) -> list[str]:
    """What changed beyond tolerance (empty: nothing worth an event). The first reading always is."""
    if previous is None:
        return ["first reading"]
    found = []
    if previous.health is not current.health:
        found.append(f"health {previous.health} -> {current.health}")
    if previous.url_statuses != current.url_statuses:
        found.append("RPC URL status changed")
    if _relative_move(previous.block_time_seconds, current.block_time_seconds, tolerances.block_time_relative):
        found.append(f"block time {previous.block_time_seconds} -> {current.block_time_seconds} s")
    if _relative_move(previous.base_fee_gwei, current.base_fee_gwei, tolerances.base_fee_relative):
        found.append(f"base fee {previous.base_fee_gwei} -> {current.base_fee_gwei} gwei")
    before, after = previous.gas_used_ratio, current.gas_used_ratio
    if (before is None) != (after is None) or (
        before is not None and after is not None and abs(after - before) > tolerances.gas_used_ratio_absolute
    ):
        found.append(f"gas used ratio {before} -> {after}")
    return found


def _relative_move(before: Decimal | None, after: Decimal | None, tolerance: Decimal) -> bool:
    if before is None or after is None:
        return (before is None) != (after is None)
    if before == 0:
        return after != 0
    return abs(after - before) / abs(before) > tolerance
