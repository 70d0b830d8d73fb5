"""Settings of the chain stats, from `STATS_*` environment variables (immutable, passed in).

`STATS_CHAINS` is a JSON list of `ChainConfig` objects: any EVM chain by configuration.
The defaults are Ethereum, Base and BSC on public keyless endpoints, with health thresholds
sized to each chain's measured cadence (INDEX.md): Ethereum 12-s slots, Base 2-s blocks
(200 ms after Denim: its thresholds still hold), BSC 0.45 s since Fermi.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from .change import ChangeTolerances
from .collect import ChainConfig
from .health import HealthThresholds


def _default_chains() -> tuple[ChainConfig, ...]:
    def thresholds(degraded: int, down: int, block_time: str) -> HealthThresholds:
        return HealthThresholds(
            head_age_degraded_seconds=Decimal(degraded),
            head_age_down_seconds=Decimal(down),
            block_time_degraded_seconds=Decimal(block_time),
        )

    return (
        ChainConfig(
            name="ethereum",
            chain_id=1,
            rpc_urls=("https://ethereum-rpc.publicnode.com",),
            thresholds=thresholds(60, 300, "18"),
        ),
        ChainConfig(
            name="base", chain_id=8453, rpc_urls=("https://mainnet.base.org",), thresholds=thresholds(10, 60, "3")
        ),
        ChainConfig(
            name="bsc",
            chain_id=56,
            rpc_urls=("https://bsc-dataseed.bnbchain.org",),
            window_blocks=20,
            max_lag_blocks=40,
            millis_in_mixhash=True,
            thresholds=thresholds(5, 60, "1"),
        ),
    )


class StatsSettings(BaseSettings):
    """Chains, per-URL budgets, change tolerances and the output topic of the stats."""

    model_config = SettingsConfigDict(env_prefix="STATS_", extra="ignore", frozen=True)

    chains: tuple[ChainConfig, ...] = Field(default_factory=_default_chains)
    tolerances: ChangeTolerances = ChangeTolerances()
    updates_topic: str = "stats-updates"
    # Per RPC URL: one batch per call; 2 batches per chain-performance cycle per URL at most.
    rpc_timeout_seconds: float = 5.0
    rpc_max_retries: int = 1
    rpc_rate_limit_per_minute: int = 30
    history_retention_days: int = Field(default=30, ge=1)
