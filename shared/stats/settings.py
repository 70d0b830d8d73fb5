"""Settings of the chain and bridge stats, from `STATS_*` environment variables (immutable, passed in).

`STATS_CHAINS` is a JSON list of `ChainConfig` objects: any EVM chain by configuration.
`STATS_BRIDGE_ROUTES` is a JSON list of `BridgeRoute` objects; the quote providers' own
settings are `LIFI_*`, `RELAY_*` and `ONEINCH_*` (base URL, key, keyless budget). Building
the settings checks every provider's routes against its budget (shared/stats/budget.py):
routes that do not fit one cycle rotate; a budget below one request per cycle is refused
here, at startup, with the figures.
The defaults are Ethereum, Base and BSC on public keyless endpoints, with health thresholds
sized to each chain's measured cadence (INDEX.md): Ethereum 12-s slots, Base 2-s blocks
(200 ms after Denim: its thresholds still hold), BSC 0.45 s since Fermi.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.config import UpstreamSettings

from .bridges import BridgeRoute, Provider, TokenSide
from .budget import ProviderBudget, ProviderPlan, plan
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
            defillama_name="Ethereum",
        ),
        ChainConfig(
            name="base",
            chain_id=8453,
            rpc_urls=("https://mainnet.base.org",),
            thresholds=thresholds(10, 60, "3"),
            defillama_name="Base",
        ),
        ChainConfig(
            name="bsc",
            chain_id=56,
            rpc_urls=("https://bsc-dataseed.bnbchain.org",),
            window_blocks=20,
            max_lag_blocks=40,
            millis_in_mixhash=True,
            thresholds=thresholds(5, 60, "1"),
            defillama_name="BSC",
        ),
    )


class LifiSettings(UpstreamSettings):
    """LIFI_*: LI.FI quotes. Without `LIFI_API_KEY`, 75 quotes per 2 h per IP (its current page;
    an older page said 200: set LIFI_BUDGET_REQUESTS=200 if that is what applies to you)."""

    model_config = SettingsConfigDict(env_prefix="LIFI_", extra="ignore", frozen=True)
    base_url: str = "https://li.quest"
    timeout_seconds: float = 15.0
    max_retries: int = 0  # a retry spends the 2-hour budget: the next cycle samples again instead
    rate_limit_per_minute: int = 10
    budget_requests: int = Field(default=75, gt=0)
    budget_window_seconds: int = Field(default=7200, gt=0)


class RelaySettings(UpstreamSettings):
    """RELAY_*: Relay quotes, 50 per minute (per key; the docs give no lower keyless figure)."""

    model_config = SettingsConfigDict(env_prefix="RELAY_", extra="ignore", frozen=True)
    base_url: str = "https://api.relay.link"
    timeout_seconds: float = 15.0
    max_retries: int = 0
    rate_limit_per_minute: int = 50
    budget_requests: int = Field(default=50, gt=0)
    budget_window_seconds: int = Field(default=60, gt=0)


class OneInchSettings(UpstreamSettings):
    """ONEINCH_*: 1inch Classic Swap quotes; a key is required (`ONEINCH_API_KEY`, Bearer), 1 request/s."""

    model_config = SettingsConfigDict(env_prefix="ONEINCH_", extra="ignore", frozen=True)
    base_url: str = "https://api.1inch.dev"
    timeout_seconds: float = 10.0
    max_retries: int = 0
    rate_limit_per_minute: int = 60
    budget_requests: int = Field(default=1, gt=0)
    budget_window_seconds: int = Field(default=1, gt=0)


def _token(chain_id: int, token: str, symbol: str, decimals: int) -> TokenSide:
    return TokenSide(chain_id=chain_id, token=token, symbol=symbol, decimals=decimals)


USDC_ETHEREUM = _token(1, "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", "USDC", 6)
USDT_ETHEREUM = _token(1, "0xdAC17F958D2ee523a2206206994597C13D831ec7", "USDT", 6)
WETH_ETHEREUM = _token(1, "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", "WETH", 18)
USDC_BASE = _token(8453, "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", "USDC", 6)
USDT_BSC = _token(56, "0x55d398326f99059fF775485246999027B3197955", "USDT", 18)  # 18 decimals on BSC


def _default_routes() -> tuple[BridgeRoute, ...]:
    return (
        BridgeRoute(
            name="ethereum-base-usdc",
            source=USDC_ETHEREUM,
            destination=USDC_BASE,
            amount=Decimal(1000),
            providers=("lifi", "relay"),
        ),
        BridgeRoute(
            name="ethereum-bsc-usdt",
            source=USDT_ETHEREUM,
            destination=USDT_BSC,
            amount=Decimal(1000),
            providers=("lifi", "relay"),
        ),
        BridgeRoute(
            name="ethereum-usdc-weth",
            source=USDC_ETHEREUM,
            destination=WETH_ETHEREUM,
            amount=Decimal(1000),
            providers=("oneinch",),
        ),
    )


class BridgeTolerances(BaseModel):
    """How far a route's estimate must move from the one last published to be news (relative)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    duration_relative: Decimal = Field(default=Decimal("0.25"), ge=0)
    output_relative: Decimal = Field(default=Decimal("0.005"), ge=0)
    fees_relative: Decimal = Field(default=Decimal("0.25"), ge=0)


