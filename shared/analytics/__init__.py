"""Gold layer: OHLC candles, per-token KPIs and volatility (docs/data-layers.md).

Candles are folded from the ticks `shared.db.store.insert_prices` queues, shortly after
each price job commits (`store.fold_candle_ticks`, db/migrations/0004_deferred_candles.sql);
this package reads them: `candles`, `kpis`, `volatility`. Every read is a primary-key range
scan of `token_candles`, never a scan of `token_prices`.
"""

from shared.analytics.gold import (
    RESOLUTIONS,
    Candle,
    Kpis,
    Volatility,
    candles,
    kpis,
    resolution_width,
    volatility,
)

__all__ = ["RESOLUTIONS", "Candle", "Kpis", "Volatility", "candles", "kpis", "resolution_width", "volatility"]
