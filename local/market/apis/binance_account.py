"""Simulated exchange accounts and Binance's signed `GET /api/v3/myTrades`.

`ExchangeAccounts` holds user accounts of both simulated exchanges (Binance here, Bybit in
bybit.py): each has an API key and secret, the symbols it trades, and fills generated at the
universe's own prices (`universe.price_usdt` at the fill's second), either on demand
(`add_fills`) or at `fills_per_minute` (>= 1,000/min possible) as real time passes: fills are
made lazily, with times spread over the elapsed interval, whenever a request arrives.

myTrades in the real format (tests/fixtures/upstream/binance.myTrades.json) and with Binance's
checks, in its order: X-MBX-APIKEY present (-2014, 401) and known (-2015, 401); `timestamp`
and `signature` present (-1102, 400); `timestamp` within `recvWindow` (default 5000, at most
60000) of the server's time (-1021, 400); the HMAC-SHA256 of the query string before
`&signature=` under the account's secret equal to `signature` (-1022, 400); `symbol` one the
exchange lists (-1121, 400); `limit` 1..1000 (-1130). Weight 20 from the shared IP budget
(429/418 with Retry-After, binance.py). Trades with id >= `fromId`, oldest first, at most
`limit` (default 500); without `fromId`, the most recent `limit`.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any

from local.market.apis.base import ApiError, Request, Response, json_response
from local.market.universe import Universe

PRICE_STEP = Decimal("0.00000001")
QTY_STEP = Decimal("0.0001")
FEE_RATE = Decimal("0.001")
MY_TRADES_WEIGHT = 20


@dataclass
class SimFill:
    """One fill of an account, in both exchanges' terms."""

    trade_id: int  # Binance `id`; Bybit `seq`
    exec_id: str  # Bybit `execId`
    order_id: int
    symbol: str
    is_buyer: bool
    price: Decimal
    qty: Decimal
    fee: Decimal
    fee_asset: str
    time_ms: int
    is_maker: bool


@dataclass
class SimAccount:
    """A user account of one simulated exchange."""

    exchange: str  # binance | bybit
    api_key: str
    api_secret: str
    symbols: tuple[str, ...]
    fills: list[SimFill] = field(default_factory=list)


class ExchangeAccounts:
    """The accounts of both simulated exchanges and their fills. Thread-safe."""

    def __init__(self, universe: Universe, fills_per_minute: float = 0.0, seed: int = 7) -> None:
        self.universe = universe
        self.fills_per_minute = fills_per_minute
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._by_key: dict[str, SimAccount] = {}
        self._next_id = 1
        self._generated_until = time.time()
        self._carry = 0.0

    def add_account(self, exchange: str, api_key: str, api_secret: str, symbols: tuple[str, ...]) -> SimAccount:
        """Open an account (its key must be new); fills will be in `symbols` (<BASE>USDT)."""
        for symbol in symbols:
            self._base(symbol)  # refuse a symbol the universe cannot price
        with self._lock:
            if api_key in self._by_key:
                raise ValueError("an account with this API key exists")
            account = self._by_key[api_key] = SimAccount(exchange, api_key, api_secret, tuple(symbols))
            return account

    def account(self, api_key: str) -> SimAccount | None:
        with self._lock:
            return self._by_key.get(api_key)

    def add_fills(self, api_key: str, count: int, at_ms: int | None = None) -> list[SimFill]:
        """`count` new fills of the account now (or at `at_ms`), at the universe's prices."""
        with self._lock:
            account = self._by_key[api_key]
            now_ms = at_ms if at_ms is not None else int(time.time() * 1000)
            return [self._fill(account, now_ms) for _ in range(count)]

    def advance(self) -> None:
        """Make the fills `fills_per_minute` says happened since the last call (lazy generation)."""
        with self._lock:
            now = time.time()
            elapsed, self._generated_until = now - self._generated_until, now
            if self.fills_per_minute <= 0 or not self._by_key:
                return
            due = self.fills_per_minute * elapsed / 60 + self._carry
            count, self._carry = int(due), due - int(due)
            accounts = list(self._by_key.values())
            start_ms = int((now - elapsed) * 1000)
            for index in range(count):
                at_ms = start_ms + int((index + 1) * elapsed * 1000 / count)
                self._fill(accounts[index % len(accounts)], at_ms)

    def fills(self, api_key: str) -> list[SimFill]:
        """The account's fills, oldest first (a copy)."""
        with self._lock:
            return list(self._by_key[api_key].fills)

    def _base(self, symbol: str) -> str:
        if not symbol.endswith("USDT") or len(symbol) <= 4:
            raise ValueError(f"simulated accounts trade <BASE>USDT symbols, not {symbol!r}")
        base = symbol[:-4]
        self.universe.get(base)
        return base

    def _fill(self, account: SimAccount, at_ms: int) -> SimFill:
        symbol = self._rng.choice(account.symbols)
        price = self.universe.price_usdt(self._base(symbol), at_ms / 1000).quantize(PRICE_STEP, ROUND_DOWN)
        if price <= 0:
            price = PRICE_STEP
        qty = (Decimal(self._rng.randint(1, 50_000)) * QTY_STEP).quantize(QTY_STEP)
        fill = SimFill(
            trade_id=self._next_id,
            exec_id=str(uuid.UUID(int=self._rng.getrandbits(128), version=4)),
            order_id=100_000 + self._next_id,
            symbol=symbol,
            is_buyer=self._rng.random() < 0.5,
            price=price,
            qty=qty,
            fee=(price * qty * FEE_RATE).quantize(PRICE_STEP, ROUND_DOWN),
            fee_asset="USDT",
            time_ms=at_ms,
            is_maker=self._rng.random() < 0.3,
        )
        self._next_id += 1
        account.fills.append(fill)
        return fill


