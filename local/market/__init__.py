"""The simulated market: Binance, CoinGecko, DexScreener, GeckoTerminal and GoPlus, offline.

One local HTTP server speaks each API's real response format under its own path prefix,
with prices that move every second, injectable faults and request counters::

    from local.market import SimulatedMarket

    with SimulatedMarket(seed=7) as market:          # port 0: a free port
        market.env()["BINANCE_BASE_URL"]             # http://127.0.0.1:<port>/binance
        market.clock.freeze()                        # every API now quotes one fixed price
        expected = market.universe.price_usdt("BTC") # what Binance sends, exactly
        market.faults.add("429", api="binance", count=3, retry_after=1)
        market.stats.count("binance", "/api/v3/ticker/price")

Run it on its own with `python -m local.market --port 8090`; README.md in this folder
describes the universe, the endpoints, the admin API and every choice made where the
real APIs' behaviour is not recorded.
"""

from local.market.faults import FAULT_KINDS, Fault, FaultInjector
from local.market.server import ENV_NAMES, SimulatedMarket, wait_until_serving
from local.market.universe import Contract, Token, Universe

__all__ = [
    "ENV_NAMES",
    "FAULT_KINDS",
    "Contract",
    "Fault",
    "FaultInjector",
    "SimulatedMarket",
    "Token",
    "Universe",
    "wait_until_serving",
]
