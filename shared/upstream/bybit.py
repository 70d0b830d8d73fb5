"""Bybit v5 private REST: signed `GET /v5/execution/list`, cursor-paged.

Signing (tests/fixtures/upstream/INDEX.md, Bybit v5): X-BAPI-SIGN = hex HMAC-SHA256 under the
API secret of `timestamp + apiKey + recvWindow + queryString`, sent with X-BAPI-API-KEY,
X-BAPI-TIMESTAMP (ms) and X-BAPI-RECV-WINDOW. The query is built here once, as sent (the
`cursor` Bybit returns is already URL-encoded and goes back unchanged, as Bybit's own SDK
sends it), so the text signed is the text on the wire.

Bybit answers HTTP 200 with an in-body `retCode`: 0 is OK; 10006 "Too many visits!" is a rate
limit (`RateLimited`, every thread holds); 10003 invalid key, 10004 bad signature, 10005
permission denied, 10002 timestamp outside recvWindow, 10001 parameter error are permanent for
the call (`PermanentUpstreamError` with the code); 10016 server error is retried.
Budgets, retries and the breaker are the HTTP layer's (`UpstreamHttp`).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.config import BybitSettings
from shared.errors import BadUpstreamBody, PermanentUpstreamError, RateLimited, RetryableUpstreamError

from .http import UpstreamHttp

API = "bybit"
EXECUTION_LIST_PATH = "/v5/execution/list"
EXECUTION_LIST_MAX_LIMIT = 100
# Bybit: endTime - startTime <= 7 days.
MAX_WINDOW_MS = 7 * 24 * 3600 * 1000
TIMESTAMP_OUTSIDE_WINDOW = 10002
INVALID_KEY = 10003
BAD_SIGNATURE = 10004
TOO_MANY_VISITS = 10006
SERVER_ERROR = 10016
_RETRYABLE = frozenset({SERVER_ERROR})


def bybit_signature(secret: str, timestamp_ms: str, api_key: str, recv_window_ms: str, query: str) -> str:
    """X-BAPI-SIGN of a GET: hex HMAC-SHA256 of timestamp + apiKey + recvWindow + queryString."""
    payload = f"{timestamp_ms}{api_key}{recv_window_ms}{query}"
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class ExecutionPage:
    """One page of the execution list: its rows (newest first, as Bybit sends them) and the next cursor."""

    rows: list[dict[str, Any]]
    next_cursor: str | None
    body: dict[str, Any]


class BybitClient:
    """Signed account reads of one Bybit API key over one `UpstreamHttp`."""

    def __init__(
        self,
        http: UpstreamHttp,
        api_key: str,
        api_secret: str,
        *,
        recv_window_ms: int = 5000,
        too_many_visits_hold_seconds: float = 1.0,
        wall_clock: Callable[[], float] = time.time,
    ):
        self.http = http
        self._api_key = api_key
        self._secret = api_secret
        self._recv_window_ms = recv_window_ms
        self._hold = too_many_visits_hold_seconds
        self._wall_clock = wall_clock

    @classmethod
    def build_http(cls, settings: BybitSettings, **http_options: Any) -> UpstreamHttp:
        """The HTTP layer for Bybit (its per-IP budget as the default limiter)."""
        return UpstreamHttp(API, settings, **http_options)

    def execution_list(
        self,
        category: str,
        start_ms: int,
        end_ms: int,
        cursor: str | None = None,
        limit: int = EXECUTION_LIST_MAX_LIMIT,
    ) -> ExecutionPage:
        """One page of the account's executions of `category` with startTime <= execTime <= endTime."""
        if end_ms - start_ms > MAX_WINDOW_MS or end_ms < start_ms:
            raise ValueError("Bybit's execution list window is 0 to 7 days")
        if not category.isalpha():
            raise ValueError(f"not a Bybit category: {category[:20]!r}")
        parts = [
            f"category={category}",
            f"startTime={start_ms}",
            f"endTime={end_ms}",
            f"limit={min(max(1, limit), EXECUTION_LIST_MAX_LIMIT)}",
        ]
        if cursor:
            if not all(c.isalnum() or c in "%-_.~" for c in cursor):
                raise BadUpstreamBody(API, f"GET {EXECUTION_LIST_PATH}: nextPageCursor has unexpected characters")
            parts.append(f"cursor={cursor}")
        query = "&".join(parts)
        timestamp = str(int(self._wall_clock() * 1000))
        recv_window = str(self._recv_window_ms)
        headers = {
            "X-BAPI-API-KEY": self._api_key,
            "X-BAPI-TIMESTAMP": timestamp,
            "X-BAPI-RECV-WINDOW": recv_window,
            "X-BAPI-SIGN": bybit_signature(self._secret, timestamp, self._api_key, recv_window, query),
        }
        body = self.http.get_json(f"{EXECUTION_LIST_PATH}?{query}", headers=headers, check=self._check)
        result = body["result"]
        cursor_out = result.get("nextPageCursor")
        return ExecutionPage(
            list(result["list"]), cursor_out if isinstance(cursor_out, str) and cursor_out else None, body
        )

    def _check(self, body: Any) -> None:
        """The in-body verdict: retCode 0 with a result list, or the error it names."""
        if not isinstance(body, dict) or not isinstance(body.get("retCode"), int):
            raise BadUpstreamBody(API, f"GET {EXECUTION_LIST_PATH}: answer has no retCode")
        code = body["retCode"]
        # Bybit's 10004 message echoes the signed text ("error sign! origin_string[...]"), the
        # API key in it: never carried into an error, a log line or job_logs.
        message = str(body.get("retMsg")).split(" origin_string", 1)[0][:200]
        if self._api_key:
            message = message.replace(self._api_key, "<api key>")
        cause = f"GET {EXECUTION_LIST_PATH}: retCode {code}: {message}"
        if code == TOO_MANY_VISITS:
            raise RateLimited(API, cause, retry_after=self._hold, code=code)
        if code in _RETRYABLE:
            raise RetryableUpstreamError(API, cause, code=code)
        if code != 0:
            raise PermanentUpstreamError(API, cause, status=200, code=code)
        result = body.get("result")
        if not isinstance(result, dict) or not isinstance(result.get("list"), list):
            raise BadUpstreamBody(API, f"GET {EXECUTION_LIST_PATH}: answer has no result.list")
        if not all(isinstance(row, dict) for row in result["list"]):
            raise BadUpstreamBody(API, f"GET {EXECUTION_LIST_PATH}: result.list holds a non-object")