def header(request: Request, name: str) -> str | None:
    """A request header, by case-insensitive name."""
    wanted = name.lower()
    for key, value in request.headers.items():
        if key.lower() == wanted:
            return value
    return None


def _error(code: int, msg: str, status: int = 400) -> ApiError:
    return ApiError(json_response({"code": code, "msg": msg}, status))


class BinanceAccountRoutes:
    """GET /api/v3/myTrades, mounted on the simulated Binance (same host, weight budget and faults)."""

    def __init__(self, accounts: ExchangeAccounts, binance: Any) -> None:
        self.accounts = accounts
        self.binance = binance
        binance.route("GET", "/api/v3/myTrades", self.my_trades)

    def my_trades(self, request: Request) -> Response:
        self.binance.limiter.charge(MY_TRADES_WEIGHT)
        api_key = header(request, "X-MBX-APIKEY")
        if not api_key:
            raise _error(-2014, "API-key format invalid.", 401)
        account = self.accounts.account(api_key)
        if account is None or account.exchange != "binance":
            raise _error(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        raw = request.raw_query
        signed, marker, signature = raw.rpartition("&signature=")
        timestamp = request.param("timestamp")
        if not marker or not signature or not timestamp:
            name = "timestamp" if not timestamp else "signature"
            raise _error(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
        recv_window = _int(request.param("recvWindow") or "5000", "recvWindow")
        if not 0 < recv_window <= 60000:
            raise _error(-1131, "recvWindow must be less than 60000")
        now_ms = int(time.time() * 1000)  # the server's real clock, whatever the price clock says
        stamp = _int(timestamp, "timestamp")
        if stamp > now_ms + 1000 or now_ms - stamp > recv_window:
            raise _error(-1021, "Timestamp for this request is outside of the recvWindow.")
        expected = hmac.new(account.api_secret.encode(), signed.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.lower()):
            raise _error(-1022, "Signature for this request is not valid.")
        symbol = request.param("symbol")
        if not symbol:
            raise _error(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        if symbol not in self.binance.pairs:
            raise _error(-1121, "Invalid symbol.")
        limit = _int(request.param("limit") or "500", "limit")
        if not 1 <= limit <= 1000:
            raise _error(-1130, "Data sent for parameter 'limit' is not valid.")
        self.accounts.advance()
        fills = [f for f in self.accounts.fills(api_key) if f.symbol == symbol]
        from_id = request.param("fromId")
        if from_id is not None:
            first = _int(from_id, "fromId")
            chosen = [f for f in fills if f.trade_id >= first][:limit]
        else:
            chosen = fills[-limit:]
        return json_response([my_trade(f) for f in chosen])


def my_trade(fill: SimFill) -> dict[str, Any]:
    """A fill as a myTrades element (binance.myTrades.json): ids/time integers, amounts strings."""
    return {
        "symbol": fill.symbol,
        "id": fill.trade_id,
        "orderId": fill.order_id,
        "orderListId": -1,
        "price": f"{fill.price:.8f}",
        "qty": f"{fill.qty:.8f}",
        "quoteQty": f"{(fill.price * fill.qty).quantize(PRICE_STEP, ROUND_DOWN):.8f}",
        "commission": f"{fill.fee:.8f}",
        "commissionAsset": fill.fee_asset,
        "time": fill.time_ms,
        "isBuyer": fill.is_buyer,
        "isMaker": fill.is_maker,
        "isBestMatch": True,
    }


def _int(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise _error(
            -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'."
        ) from None
