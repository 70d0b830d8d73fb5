"""Block time, gas used ratio and base fee over the last N blocks - measured, never assumed.

The blocks must be a chain: consecutive numbers, each `parent_hash` the hash of the one
before, timestamps never going backwards. Anything else (a gap, a reorg inside the window,
a timestamp going back) is `BlockWindowAnomaly`, reported, never folded into a statistic.
Equal timestamps are fine (several BSC blocks can share a millisecond-less second, and
post-Denim Base blocks share seconds); intervals are in milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from .blocks import BlockHeader

GWEI = Decimal(10**9)
MILLIS = Decimal(1000)


class BlockWindowAnomaly(ValueError):
    """The blocks asked for do not form one chain (gap, reorg, timestamp going backwards)."""


@dataclass(frozen=True)
class ChainPerformance:
    """Statistics of one window of blocks, exact decimals.

    `block_time_seconds` is the mean interval (last - first) / (n - 1); `max_block_interval_seconds`
    the longest gap (Ethereum's missed slots show as 24 s, 36 s); `gas_used_ratio` the window's
    gas used over its gas limit; `base_fee_gwei` the head's (None without EIP-1559).
    """

    head_number: int
    head_timestamp_ms: int
    blocks: int
    block_time_seconds: Decimal
    max_block_interval_seconds: Decimal
    gas_used_ratio: Decimal
    base_fee_gwei: Decimal | None


def measure(blocks: Sequence[BlockHeader]) -> ChainPerformance:
    """The statistics of `blocks` (any order, at least two); `BlockWindowAnomaly` if they are no chain."""
    if len(blocks) < 2:
        raise BlockWindowAnomaly(f"{len(blocks)} block(s): a block time needs at least two")
    ordered = sorted(blocks, key=lambda b: b.number)
    intervals: list[int] = []
    for parent, child in zip(ordered, ordered[1:], strict=False):
        if child.number != parent.number + 1:
            raise BlockWindowAnomaly(f"blocks {parent.number} and {child.number} are not consecutive")
        if child.parent_hash != parent.hash:
            raise BlockWindowAnomaly(f"block {child.number} does not follow {parent.number} (reorg inside the window)")
        if child.timestamp_ms < parent.timestamp_ms:
            raise BlockWindowAnomaly(
                f"block {child.number} timestamp {child.timestamp_ms} ms is before its parent's {parent.timestamp_ms} ms"
            )
        intervals.append(child.timestamp_ms - parent.timestamp_ms)
    head = ordered[-1]
    gas_limit = sum(b.gas_limit for b in ordered)
    return ChainPerformance(
        head_number=head.number,
        head_timestamp_ms=head.timestamp_ms,
        blocks=len(ordered),
        block_time_seconds=Decimal(head.timestamp_ms - ordered[0].timestamp_ms) / MILLIS / (len(ordered) - 1),
        max_block_interval_seconds=Decimal(max(intervals)) / MILLIS,
        gas_used_ratio=Decimal(sum(b.gas_used for b in ordered)) / gas_limit if gas_limit else Decimal(0),
        base_fee_gwei=None if head.base_fee_wei is None else Decimal(head.base_fee_wei) / GWEI,
    )
