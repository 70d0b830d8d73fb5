"""Typed configuration, read from the environment.

Every address, key, timeout, retry and rate limit is an environment variable with a
documented default (see README "Configuration"). Nothing else in the code base
hard-codes an address. Settings are immutable values, read once per process
(`get_settings()`) and passed in; each upstream API's settings are a field of their own
(`Settings().binance`, read from `BINANCE_*`). Tests build their own `Settings(...)` (or
`settings.model_copy(update=...)`) instead of mutating the environment or a value.
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import cached_property, lru_cache
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_STABLECOINS = (
    "USDT,USDC,DAI,FDUSD,TUSD,USDE,USDS,PYUSD,USDD,BUSD,USDP,GUSD,FRAX,LUSD,SUSD,"
    "USD1,RLUSD,USDB,USDX,CRVUSD,GHO,EURC,EURT,USD0,WETH"
)
# A bridged or wrapped variant of a listed stablecoin: an optional bridge prefix (axlUSDC,
# ceUSDC, multiUSDT, whUSDC, soUSDT), the listed symbol as `base`, an optional bridge or
# chain suffix after a separator (USDC.e, USDT.e, USDC.wh, DAI.b, USDT_BSC; never a bare
# letter: sUSDe is no bridged sUSD). Matched on the upper-cased symbol.
DEFAULT_STABLECOIN_VARIANT_PATTERN = (
    r"(?:AXL|CE|CEL|MULTI|ANY|WH|SO|BRIDGED)?(?P<base>[A-Z0-9]+?)"
    r"(?:[._-](?:E|B|WH|AXL|CEL|SOL|ETH|BSC|BNB|ARB|OP|BASE|POLY|MATIC|AVAX|LZ|STG))?"
)
# CoinGecko categories (a coin's /coins/{id} `categories`, our `tags`) that make a stablecoin.
DEFAULT_STABLECOIN_CATEGORIES = (
    "Stablecoins,USD Stablecoin,EUR Stablecoin,Bridged Stablecoins,Bridged USDC,Bridged USDT,Bridged DAI,"
    "Fiat-backed Stablecoin,Crypto-backed Stablecoin,Algorithmic Stablecoin"
)


class UpstreamSettings(BaseSettings):
    """Budget and behaviour of one upstream API; each subclass reads its own env prefix."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    base_url: str = ""
    timeout_seconds: float = 10.0
    max_retries: int = 3
    backoff_initial_seconds: float = 0.2
    backoff_max_seconds: float = 5.0
    rate_limit_per_minute: int = 60
    breaker_failure_threshold: int = 5
    breaker_reset_seconds: float = 30.0
    # Longest in-process wait for a rate limit or Retry-After; longer -> RateLimited (429, Kafka redelivers).
    max_wait_seconds: float = 5.0
    # Longest hold a Retry-After (429/503/418) may impose: a bogus "99999999" would otherwise
    # silence the API until the process restarts. Longer values are cut to this, and logged.
    retry_after_max_seconds: float = Field(default=900.0, gt=0)
    # HTTP 403 as a temporary block (Binance's WAF), not a permanent refusal: calls are held
    # for a backoff doubling per consecutive 403 from the initial value up to the max.
    forbidden_is_block: bool = False
    block_backoff_initial_seconds: float = Field(default=30.0, gt=0)
    block_backoff_max_seconds: float = Field(default=900.0, gt=0)
    api_key: str = ""


# Documented limits are in tests/fixtures/upstream/INDEX.md; the defaults stay below them.
class BinanceSettings(UpstreamSettings):
    """BINANCE_*: Binance Spot REST (weight budget 6000/min per IP, tracked from headers)."""

    model_config = SettingsConfigDict(env_prefix="BINANCE_", extra="ignore")
    base_url: str = "https://api.binance.com"
    rate_limit_per_minute: int = 1200
    weight_limit_per_minute: int = 6000
    weight_safety_fraction: float = 0.8
    # Longest encoded `symbols=[...]` value of one ticker request; more pairs -> one every-pair request.
    symbols_query_max_chars: int = Field(default=6000, ge=100)
    # Binance answers 403 when its WAF limit is violated (docs: "HTTP 403 ... WAF Limit"): it lifts.
    forbidden_is_block: bool = True


