"""Simulated Bybit v5: the signed, cursor-paged `GET /v5/execution/list` of the accounts in
`ExchangeAccounts` (binance_account.py).

Format from tests/fixtures/upstream/bybit.v5.execution_list.json: HTTP 200 with the envelope
{retCode, retMsg, result: {nextPageCursor, category, list}, retExtInfo, time}; prices,
quantities and execTime strings. Checks in Bybit's order, each an in-body retCode: the
X-BAPI-* headers present (10001) and the key known (10003 "API key is invalid."); the timestamp
within X-BAPI-RECV-WINDOW (default 5000) of the server's time (10002); X-BAPI-SIGN equal to the
HMAC-SHA256 of timestamp + key + recvWindow + the query string (10004 "error sign!", whose
message, as the real one, echoes the signed text, key included); at most 50 requests/s per key
(10006 "Too many visits!" with X-Bapi-Limit headers); category spot|linear|inverse|option, limit
1..100 (default 50), endTime - startTime <= 7 days (default: the last 7 days) (10001).

Rows are newest first (execTime, then seq, descending). `nextPageCursor` encodes the newest seq
of the first page and the offset ("<seq>%3A<offset>", URL-encoded as Bybit's are), so fills
arriving between two page requests never shift a page: they appear in the next query.
The accounts' fills are spot fills; other categories answer an empty list.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import deque
from decimal import ROUND_DOWN
from typing import Any
from urllib.parse import quote, unquote

from local.market.apis.base import Api, Request, Response, json_response
from local.market.apis.binance_account import PRICE_STEP, ExchangeAccounts, SimFill, header
from local.market.clock import SimClock
from local.market.universe import Universe

CATEGORIES = ("spot", "linear", "inverse", "option")
MAX_WINDOW_MS = 7 * 24 * 3600 * 1000
PER_KEY_PER_SECOND = 50


def _answer(code: int, message: str, result: Any = None, headers: list[tuple[str, str]] | None = None) -> Response:
    body = {
        "retCode": code,
        "retMsg": message,
        "result": result if result is not None else {},
        "retExtInfo": {},
        "time": int(time.time() * 1000),
    }
    return json_response(body, 200, headers)


class BybitApi(Api):
    """GET /v5/execution/list (private)."""

    name = "bybit"

    def __init__(self, universe: Universe, clock: SimClock, accounts: ExchangeAccounts) -> None:
        super().__init__(universe, clock)
        self.accounts = accounts
        self.per_key_per_second = PER_KEY_PER_SECOND  # /v5/execution/list's documented 50/s
        self._lock = threading.Lock()
        self._calls: dict[str, deque[float]] = {}
        self.route("GET", "/v5/execution/list", self.execution_list)

    def execution_list(self, request: Request) -> Response:
        api_key = header(request, "X-BAPI-API-KEY")
        stamp = header(request, "X-BAPI-TIMESTAMP")
        sign = header(request, "X-BAPI-SIGN")
        recv = header(request, "X-BAPI-RECV-WINDOW") or "5000"
        if not api_key or not stamp or not sign:
            return _answer(10001, "missing api_key, timestamp or sign")
        account = self.accounts.account(api_key)
        if account is None or account.exchange != "bybit":
            return _answer(10003, "API key is invalid.")
        if not (stamp.isdigit() and recv.isdigit()):
            return _answer(10001, "invalid timestamp or recv_window")
        now_ms = int(time.time() * 1000)
        if not (int(stamp) - 1000 <= now_ms < int(stamp) + int(recv)):
            return _answer(
                10002,
                f"invalid request, please check your server timestamp or recv_window param. req_timestamp[{stamp}],"
                f"server_timestamp[{now_ms}],recv_window[{recv}]",
            )
        origin = f"{stamp}{api_key}{recv}{request.raw_query}"
        expected = hmac.new(account.api_secret.encode(), origin.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, sign.lower()):
            return _answer(10004, f"error sign! origin_string[{origin}]")
        limited = self._rate_limited(api_key)
        if limited is not None:
            return limited
        return self._list(request, account.api_key, now_ms)

    def _rate_limited(self, api_key: str) -> Response | None:
        now = time.monotonic()
        with self._lock:
            calls = self._calls.setdefault(api_key, deque())
            while calls and calls[0] <= now - 1.0:
                calls.popleft()
            if len(calls) >= self.per_key_per_second:
                reset = int((calls[0] + 1.0 - now) * 1000 + time.time() * 1000)
                return _answer(
                    10006,
                    "Too many visits!",
                    headers=[
                        ("X-Bapi-Limit", str(self.per_key_per_second)),
                        ("X-Bapi-Limit-Status", "0"),
                        ("X-Bapi-Limit-Reset-Timestamp", str(reset)),
                    ],
                )
            calls.append(now)
            return None

    def _list(self, request: Request, api_key: str, now_ms: int) -> Response:
        category = request.param("category")
        if category not in CATEGORIES:
            return _answer(10001, "params error: category is invalid")
        try:
            limit = int(request.param("limit") or "50")
            end = int(request.param("endTime") or now_ms)
            start = int(request.param("startTime") or end - MAX_WINDOW_MS)
        except ValueError:
            return _answer(10001, "params error: limit, startTime and endTime must be integers")
        if not 1 <= limit <= 100:
            return _answer(10001, "params error: limit must be in [1, 100]")
        if end < start or end - start > MAX_WINDOW_MS:
            return _answer(10001, "params error: The interval between startTime and endTime cannot exceed 7 days")
        anchor, offset = None, 0
        cursor = request.param("cursor")
        if cursor:
            seq_text, _, offset_text = unquote(cursor).partition(":")
            if not (seq_text.isdigit() and offset_text.isdigit()):
                return _answer(10001, "params error: cursor is invalid")
            anchor, offset = int(seq_text), int(offset_text)
        self.accounts.advance()
        fills: list[SimFill] = []
        if category == "spot":
            fills = [f for f in self.accounts.fills(api_key) if start <= f.time_ms <= end]
        fills.sort(key=lambda f: (f.time_ms, f.trade_id), reverse=True)
        if anchor is None:
            anchor = fills[0].trade_id if fills else 0
        fills = [f for f in fills if f.trade_id <= anchor]
        page = fills[offset : offset + limit]
        more = offset + limit < len(fills)
        result = {
            "nextPageCursor": quote(f"{anchor}:{offset + limit}", safe="") if more else "",
            "category": category,
            "list": [execution(f) for f in page],
        }
        return _answer(0, "OK", result)

    def error_response(self, status: int, retry_after: int | None) -> Response:
        if status == 403:
            return Response(403, b"access too frequent", "text/plain")
        return json_response({"retCode": 10016, "retMsg": "Internal server error.", "result": {}}, status)


def execution(fill: SimFill) -> dict[str, Any]:
    """A fill as an execution-list row (bybit.v5.execution_list.json), spot category."""
    value = (fill.price * fill.qty).quantize(PRICE_STEP, ROUND_DOWN)
    return {
        "symbol": fill.symbol,
        "orderType": "Market",
        "underlyingPrice": "",
        "orderLinkId": "",
        "side": "Buy" if fill.is_buyer else "Sell",
        "indexPrice": "",
        "orderId": f"{fill.order_id}",
        "stopOrderType": "UNKNOWN",
        "leavesQty": "0",
        "execTime": str(fill.time_ms),
        "feeCurrency": fill.fee_asset,
        "isMaker": fill.is_maker,
        "execFee": f"{fill.fee}",
        "feeRate": "0.001",
        "execId": fill.exec_id,
        "tradeIv": "",
        "blockTradeId": "",
        "markPrice": "",
        "execPrice": f"{fill.price}",
        "markIv": "",
        "orderQty": f"{fill.qty}",
        "orderPrice": f"{fill.price}",
        "execValue": f"{value}",
        "execType": "Trade",
        "execQty": f"{fill.qty}",
        "closedSize": "",
        "extraFees": "",
        "seq": fill.trade_id,
    }
