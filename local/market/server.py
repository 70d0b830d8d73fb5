"""The simulated market's HTTP server: one port, one path prefix per API, faults and stats.

    /binance/...  /coingecko/...  /dexscreener/...  /geckoterminal/...  /goplus/...  /finnhub/...  /rpc/{node}
    /lifi/...  /relay/...  /oneinch/...  /defillama/...  /_sim/...

A base URL is everything before the API's own path, e.g. BINANCE_BASE_URL =
http://127.0.0.1:8090/binance for GET http://127.0.0.1:8090/binance/api/v3/ticker/price.

The server is the standard library's ThreadingHTTPServer (a thread per connection, HTTP/1.1
keep-alive): no dependency, and a few hundred requests per second on two cores is far below
what it handles; a held `timeout` fault only parks one thread.
"""

from __future__ import annotations

import logging
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from local.market.admin import AdminApi
from local.market.apis.base import Api, ApiError, Request, Response, json_response
from local.market.apis.binance import BinanceApi, WeightLimiter
from local.market.apis.binance_account import BinanceAccountRoutes, ExchangeAccounts
from local.market.apis.bridges import LifiApi, OneInchApi, RelayApi
from local.market.apis.bybit import BybitApi
from local.market.apis.coingecko import CoinGeckoApi
from local.market.apis.defillama import DefiLlamaApi
from local.market.apis.dexscreener import DexScreenerApi
from local.market.apis.evm_rpc import EvmRpcApi
from local.market.apis.finnhub import FinnhubApi
from local.market.apis.geckoterminal import GeckoTerminalApi
from local.market.apis.goplus import GoPlusApi
from local.market.clock import SimClock
from local.market.faults import BODY_KINDS, FaultInjector, hostile_body
from local.market.prices import DEFAULT_USDT_USD
from local.market.stats import RequestStats
from local.market.universe import DEFAULT_SEED, DEFAULT_SIZE, Universe

log = logging.getLogger("local.market")

ENV_NAMES = {
    "binance": "BINANCE_BASE_URL",
    "coingecko": "COINGECKO_BASE_URL",
    "dexscreener": "DEXSCREENER_BASE_URL",
    "geckoterminal": "GECKOTERMINAL_BASE_URL",
    "goplus": "GOPLUS_BASE_URL",
    "finnhub": "FINNHUB_BASE_URL",
    "bybit": "BYBIT_BASE_URL",
    "lifi": "LIFI_BASE_URL",
    "relay": "RELAY_BASE_URL",
    "oneinch": "ONEINCH_BASE_URL",
    "defillama": "DEFILLAMA_BASE_URL",
}
_MALFORMED_BODY = b'{"simulated": "malformed",, "body": [1, 2'
_CHALLENGE_PAGE = (
    b"<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>simulated challenge</body></html>"
)


