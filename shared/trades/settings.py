"""TRADES_* settings of the trade system: topics, the bearer-token key, limits (docs/trades.md).

Immutable, read from the environment once per process (`trades_settings(resources)` keeps
them with the process's other resources); tests build their own `TradesSettings(...)`.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.runtime.resources import Resources

# HS256 wants a key at least as long as its hash (RFC 7518 §3.2): 32 bytes.
MIN_TOKEN_KEY_BYTES = 32


class TradesSettings(BaseSettings):
    """Field `x` is read from env var `TRADES_X`."""

    model_config = SettingsConfigDict(env_prefix="TRADES_", extra="ignore", frozen=True)

    # --- topics (DESIGN.md §9: names and retention from the original; overridable for tests) ---
    raw_topic: str = "raw-trades"
    normalized_topic: str = "normalized-trades"
    enriched_topic: str = "enriched-trades"
    alerts_topic: str = "behavioral-alerts"

    # --- bearer tokens: HS256 JWTs signed with this key; the subject is the user id ------------
    # From a Kubernetes Secret (trades-auth) or the environment; never logged (registered as a
    # secret with the log redaction), never in a message. Empty: every request is 401.
    token_key: SecretStr = SecretStr("")
    token_audience: str = "trades-api"
    token_issuer: str = ""  # when set, tokens must carry this `iss`
    token_leeway_seconds: float = Field(default=30.0, ge=0)

    # --- limits --------------------------------------------------------------------------------
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_batch_trades: int = Field(default=1000, ge=1)
    # A CSV import is read within its request up to this size (a streamed import job is not built yet).
    max_import_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    default_page_size: int = Field(default=100, ge=1)
    max_page_size: int = Field(default=1000, ge=1)
    # A trade time later than its arrival plus this is refused as in the future.
    max_clock_skew_seconds: float = Field(default=300.0, ge=0)
    # Quote assets the pnl's fee rule recognises at the end of a symbol (shared/trades/pairing.py).
    quote_assets: str = "FDUSD,USDT,USDC,BUSD,TUSD,USDE,DAI,USD,EUR,TRY,BRL,BTC,ETH,BNB"

    # --- enrichment (shared/trades/enrich.py) -------------------------------------------------
    # A leg's market price is the crawler observation nearest its time within this tolerance.
    enrich_price_tolerance_seconds: float = Field(default=60.0, gt=0)
    # Slippage is computed only for trades quoted in the crawler's own quote asset.
    enrich_market_quote: str = "USDT"
    enrich_volatility_resolution: str = "1h"
    enrich_volatility_periods: int = Field(default=24, ge=2)
    # Trades waiting for a market price re-enriched per crawler price event, at most.
    enrich_pending_batch: int = Field(default=200, ge=1)

    # --- the WebSocket feed (trade_feed): how often an idle connection polls trade_feed, and
    # how many items one read sends at most (a long backlog goes out in reads of this size).
    feed_poll_seconds: float = Field(default=0.5, gt=0, le=30)
    feed_batch_items: int = Field(default=200, ge=1, le=5000)
    # The feed's base URL as a browser reaches it (ws:// or wss://), for the journal page; empty:
    # the page's own host on port 8097 (`make up`).
    feed_url: str = Field(default="", pattern=r"^(wss?://[A-Za-z0-9.\-:\[\]]+(/[A-Za-z0-9._~\-/]*)?)?$")

    # --- alerts (shared/trades/behaviour.py; defaults documented in docs/trades.md) ----------
    alert_overtrading_trades: int = Field(default=10, ge=2)
    alert_overtrading_window_minutes: float = Field(default=60.0, gt=0)
    alert_revenge_window_minutes: float = Field(default=15.0, gt=0)
    alert_size_multiple: Decimal = Field(default=Decimal(3), gt=1)
    alert_size_history: int = Field(default=20, ge=1)
    alert_size_min_history: int = Field(default=5, ge=1)
    alert_max_tax: Decimal = Field(default=Decimal("0.10"), ge=0)
    alert_off_market_bps: Decimal = Field(default=Decimal(200), gt=0)

    @model_validator(mode="after")
    def _size_history_fits(self) -> TradesSettings:
        if self.alert_size_min_history > self.alert_size_history:
            raise ValueError(
                "TRADES_ALERT_SIZE_MIN_HISTORY cannot exceed TRADES_ALERT_SIZE_HISTORY: the rule would never run"
            )
        return self

    @property
    def quote_asset_list(self) -> tuple[str, ...]:
        return tuple(a.strip().upper() for a in self.quote_assets.split(",") if a.strip())


def trades_settings(resources: Resources) -> TradesSettings:
    """The process's trade settings (read once; a test may put its own under the same name first)."""
    return resources.once("trades_settings", TradesSettings)
