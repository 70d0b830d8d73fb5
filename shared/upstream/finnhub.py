"""Finnhub: real-time stock quotes, `GET /api/v1/quote?symbol=<SYM>` (no batch endpoint exists).

Budgets: 60 calls/min on the free plan and at most 30 calls/s on every plan
(tests/fixtures/upstream/INDEX.md, Finnhub): both are limiters of the HTTP layer. Errors are
`{"error": "<text>"}`: HTTP 429 "API limit reached. Please try again later. Remaining
Limit: 0" (`RateLimited`), HTTP 403 "You don't have access to this resource." for a symbol
the plan does not cover (`PermanentUpstreamError` with status 403: permanent for that
symbol, never retried). An unknown symbol is no error: 200 with zeros.

The key goes in the `X-Finnhub-Token` header (Finnhub accepts it there as well as in the
`token` query parameter); the HTTP layer never logs headers, and the bronze archive keeps
request parameters, not request headers, so the key is never written anywhere.
"""

from __future__ import annotations

from typing import Any

from shared.config import FinnhubSettings

from .http import UpstreamHttp

API = "finnhub"
QUOTE_PATH = "/api/v1/quote"
TOKEN_HEADER = "X-Finnhub-Token"
NOT_COVERED_STATUS = 403


class FinnhubClient:
    """Finnhub REST client over one `UpstreamHttp`."""

    def __init__(self, http: UpstreamHttp):
        self.http = http

    @classmethod
    def from_settings(cls, settings: FinnhubSettings, **http_options: Any) -> FinnhubClient:
        """Build the client: the key (if any) in its header, the per-second cap beside the per-minute one."""
        headers = {TOKEN_HEADER: settings.api_key} if settings.api_key else {}
        return cls(
            UpstreamHttp(
                API, settings, headers=headers, burst_limit_per_second=settings.rate_limit_per_second, **http_options
            )
        )

    def quote(self, symbol: str) -> Any:
        """The decoded answer for one symbol, as sent (numbers as `Decimal`/`int`).

        Its shape is judged by `shared.stocks.normalize_finnhub`, so an answer of the wrong
        shape is a counted rejection with its reason, not an HTTP-layer error.
        """
        return self.http.get_json(QUOTE_PATH, {"symbol": symbol})


def is_not_covered(error: Exception) -> bool:
    """Whether `error` is Finnhub's 403 for a symbol outside the plan."""
    return (
        getattr(error, "api", None) == API
        and getattr(error, "status", None) == NOT_COVERED_STATUS
        and not getattr(error, "retryable", True)
    )