class CoinGeckoSettings(UpstreamSettings):
    """COINGECKO_*: CoinGecko aggregated API (keyless 5-30 calls/min; plan for the lower)."""

    model_config = SettingsConfigDict(env_prefix="COINGECKO_", extra="ignore")
    base_url: str = "https://api.coingecko.com"
    rate_limit_per_minute: int = 25


class DexScreenerSettings(UpstreamSettings):
    """DEXSCREENER_*: DexScreener (300/min pair endpoints, 60/min profiles and boosts)."""

    model_config = SettingsConfigDict(env_prefix="DEXSCREENER_", extra="ignore")
    base_url: str = "https://api.dexscreener.com"
    rate_limit_per_minute: int = 280
    profiles_rate_limit_per_minute: int = 55


class GeckoTerminalSettings(UpstreamSettings):
    """GECKOTERMINAL_*: GeckoTerminal public API (30 calls/min)."""

    model_config = SettingsConfigDict(env_prefix="GECKOTERMINAL_", extra="ignore")
    base_url: str = "https://api.geckoterminal.com"
    rate_limit_per_minute: int = 28


class GoPlusSettings(UpstreamSettings):
    """GOPLUS_*: GoPlus token security (no documented limit; 4029 observed after a burst)."""

    model_config = SettingsConfigDict(env_prefix="GOPLUS_", extra="ignore")
    base_url: str = "https://api.gopluslabs.io"
    rate_limit_per_minute: int = 30
    batch_size: int = 1
    # 4029 ("too many requests") comes without Retry-After; its limit is counted per minute
    # (observed), so the API is left alone this long — waiting via Kafka redelivery beats
    # hammering it with in-process retries.
    too_frequent_hold_seconds: float = Field(default=60.0, ge=0)


class FinnhubSettings(UpstreamSettings):
    """FINNHUB_*: Finnhub stock quotes (free plan 60 calls/min, and at most 30/s on every plan).

    `FINNHUB_API_KEY` travels in the `X-Finnhub-Token` header, never in a URL or a log line.
    """

    model_config = SettingsConfigDict(env_prefix="FINNHUB_", extra="ignore")
    base_url: str = "https://finnhub.io"
    rate_limit_per_minute: int = 60
    rate_limit_per_second: int = Field(default=30, ge=1)
    # A 429 means the minute's budget is spent: asking again within the tick does not help.
    max_retries: int = 1


class BybitSettings(UpstreamSettings):
    """BYBIT_*: Bybit v5 REST (600 requests/5 s per IP; /v5/execution/list 50/s per UID).

    Keys are per linked account (TRADES_EXCHANGE_CREDENTIALS), never here.
    """

    model_config = SettingsConfigDict(env_prefix="BYBIT_", extra="ignore")
    base_url: str = "https://api.bybit.com"
    rate_limit_per_minute: int = 600
    # retCode 10006 ("Too many visits!") carries no Retry-After; the per-UID window is a second.
    too_many_visits_hold_seconds: float = Field(default=1.0, ge=0)