class SimulatedMarket:
    """Binance, CoinGecko, DexScreener, GeckoTerminal, GoPlus and Finnhub on one local port.

    Use as a context manager (or `start()` / `stop()`); `port=0` picks a free port.
    `universe`, `clock`, `faults` and `stats` are the in-process equivalents of /_sim/.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = DEFAULT_SEED,
        universe_size: int = DEFAULT_SIZE,
        usdt_usd: Decimal = DEFAULT_USDT_USD,
        latency_ms: int = 0,
        binance_weight_limit: int = 6000,
        binance_ban_after_429s: int = 5,
        binance_ban_seconds: int = 120,
        access_log: bool = False,
        fills_per_minute: float = 0.0,
    ) -> None:
        self.universe = Universe(seed=seed, size=universe_size, usdt_usd=usdt_usd)
        self.clock = SimClock()
        self.faults = FaultInjector()
        self.stats = RequestStats()
        self.binance_weight = WeightLimiter(binance_weight_limit, binance_ban_after_429s, binance_ban_seconds)
        self.latency_ms = 0
        self.configure(latency_ms=latency_ms)
        self.access_log = access_log
        # Users' exchange accounts (Binance myTrades, Bybit execution list): binance_account.py.
        self.exchange_accounts = ExchangeAccounts(self.universe, fills_per_minute)
        self.apis: dict[str, Api] = {
            api.name: api
            for api in (
                BinanceApi(self.universe, self.clock, self.binance_weight),
                CoinGeckoApi(self.universe, self.clock),
                DexScreenerApi(self.universe, self.clock),
                GeckoTerminalApi(self.universe, self.clock),
                GoPlusApi(self.universe, self.clock),
                FinnhubApi(self.universe, self.clock),
                EvmRpcApi(self.universe, self.clock),
                LifiApi(self.universe, self.clock),
                RelayApi(self.universe, self.clock),
                OneInchApi(self.universe, self.clock),
                DefiLlamaApi(self.universe, self.clock),
                BybitApi(self.universe, self.clock, self.exchange_accounts),
            )
        }
        BinanceAccountRoutes(self.exchange_accounts, self.apis["binance"])
        self.admin = AdminApi(self)
        self._stopping = threading.Event()
        self._serving = False
        self._httpd = _MarketHTTPServer((host, port), _Handler, self)
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return self._httpd.server_address[0]

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """http://host:port of the market."""
        return f"http://{self.host}:{self.port}"

    def base_url(self, api: str) -> str:
        """The base URL to configure a client of `api` with (everything before /api/...)."""
        if api not in self.apis:
            raise KeyError(f"unknown api {api!r}; expected one of {', '.join(self.apis)}")
        return f"{self.url}/{api}"

    def env(self) -> dict[str, str]:
        """BINANCE_BASE_URL, COINGECKO_BASE_URL, ... pointing at this market."""
        return {variable: self.base_url(api) for api, variable in ENV_NAMES.items()}

    def start(self) -> SimulatedMarket:
        """Serve in a background daemon thread; returns self."""
        if self._thread is None:
            self._serving = True
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.1},
                name=f"simulated-market-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until `stop()` is called from another one (or Ctrl-C)."""
        self._serving = True
        try:
            self._httpd.serve_forever(poll_interval=0.2)
        finally:
            self._serving = False

    def stop(self) -> None:
        """Stop serving, release held `timeout` connections and close the socket. Idempotent."""
        self._stopping.set()
        if self._serving:
            self._httpd.shutdown()  # returns once the serving loop has exited
            self._serving = False
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> SimulatedMarket:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- configuration ---------------------------------------------------------------------------

    def configure(
        self,
        latency_ms: int | None = None,
        binance_weight_limit: int | None = None,
        binance_ban_after_429s: int | None = None,
        binance_ban_seconds: int | None = None,
        binance_reset_weight: bool = False,
    ) -> None:
        """Change market-wide behaviour at run time; ValueError names a bad value."""
        for name, value in (
            ("latency_ms", latency_ms),
            ("binance_weight_limit", binance_weight_limit),
            ("binance_ban_after_429s", binance_ban_after_429s),
            ("binance_ban_seconds", binance_ban_seconds),
        ):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if latency_ms is not None:
            self.latency_ms = latency_ms
        if binance_weight_limit is not None:
            self.binance_weight.limit = binance_weight_limit
        if binance_ban_after_429s is not None:
            self.binance_weight.ban_after_429s = binance_ban_after_429s
        if binance_ban_seconds is not None:
            self.binance_weight.ban_seconds = binance_ban_seconds
        if binance_reset_weight:
            self.binance_weight.reset()

    def config(self) -> dict[str, Any]:
        """Current market-wide settings, JSON-ready."""
        return {
            "latency_ms": self.latency_ms,
            "binance_weight_limit": self.binance_weight.limit,
            "binance_ban_after_429s": self.binance_weight.ban_after_429s,
            "binance_ban_seconds": self.binance_weight.ban_seconds,
            "binance_used_weight": self.binance_weight.used(),
            "seed": self.universe.seed,
            "universe_size": self.universe.size,
            "usdt_usd": str(self.universe.prices.usdt_usd),
        }

    # --- request handling ------------------------------------------------------------------------

    def handle(self, handler: _Handler) -> None:
        """Answer one HTTP request (called on the connection's thread)."""
        parts = urlsplit(handler.path)
        prefix, _, rest = parts.path.lstrip("/").partition("/")
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        request = Request(handler.command, "/" + unquote(rest), parts.query, dict(handler.headers.items()), body)
        if prefix == "_sim":
            _send(handler, self.admin.handle(request))
            return
        api = self.apis.get(prefix)
        if api is None:
            _send(
                handler,
                json_response(
                    {"error": f"unknown API prefix /{prefix}; serving /" + ", /".join(self.apis) + " and /_sim"}, 404
                ),
            )
            return
        matched = api.match(request.method, request.path)
        route = matched[0] if matched else None
        self.stats.record_request(api.name, request.path, route.template if route else request.path)
        fault = self.faults.take(api.name, request.path, route.template if route else request.path)
        delay_ms = self.latency_ms + (fault.latency_ms if fault and fault.kind == "slow" else 0)
        if delay_ms and self._stopping.wait(delay_ms / 1000):
            return
        if fault is not None and fault.kind == "timeout":
            self.stats.record_outcome(api.name, "timeout")
            self._stopping.wait(fault.hold_seconds)  # hold the connection, then drop it without a response
            handler.close_connection = True
            return
        if fault is not None and fault.status is not None:
            response = api.error_response(fault.status, fault.retry_after)
        else:
            response = self._call(api, request, matched)
        response = api.finalize(request, route, response)
        if fault is not None and fault.kind in BODY_KINDS:
            self._send_damaged(handler, api, response, fault.kind)
            return
        self.stats.record_outcome(api.name, response.status)
        _send(handler, response)

    def _call(self, api: Api, request: Request, matched) -> Response:
        if matched is None:
            return api.not_found(request)
        route, params = matched
        try:
            return route.handler(request, **params)
        except ApiError as error:
            return error.response
        except Exception:  # a bug in the simulator must not look like a dropped connection
            log.exception("simulated %s failed on %s %s", api.name, request.method, request.path)
            return api.error_response(500, None)

    def _send_damaged(self, handler: _Handler, api: Api, response: Response, kind: str) -> None:
        self.stats.record_outcome(api.name, kind)
        if kind == "empty":
            _send(handler, Response(200, b"", response.content_type, response.headers))
        elif kind == "malformed":
            _send(handler, Response(200, _MALFORMED_BODY, response.content_type, response.headers))
        elif kind == "html":
            _send(handler, Response(200, _CHALLENGE_PAGE, "text/html; charset=UTF-8", response.headers))
        elif kind == "hostile":
            _send(
                handler, Response(response.status, hostile_body(response.body), response.content_type, response.headers)
            )
        else:  # truncated: promise the whole body, deliver half, hang up
            handler.close_connection = True
            _send(
                handler,
                Response(200, response.body, response.content_type, response.headers),
                cut_at=len(response.body) // 2,
            )


