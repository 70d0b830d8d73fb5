"""Finnhub stock quotes: `GET /api/v1/quote?symbol=<SYM>` in its real format.

The answer is `{"c", "d", "dp", "h", "l", "o", "pc", "t"}`, every value a JSON number
(tests/fixtures/upstream/finnhub.quote.aapl_2025.json); `h`/`l` may carry 4 decimals, `dp`
carries 4. Behaviour, from tests/fixtures/upstream/INDEX.md (Finnhub):

- **Moving prices in US/Eastern market hours**: during the regular session (Mon-Fri
  09:30-16:00 America/New_York) the price moves every second and `t` is the current
  second; outside it `c` and `t` stay frozen at the last session's close (what the
  real API does at night and on weekends). `o` is the session's opening price, `h`/`l` the
  session's extremes so far (sampled each minute and now), `pc` the previous session's close.
- **Unknown symbol**: 200 with zeros and null change fields, never an error.
- **A symbol the plan does not cover** (international listings such as `VOD.L`, `BMW.DE`):
  403 `{"error": "You don't have access to this resource."}`.
- **Limits per API key** (the `X-Finnhub-Token` header or the `token` parameter; no key is
  one anonymous bucket): 60 calls/min and 30 calls/s, both sliding windows on real time;
  beyond either, 429 `{"error": "API limit reached. Please try again later. Remaining Limit: 0"}`.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from zoneinfo import ZoneInfo

from local.market.apis.base import Api, Request, Response, json_response
from local.market.clock import SimClock
from local.market.universe import Universe

EASTERN = ZoneInfo("America/New_York")
OPEN_MINUTE, CLOSE_MINUTE = 9 * 60 + 30, 16 * 60
LIMIT_BODY = {"error": "API limit reached. Please try again later. Remaining Limit: 0"}
NOT_COVERED_BODY = {"error": "You don't have access to this resource."}
CENT = Decimal("0.01")
# Listed US stocks and a reference price (USD) their price moves around.
STOCKS: dict[str, Decimal] = {
    "AAPL": Decimal("211.18"),
    "MSFT": Decimal("505.62"),
    "TSLA": Decimal("329.65"),
    "GOOGL": Decimal("185.06"),
    "AMZN": Decimal("226.13"),
    "NVDA": Decimal("172.41"),
    "META": Decimal("704.28"),
    "BRK.B": Decimal("476.90"),
    "JPM": Decimal("291.48"),
    "PENNY": Decimal("0.0417"),  # a sub-dollar listing: prices below a cent keep 4 decimals
}
# Exchange suffixes of listings the free plan does not cover (Finnhub: "US market only").
NOT_COVERED_SUFFIXES = (".L", ".DE", ".PA", ".OL", ".TO", ".NS", ".HK", ".T", ".AX")


class WindowLimit:
    """At most `limit` calls in any `period` seconds per key, on the real monotonic clock."""

    def __init__(self, limit: int, period: float) -> None:
        self.limit = limit
        self.period = period
        self._calls: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def admit(self, key: str) -> bool:
        """Count one call of `key`; False (and not counted) when the window is full."""
        now = time.monotonic()
        with self._lock:
            calls = self._calls.setdefault(key, deque())
            while calls and calls[0] <= now - self.period:
                calls.popleft()
            if len(calls) >= self.limit:
                return False
            calls.append(now)
            return True

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()


class FinnhubApi(Api):
    """Finnhub's quote endpoint for a fixed set of US stocks."""

    name = "finnhub"

    def __init__(self, universe: Universe, clock: SimClock, per_minute: int = 60, per_second: int = 30) -> None:
        super().__init__(universe, clock)
        self.per_minute = WindowLimit(per_minute, 60.0)
        self.per_second = WindowLimit(per_second, 1.0)
        self.route("GET", "/api/v1/quote", self.quote)

    def configure(self, per_minute: int | None = None, per_second: int | None = None, reset: bool = False) -> None:
        """Change the limits at run time (tests); `reset` forgets every counted call."""
        if per_minute is not None:
            self.per_minute.limit = per_minute
        if per_second is not None:
            self.per_second.limit = per_second
        if reset:
            self.per_minute.reset()
            self.per_second.reset()

    def quote(self, request: Request) -> Response:
        key = request.headers.get("X-Finnhub-Token") or request.param("token") or ""
        # Both windows count the call (Finnhub counts refused calls too: "Remaining Limit: 0").
        if not (self.per_second.admit(key) and self.per_minute.admit(key)):
            return json_response(LIMIT_BODY, 429)
        symbol = (request.param("symbol") or "").strip().upper()
        if symbol.endswith(NOT_COVERED_SUFFIXES):
            return json_response(NOT_COVERED_BODY, 403)
        if symbol not in STOCKS:
            return json_response({"c": 0, "d": None, "dp": None, "h": 0, "l": 0, "o": 0, "pc": 0, "t": 0})
        return json_response(quote_body(symbol, self.clock.now()))

    def error_response(self, status: int, retry_after: int | None) -> Response:
        if status == 429:
            return json_response(LIMIT_BODY, 429)
        if status == 403:
            return json_response(NOT_COVERED_BODY, 403)
        return json_response({"error": f"HTTP {status}"}, status)


# --- the price model ------------------------------------------------------------------------------


def price_at(symbol: str, second: int) -> Decimal:
    """The stock's price during unix second `second`: two sine waves around its reference price."""
    base = STOCKS[symbol]
    seed = sum(ord(ch) * (i + 1) for i, ch in enumerate(symbol))
    log_move = 0.004 * math.sin(second / 47.0 + seed) + 0.012 * math.sin(second / 2300.0 + seed / 7)
    places = CENT if base >= 1 else Decimal("0.0001")
    return Decimal(repr(float(base) * math.exp(log_move))).quantize(places, rounding=ROUND_HALF_EVEN)


def _session_bounds(day: date) -> tuple[int, int]:
    start = datetime(day.year, day.month, day.day, 9, 30, tzinfo=EASTERN)
    end = datetime(day.year, day.month, day.day, 16, 0, tzinfo=EASTERN)
    return int(start.timestamp()), int(end.timestamp())


def _trading_day_on_or_before(day: date) -> date:
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


def last_session(now: float) -> tuple[date, int, int]:
    """(day, open second, the second quotes stand still at) of the session in progress or last closed."""
    local = datetime.fromtimestamp(now, UTC).astimezone(EASTERN)
    minute = local.hour * 60 + local.minute
    day = local.date()
    if local.weekday() >= 5 or minute < OPEN_MINUTE:
        day = _trading_day_on_or_before(day - timedelta(days=1))
    opened, closed = _session_bounds(day)
    return day, opened, min(int(now), closed)


def quote_body(symbol: str, now: float) -> dict[str, Decimal | int]:
    """The `/api/v1/quote` body for a listed stock at market time `now`."""
    day, opened, last = last_session(now)
    _, _, previous_close_second = last_session(opened - 1)
    current = price_at(symbol, last)
    day_open = price_at(symbol, opened)
    previous_close = price_at(symbol, previous_close_second)
    samples = [price_at(symbol, s) for s in range(opened, last, 60)] + [day_open, current]
    change = current - previous_close
    return {
        "c": current,
        "d": change,
        "dp": (change / previous_close * 100).quantize(Decimal("0.0001")),
        "h": max(samples),
        "l": min(samples),
        "o": day_open,
        "pc": previous_close,
        "t": last,
    }