class DefiLlamaSettings(UpstreamSettings):
    """DEFILLAMA_*: DefiLlama's free API (no key, no published numeric limit: a few calls per 5 minutes)."""

    model_config = SettingsConfigDict(env_prefix="DEFILLAMA_", extra="ignore", frozen=True)
    base_url: str = "https://api.llama.fi"
    timeout_seconds: float = 15.0
    max_retries: int = 1
    rate_limit_per_minute: int = 20


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

    bridge_routes: tuple[BridgeRoute, ...] = Field(default_factory=_default_routes)
    bridge_cycle_seconds: int = Field(default=120, gt=0)  # the bridge-latency-tick PingSource's cadence
    bridge_tolerances: BridgeTolerances = BridgeTolerances()
    lifi: LifiSettings = Field(default_factory=LifiSettings)
    relay: RelaySettings = Field(default_factory=RelaySettings)
    oneinch: OneInchSettings = Field(default_factory=OneInchSettings)
    defillama: DefiLlamaSettings = Field(default_factory=DefiLlamaSettings)
    # The overview is news when a chain's 24 h DEX volume moves more than this (relative).
    overview_volume_relative: Decimal = Field(default=Decimal("0.1"), ge=0)

    def provider_settings(self, provider: Provider) -> LifiSettings | RelaySettings | OneInchSettings:
        if provider == "lifi":
            return self.lifi
        return self.relay if provider == "relay" else self.oneinch

    def budget(self, provider: Provider) -> ProviderBudget:
        """The provider's request budget (its keyless limit unless configured otherwise)."""
        found = self.provider_settings(provider)
        return ProviderBudget(requests=found.budget_requests, window_seconds=found.budget_window_seconds)

    def bridge_plans(self) -> dict[Provider, ProviderPlan]:
        """Per provider, which routes it samples and how often (raises `BudgetTooSmall`)."""
        providers: tuple[Provider, ...] = ("lifi", "relay", "oneinch")
        return {
            p: plan(
                p,
                [r.name for r in self.bridge_routes if p in r.providers],
                self.budget(p),
                self.bridge_cycle_seconds,
            )
            for p in providers
        }

    @model_validator(mode="after")
    def _routes_fit(self) -> StatsSettings:
        names = [r.name for r in self.bridge_routes]
        if len(set(names)) != len(names):
            raise ValueError(f"bridge route names repeat: {sorted(n for n in set(names) if names.count(n) > 1)}")
        self.bridge_plans()  # refuse at startup what no rotation can fit
        return self