class _MarketHTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # held `timeout` connections never block shutdown
    allow_reuse_address = True
    request_queue_size = 256
    server_address: tuple[str, int]  # an AF_INET server's (host, port)

    def __init__(
        self, address: tuple[str, int], handler_class: type[BaseHTTPRequestHandler], market: SimulatedMarket
    ) -> None:
        self.market = market
        super().__init__(address, handler_class)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "simulated-market/1"
    sys_version = ""
    # Headers and body leave in one segment: without these, Nagle + delayed ACK cost 40 ms a request.
    disable_nagle_algorithm = True
    wbufsize = 64 * 1024
    server: _MarketHTTPServer

    def do_GET(self) -> None:
        self.server.market.handle(self)

    do_POST = do_DELETE = do_PUT = do_PATCH = do_HEAD = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.market.access_log:
            log.info("%s %s", self.address_string(), format % args)


def _send(handler: _Handler, response: Response, cut_at: int | None = None) -> None:
    try:
        handler.send_response(response.status)
        handler.send_header("Content-Type", response.content_type)
        handler.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers:
            handler.send_header(name, value)
        if handler.close_connection:
            handler.send_header("Connection", "close")
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(response.body if cut_at is None else response.body[:cut_at])
        handler.wfile.flush()
    except (BrokenPipeError, ConnectionResetError):  # the client gave up first (its own timeout)
        handler.close_connection = True


def wait_until_serving(url: str, timeout: float = 5.0) -> None:
    """Block until GET <url>/_sim/health answers (for a market started in another process)."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_sim/health", timeout=1) as reply:
                if reply.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"simulated market at {url} did not answer within {timeout} s") from None
            time.sleep(0.05)
