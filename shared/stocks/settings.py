"""Settings of the stock system, from `STOCKS_*` environment variables (immutable, passed in).

Finnhub itself (key, base URL, budgets) is `FINNHUB_*` (`shared.config.FinnhubSettings`).
"""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .normalize_finnhub import QuoteRules
from .symbols import DEFAULT_SYMBOLS, parse_symbol_list

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# The source tree's dbt project; a kn func image has no source tree and carries a copy inside
# the package (scripts/prepare_function.py writes shared/stocks/dbt_project/).
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt" / "stocks"
PACKAGED_DBT_PROJECT_DIR = Path(__file__).resolve().parent / "dbt_project"
# `make setup` installs dbt in a virtual environment of its own (scripts/setup.sh: dbt-core
# pins pathspec below what the dev tools need); a deployed image has it on PATH.
LOCAL_DBT = PROJECT_ROOT / ".venv-dbt" / "bin" / "dbt"


class StockSettings(BaseSettings):
    """Symbols, tick cadence, quote bounds, the output topic and the dbt gold run."""

    model_config = SettingsConfigDict(env_prefix="STOCKS_", extra="ignore", frozen=True)

    # Comma-separated tickers (STOCKS_SYMBOLS=AAPL,MSFT); the original's five by default.
    symbols: str = ",".join(DEFAULT_SYMBOLS)
    quotes_topic: str = "stock-quotes"
    # The PingSource's period (stock-quotes-tick, every 6 s): with Finnhub's per-minute budget
    # it fixes how many symbols one tick may ask for (the rest wait for the next ticks).
    tick_seconds: int = Field(default=6, ge=1, le=60)
    max_price: Decimal = Field(default=QuoteRules().max_price, gt=0)
    max_clock_skew_seconds: float = Field(default=300.0, ge=0)
    # --- gold (dbt) ---------------------------------------------------------------------------
    dbt_executable: str = ""  # empty: .venv-dbt/bin/dbt when present, else `dbt` on PATH
    dbt_project_dir: str = str(DBT_PROJECT_DIR if DBT_PROJECT_DIR.is_dir() else PACKAGED_DBT_PROJECT_DIR)
    # Where dbt writes its target/ and logs/: never the source tree (empty: a temporary directory).
    dbt_work_dir: str = ""
    # The schema dbt builds gold in, and the one holding silver's stock_quotes.
    gold_schema: str = Field(default="stocks_gold", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    silver_schema: str = Field(default="public", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    # A quote tick that stored new quotes also asks for a build (shared/stocks/gold_runner.py),
    # at most one start per this interval: gold then trails a quote by about interval + build.
    gold_after_new_quotes: bool = True
    gold_min_interval_seconds: float = Field(default=5.0, ge=0)
    dbt_threads: int = Field(default=2, ge=1, le=16)
    dbt_timeout_seconds: float = Field(default=300.0, gt=0)
    # The function builds in one long-lived dbt process (shared/stocks/dbt_worker.py) instead of
    # a fresh `dbt` per build: dbt's import and project load are most of a build (gold.py).
    dbt_worker: bool = True

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, value: str) -> str:
        if not parse_symbol_list(value):
            raise ValueError("STOCKS_SYMBOLS names no symbol")
        return value

    @property
    def symbol_list(self) -> tuple[str, ...]:
        return parse_symbol_list(self.symbols)

    @property
    def rules(self) -> QuoteRules:
        from datetime import timedelta

        return QuoteRules(max_price=self.max_price, max_clock_skew=timedelta(seconds=self.max_clock_skew_seconds))

    def dbt_command(self) -> str:
        """The dbt to run: STOCKS_DBT_EXECUTABLE, else .venv-dbt's, else the one installed beside
        this interpreter (a kn func image installs dbt into the function's own environment,
        scripts/prepare_function.py), else `dbt` on PATH (the function-dbt image's /opt/dbt)."""
        if self.dbt_executable:
            return self.dbt_executable
        if LOCAL_DBT.exists():
            return str(LOCAL_DBT)
        beside = Path(sys.executable).parent / "dbt"
        return str(beside) if beside.exists() else "dbt"
