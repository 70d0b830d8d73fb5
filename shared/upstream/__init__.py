"""Upstream API clients on one resilient HTTP layer.

`UpstreamClients.from_settings(settings)` builds one client per API, lazily, so a
function only opens connections to the APIs it uses. Clients return JSON with every
fractional number as `Decimal`; normalizers in `shared.crawler.domain` make domain records.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx

from shared.config import Settings

from .binance import BinanceClient
from .coingecko import CoinGeckoClient
from .dexscreener import DexScreenerClient
from .events import EventKind, EventSink, UpstreamEvent
from .finnhub import FinnhubClient
from .geckoterminal import GeckoTerminalClient
from .goplus import GoPlusClient
from .http import UpstreamHttp

__all__ = [
    "BinanceClient",
    "CoinGeckoClient",
    "DexScreenerClient",
    "EventKind",
    "EventSink",
    "FinnhubClient",
    "GeckoTerminalClient",
    "GoPlusClient",
    "UpstreamClients",
    "UpstreamEvent",
    "UpstreamHttp",
]


class UpstreamClients:
    """The upstream clients of one process, built on first use and shared by all threads."""

    def __init__(self, settings: Settings, **http_options: Any):
        """`http_options` go to every `UpstreamHttp` (transport, on_event, clock, wall_clock, sleep)."""
        self._settings = settings
        self._http_options = http_options
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        transport: httpx.BaseTransport | None = None,
        on_event: EventSink | None = None,
        **http_options: Any,
    ) -> UpstreamClients:
        """Clients for every upstream API, configured from `settings`."""
        return cls(settings, transport=transport, on_event=on_event, **http_options)

    @property
    def binance(self) -> BinanceClient:
        return self._get("binance", lambda: BinanceClient.from_settings(self._settings.binance, **self._http_options))

    @property
    def coingecko(self) -> CoinGeckoClient:
        return self._get(
            "coingecko", lambda: CoinGeckoClient.from_settings(self._settings.coingecko, **self._http_options)
        )

    @property
    def dexscreener(self) -> DexScreenerClient:
        return self._get(
            "dexscreener", lambda: DexScreenerClient.from_settings(self._settings.dexscreener, **self._http_options)
        )

    @property
    def geckoterminal(self) -> GeckoTerminalClient:
        return self._get(
            "geckoterminal",
            lambda: GeckoTerminalClient.from_settings(self._settings.geckoterminal, **self._http_options),
        )

    @property
    def goplus(self) -> GoPlusClient:
        return self._get("goplus", lambda: GoPlusClient.from_settings(self._settings.goplus, **self._http_options))

    @property
    def finnhub(self) -> FinnhubClient:
        return self._get("finnhub", lambda: FinnhubClient.from_settings(self._settings.finnhub, **self._http_options))

    def breaker_states(self) -> dict[str, str]:
        """Breaker state of each client built so far, e.g. {"binance": "closed"} (for health/metrics)."""
        with self._lock:
            return {name: client.http.breaker_state for name, client in self._clients.items()}

    def close(self) -> None:
        """Close every client's connections."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.http.close()

    def _get(self, name: str, build: Any) -> Any:
        with self._lock:
            client = self._clients.get(name)
            if client is None:
                client = self._clients[name] = build()
            return client
