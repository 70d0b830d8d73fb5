"""Choosing among a token's pools (DexScreener or GeckoTerminal alike)."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from shared.crawler.models import Pool


def dedupe_pools(pools: Iterable[Pool]) -> list[Pool]:
    """Pools without repeats of the same (chain, pair address), first occurrence kept, order kept."""
    unique: dict[tuple[str, str], Pool] = {}
    for pool in pools:
        unique.setdefault((pool.chain, pool.pair_address), pool)
    return list(unique.values())


def _pool_order(pool: Pool) -> tuple[bool, Decimal, Decimal, str, str]:
    """Sort key, best pool first: positive liquidity, more liquidity, more volume, then id."""
    liquidity = pool.liquidity_usd or Decimal(0)
    volume = pool.volume_24h_usd or Decimal(0)
    return (liquidity <= 0, -liquidity, -volume, pool.chain, pool.pair_address)


def select_main_pool(pools: Iterable[Pool]) -> Pool | None:
    """The pool with the most USD liquidity; None for no pools.

    A pool with zero or unknown liquidity never wins over one with positive liquidity.
    Ties go to the higher 24 h volume, then to the lowest (chain, pair address), so the
    choice does not depend on the order the API listed the pairs in.
    """
    return min(pools, key=_pool_order, default=None)


def sorted_by_liquidity(pools: Iterable[Pool]) -> tuple[Pool, ...]:
    """Pools without repeats, best first by the order of `select_main_pool`."""
    return tuple(sorted(dedupe_pools(pools), key=_pool_order))