class Settings(BaseSettings):
    """Process-wide settings. Field `x` is read from env var `X` unless stated."""

    model_config = SettingsConfigDict(extra="ignore", env_nested_delimiter=None, frozen=True)

    # --- infrastructure -------------------------------------------------------------
    kafka_bootstrap_servers: str = "localhost:9092"
    database_url: str = "postgresql://crawler:crawler@localhost:15432/price_crawler"
    # One connection per request thread (functions-framework runs THREADS, default 4 per CPU,
    # i.e. 8 here): with 4, a tick's jobs queued for a connection (13 % of their time at 1,000 tokens).
    db_pool_size: int = 8
    db_connect_timeout_seconds: float = 5.0
    # Queued ticks are folded into the gold candles this long after a price job commits
    # (shared/crawler/candle_fold.py): after a tick's burst of jobs, not inside it.
    candle_fold_delay_seconds: float = Field(default=1.0, ge=0)

    # --- topics (the published contract; overridable only for isolated tests) -------------
    price_topic: str = "price-crawler.price.request"
    metadata_topic: str = "price-crawler.metadata.request"
    audit_topic: str = "price-crawler.audit.request"
    price_updated_topic: str = "price-crawler.price.updated"
    # Where the deadletter function forwards each dead letter it stored (the replay CLI reads them).
    price_dead_letter_topic: str = "price-crawler.price.dead-letter"
    metadata_dead_letter_topic: str = "price-crawler.metadata.dead-letter"
    audit_dead_letter_topic: str = "price-crawler.audit.dead-letter"
    # A forward waits this long for Kafka; a dead letter is answered 2xx after it either way
    # (it is safe in PostgreSQL), so a broker outage never holds the dead-letter delivery.
    dead_letter_forward_timeout_seconds: float = Field(default=5.0, gt=0)
    # Pending dead letters forwarded per dead letter received (the oldest first).
    dead_letter_forward_batch: int = Field(default=100, ge=1)
    # An outbox event (shared/crawler/event_outbox.py) still unconfirmed this long after it was
    # staged was left by a job that died or gave up: the next price job publishes it. Above the
    # publish timeout (30 s), so a job still waiting for its own confirmation is left alone.
    event_outbox_drain_after_seconds: float = Field(default=60.0, gt=0)
    event_outbox_drain_batch: int = Field(default=100, ge=1)
    # The price KafkaSource's consumer group; its lag tells the scheduler to skip a tick.
    price_consumer_group: str = "price-crawler-price"
    # Skip a tick while more than this many ticks' worth of price jobs are still queued.
    scheduler_max_backlog_ticks: int = 1

    # --- function endpoints (local runs) ---------------------------------------------------
    price_function_url: str = "http://localhost:8081"
    metadata_function_url: str = "http://localhost:8082"
    audit_function_url: str = "http://localhost:8083"
    scheduler_function_url: str = "http://localhost:8084"
    deadletter_function_url: str = "http://localhost:8086"
    trade_normalizer_function_url: str = "http://localhost:8088"
    trade_enricher_function_url: str = "http://localhost:8093"
    trade_analyser_function_url: str = "http://localhost:8094"
    stats_function_url: str = "http://localhost:8092"
    stocks_function_url: str = "http://localhost:8095"
    trade_sync_function_url: str = "http://localhost:8096"

    # --- business rules --------------------------------------------------------------------
    stablecoins: str = Field(default=DEFAULT_STABLECOINS, description="comma-separated symbols never priced")
    stablecoin_variant_pattern: str = Field(
        default=DEFAULT_STABLECOIN_VARIANT_PATTERN,
        description="regex of a bridged/wrapped variant; its `base` group must be a listed stablecoin",
    )
    stablecoin_categories: str = Field(
        default=DEFAULT_STABLECOIN_CATEGORIES, description="comma-separated CoinGecko categories of stablecoins"
    )
    top100_size: int = 100
    price_stale_after_seconds: float = 30.0
    # A tick is routed by the source that priced each token last (shared/crawler/domain/schedule.py):
    # tokens never priced go in rank batches of this size...
    top100_price_batch_size: int = 100
    # ...DexScreener tokens in jobs of this many per chain (a multiple of its 30-address batch)...
    top100_price_dex_job_size: int = Field(default=90, ge=1)
    # ...and the Binance and CoinGecko tokens in one job each, up to this size.
    top100_price_routed_job_size: int = Field(default=5000, ge=1)
    trending_batch_size: int = 30
    trending_set_size: int = 30
    # A token audited more recently than this is not sent to GoPlus again (its budget is small).
    audit_refresh_seconds: float = 3600.0
    # A top-100 refresh requested sooner than this after the last one is skipped (coalesced).
    metadata_min_refresh_seconds: float = 600.0
    usdt_usd_max_age_seconds: float = 120.0
    # Plausibility (docs/pricing.md): a price more than this many times above or below the
    # token's last stored price is held back as suspect, not served...
    price_max_jump_ratio: Decimal = Field(default=Decimal("10"), gt=1)
    # ...and so is one this many times off a price another source gave within the window.
    price_max_source_spread_ratio: Decimal = Field(default=Decimal("3"), gt=1)
    price_same_tick_seconds: float = Field(default=60.0, ge=0)
    # A last price older than this is no reference: a genuine jump is held back at most this long.
    price_reference_max_age_seconds: float = Field(default=900.0, gt=0)
    # Never assumed 1 (a USD price is not a USDT price): if set, this fixed rate is used instead of a live one.
    usdt_usd_rate_override: Decimal | None = None
    job_max_body_bytes: int = 256 * 1024
    job_max_symbols: int = 5000

    # --- retention ----------------------------------------------------------------------------
    token_prices_retention_days: int = 7
    job_logs_retention_days: int = 14

    # --- bronze archive (docs/data-layers.md): every raw upstream response in S3 ---------------
    archive_enabled: bool = False
    s3_endpoint_url: str | None = None  # unset: AWS itself; locally the moto server of `make up`
    s3_bucket: str = "price-crawler-bronze"
    s3_region: str = "us-east-1"  # credentials: the standard AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY chain
    archive_prefix: str = "bronze"
    archive_timeout_seconds: float = 2.0  # per S3 call; an archive failure never fails a crawl
    archive_create_bucket: bool = True  # create the bucket on first use when missing (local, tests)

    # --- observability -----------------------------------------------------------------------
    log_level: str = "INFO"
    function_name: str = Field(default="", validation_alias="K_SERVICE")
    # LOG_FORMAT: console (short coloured lines), json (one object per line), auto (console on a terminal).
    log_format: Literal["auto", "console", "json"] = "auto"
    # Spans are exported (shared/observability/traces.py) only when an OTLP endpoint is set; the standard names.
    otel_exporter_otlp_endpoint: str = ""
    otel_exporter_otlp_traces_endpoint: str = ""
    otel_service_name: str = ""
    otel_sdk_disabled: bool = False

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_log_format(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    # --- upstream APIs: each from its own BINANCE_* / COINGECKO_* / ... variables -------------
    binance: BinanceSettings = Field(default_factory=BinanceSettings)
    coingecko: CoinGeckoSettings = Field(default_factory=CoinGeckoSettings)
    dexscreener: DexScreenerSettings = Field(default_factory=DexScreenerSettings)
    geckoterminal: GeckoTerminalSettings = Field(default_factory=GeckoTerminalSettings)
    goplus: GoPlusSettings = Field(default_factory=GoPlusSettings)
    finnhub: FinnhubSettings = Field(default_factory=FinnhubSettings)

    def with_upstream(self, api: str, **changes: Any) -> Settings:
        """A copy in which upstream API `api` ("binance", "coingecko", ...) has `changes` applied."""
        current: UpstreamSettings = getattr(self, api)
        return self.model_copy(update={api: current.model_copy(update=changes)})

    @field_validator("stablecoins")
    @classmethod
    def _normalise_stablecoins(cls, value: str) -> str:
        return ",".join(s.strip().upper() for s in value.split(",") if s.strip())

    @cached_property  # asked once per symbol of a job: parsing the list each time was 4 % of price CPU
    def stablecoin_symbols(self) -> frozenset[str]:
        """The configured stablecoin symbols, upper-case."""
        return frozenset(self.stablecoins.split(","))

    @cached_property
    def stablecoin_variant_regex(self) -> re.Pattern[str] | None:
        """`stablecoin_variant_pattern` compiled (None when set empty: no variant rule)."""
        return re.compile(self.stablecoin_variant_pattern) if self.stablecoin_variant_pattern else None

    @cached_property
    def stablecoin_category_names(self) -> frozenset[str]:
        """The configured stablecoin categories, lower-case."""
        return frozenset(c.strip().lower() for c in self.stablecoin_categories.split(",") if c.strip())


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment once."""
    return Settings()
