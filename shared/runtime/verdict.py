"""The one place where an outcome becomes an HTTP status (README, Contracts).

2xx done; 429 and 5xx are retried by KafkaSource; 400 goes to the dead-letter sink
at once, with the reason in the body. Never 200 for work that was not done.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from shared.errors import BadMessage, CrawlerError, RateLimited


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A framework-neutral HTTP response."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: object, headers: dict[str, str] | None = None) -> HttpResponse:
        return cls(
            status, json.dumps(payload, default=str).encode(), {"Content-Type": "application/json", **(headers or {})}
        )


def verdict_for_error(exc: BaseException) -> HttpResponse:
    """Map an exception raised while handling an event to the response KafkaSource acts on."""
    if isinstance(exc, RateLimited):
        headers = {}
        if exc.retry_after is not None:
            headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
        return HttpResponse.json(429, _body(exc, retryable=True), headers)
    if isinstance(exc, CrawlerError):
        if isinstance(exc, BadMessage) or not exc.retryable:
            return HttpResponse.json(400, _body(exc, retryable=False))
        return HttpResponse.json(503, _body(exc, retryable=True))
    # A bug, not a known condition: 500 lets KafkaSource retry, then dead-letter it.
    return HttpResponse.json(500, {"error": f"internal error: {type(exc).__name__}: {exc}", "retryable": True})


def _body(exc: BaseException, *, retryable: bool) -> dict[str, object]:
    return {"error": getattr(exc, "reason", str(exc)), "kind": type(exc).__name__, "retryable": retryable}
