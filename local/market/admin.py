"""The /_sim/ admin API: faults, stats, clock, config, and the expected prices of the universe.

- GET /_sim/health: `{"status": "ok", "seed": ..., "universe_size": ...}`
- POST /_sim/faults: arm one fault (JSON object) or several (array); 201 with what was armed.
  GET lists the armed faults; DELETE /_sim/faults disarms all, DELETE /_sim/faults/{id} one.
- GET /_sim/stats, POST /_sim/stats/reset: request counts per api, path, route and status.
- GET /_sim/config, POST /_sim/config: `latency_ms`, `binance_weight_limit`,
  `binance_ban_after_429s`, `binance_ban_seconds`; `{"binance_reset_weight": true}` forgets
  the used weight and any ban.
- GET /_sim/clock, POST /_sim/clock: `{"freeze": true | ISO time | unix seconds,
  "advance_seconds": n, "resume": true}`.
- GET /_sim/tokens: the universe; filters `?trending=true&binance=false&stablecoin=true&top=100`.
- GET /_sim/price?token=<ref>&at=<ISO or unix>: `{"key", "price_usdt", "price_usd", "usdt_usd",
  "at"}`, numbers as decimal strings.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from local.market import wire
from local.market.apis.base import JSON, Request, Response
from local.market.clock import SimClock
from local.market.faults import FaultInjector
from local.market.stats import RequestStats
from local.market.universe import Universe


class ControlledMarket(Protocol):
    """What /_sim/* controls of a market (`local.market.server.SimulatedMarket` is one)."""

    universe: Universe
    faults: FaultInjector
    stats: RequestStats
    clock: SimClock

    @property
    def configure(self) -> Callable[..., None]: ...
    def config(self) -> dict[str, Any]: ...


class AdminApi:
    """Handles /_sim/* for one market."""

    def __init__(self, market: ControlledMarket) -> None:
        self.market = market

    def handle(self, request: Request) -> Response:
        path = request.path.rstrip("/") or "/"
        method = request.method
        try:
            if path == "/health" and method == "GET":
                return json_response(
                    {"status": "ok", "seed": self.market.universe.seed, "universe_size": self.market.universe.size}
                )
            if path == "/faults":
                return self._faults(request)
            if path.startswith("/faults/") and method == "DELETE":
                fault_id = path.removeprefix("/faults/")
                if not fault_id.isdigit() or not self.market.faults.remove(int(fault_id)):
                    return _bad(404, f"no armed fault {fault_id}")
                return Response(204, b"")
            if path == "/stats" and method == "GET":
                return json_response(self.market.stats.snapshot())
            if path in ("/stats/reset", "/stats") and method in ("POST", "DELETE"):
                self.market.stats.reset()
                return Response(204, b"")
            if path == "/config":
                if method == "POST":
                    self.market.configure(**_json_object(request))
                return json_response(self.market.config())
            if path == "/clock":
                if method == "POST":
                    self._clock(_json_object(request))
                return json_response(self.market.clock.describe())
            if path == "/tokens" and method == "GET":
                return json_response(self._tokens(request))
            if path == "/price" and method == "GET":
                return json_response(self._price(request))
        except (ValueError, TypeError, LookupError) as error:
            return _bad(400, str(error))
        return _bad(404, f"no admin route {method} /_sim{request.path}")

    def _faults(self, request: Request) -> Response:
        faults = self.market.faults
        if request.method == "GET":
            return json_response([f.describe() for f in faults.active()])
        if request.method == "DELETE":
            faults.clear()
            return Response(204, b"")
        if request.method == "POST":
            spec = _json(request)
            specs = spec if isinstance(spec, list) else [spec]
            armed = [faults.add_from_json(s) for s in specs]
            return json_response([f.describe() for f in armed] if isinstance(spec, list) else armed[0].describe(), 201)
        return _bad(405, f"{request.method} not allowed on /_sim/faults")

    def _clock(self, body: dict[str, Any]) -> None:
        unknown = set(body) - {"freeze", "advance_seconds", "resume"}
        if unknown:
            raise ValueError(f"unknown clock field(s): {', '.join(sorted(unknown))}")
        clock = self.market.clock
        if body.get("resume"):
            clock.resume()
        freeze = body.get("freeze")
        if freeze is True:
            clock.freeze()
        elif freeze is False:
            clock.resume()
        elif freeze is not None:
            clock.freeze(_instant(freeze))
        advance = body.get("advance_seconds")
        if advance is not None:
            if not isinstance(advance, (int, float)) or isinstance(advance, bool):
                raise ValueError("advance_seconds must be a number")
            clock.advance(advance)

    def _tokens(self, request: Request) -> list[dict[str, Any]]:
        universe = self.market.universe
        tokens = list(universe.tokens)
        top = request.param("top")
        if top is not None:
            if not top.isdigit():
                raise ValueError("top must be a positive integer")
            tokens = universe.top(int(top))
        filters = (
            ("trending", lambda t: t.is_trending),
            ("binance", lambda t: t.has_binance_pair),
            ("stablecoin", lambda t: t.is_stablecoin),
            ("native", lambda t: t.is_native),
        )
        for name, predicate in filters:
            value = request.param(name)
            if value is not None:
                wanted = value.lower() == "true"
                tokens = [t for t in tokens if predicate(t) == wanted]
        return [t.describe() for t in tokens]

    def _price(self, request: Request) -> dict[str, str]:
        ref = request.param("token")
        if not ref:
            raise ValueError("query parameter 'token' is required (a key, symbol, CoinGecko id or address)")
        at_param = request.param("at")
        at = self.market.clock.now() if at_param is None else _instant(at_param)
        universe = self.market.universe
        token = universe.get(ref)
        return {
            "key": token.key,
            "symbol": token.symbol,
            "price_usdt": wire.plain(universe.price_usdt(token, at)),
            "price_usd": wire.plain(universe.price_usd(token, at)),
            "usdt_usd": wire.plain(universe.usdt_usd(at)),
            "at": str(int(at // 1)),
        }


def _instant(value: Any) -> float:
    """A unix timestamp from an ISO-8601 string (with offset) or a number."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(Decimal(value))
        except ArithmeticError:
            pass
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            raise ValueError(f"time {value!r} needs a UTC offset (e.g. 'Z')")
        return moment.timestamp()
    raise ValueError(f"not a time: {value!r}")


def _json(request: Request) -> Any:
    try:
        return json.loads(request.body or b"null")
    except json.JSONDecodeError as error:
        raise ValueError(f"request body is not JSON: {error}") from None


def _json_object(request: Request) -> dict[str, Any]:
    body = _json(request)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ValueError("request body must be a JSON object")
    return body


def json_response(body: Any, status: int = 200) -> Response:
    """Admin bodies are ours, not an upstream's: plain JSON (floats allowed, Decimals as strings)."""
    return Response(status, json.dumps(body, default=str).encode(), JSON)


def _bad(status: int, message: str) -> Response:
    return json_response({"error": message}, status)
