"""Turning an upstream's non-2xx answer, or a 2xx body that is no JSON, into an error with a meaning.

Each error names the API (via `UpstreamError`), the path and the cause, with the API's own
error code and message when the body carries one. Query strings and headers are never
included: keys travel in headers, and a message must never leak them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from contextvars import ContextVar
from email.utils import parsedate_to_datetime
from typing import Any

from shared.errors import (
    BadUpstreamBody,
    PermanentUpstreamError,
    RateLimited,
    RegionBlocked,
    RetryableUpstreamError,
    UpstreamBanned,
    UpstreamError,
    UpstreamIntercepted,
)

from .jsonbody import decode_json

MAX_MESSAGE_CHARS = 200
RETRY_AFTER_STATUSES = frozenset({418, 429, 503})
HTML_MEDIA_TYPES = frozenset({"text/html", "application/xhtml+xml"})

# The HTTP method of the call in progress in this thread (or task), named in every error
# message; `UpstreamHttp.get_json`/`post_json` set it for the duration of one call.
request_method: ContextVar[str] = ContextVar("request_method", default="GET")


def retry_after_seconds(headers: Mapping[str, str], now: float) -> float | None:
    """The `Retry-After` header in seconds (delta-seconds or an HTTP date), or None."""
    raw = headers.get("retry-after")
    if raw is None or not raw.strip():
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(raw).timestamp() - now
        except (TypeError, ValueError, OverflowError):
            return None
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def api_error(body: bytes) -> tuple[int | str | None, str | None]:
    """The API's own (code, message) from an error body, for each envelope the APIs use.

    Binance `{code, msg}`; CoinGecko `{status: {error_code, error_message}}` or `{error}`;
    GoPlus and LI.FI `{code, message}`; Relay `{message, errorCode}` (string codes); 1inch
    `{error, description, statusCode}` (the description is the reason). Anything else (HTML
    from a CDN, empty) gives (None, None).
    """
    try:
        doc: Any = decode_json(body)  # bounded numbers, clean text
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(doc, dict):
        return None, None
    status = doc.get("status")
    if isinstance(status, dict):
        return status.get("error_code"), _text(status.get("error_message"))
    code = doc.get("code", doc.get("errorCode"))
    message = doc.get("msg", doc.get("message", doc.get("description", doc.get("error"))))
    if isinstance(message, dict):  # e.g. {"error": {"message": ...}}
        message = message.get("message")
    return (code if isinstance(code, int | str) else None), _text(message)


def error_for_status(api: str, path: str, status: int, body: bytes, retry_after: float | None) -> UpstreamError:
    """The error for a non-2xx answer: retryable (5xx, 408, 429), ban (418), region (451) or permanent."""
    code, message = api_error(body)
    cause = f"{request_method.get()} {path}: HTTP {status}"
    if status == 451:
        cause += " (region blocked)"
    if code is not None:
        cause += f", code {code}"
    if message:
        cause += f": {message}"
    if retry_after is not None:
        cause += f" (Retry-After {retry_after:g}s)"
    if status == 418:
        return UpstreamBanned(api, cause, retry_after=retry_after, status=status, code=code)
    if status == 429:
        return RateLimited(api, cause, retry_after=retry_after, status=status, code=code)
    if status == 451:
        return RegionBlocked(api, cause, status=status, code=code)
    if status >= 500 or status == 408:
        if status == 503 and retry_after is not None:
            return RateLimited(api, cause, retry_after=retry_after, status=status, code=code)
        return RetryableUpstreamError(api, cause, status=status, code=code)
    return PermanentUpstreamError(api, cause, status=status, code=code)


def _text(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    text = " ".join(value.replace("\x00", "").split())  # NUL: PostgreSQL refuses it in job_logs
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"


def undecodable_body_error(
    api: str, path: str, status: int, content_type: str | None, body: bytes, reason: str
) -> UpstreamError:
    """The error for a 2xx body that is no JSON: an HTML page, or bad data (docs/resilience.md).

    An HTML page (by its media type, or a body that opens with ``<``) is not the API's answer
    but something in front of it — `UpstreamIntercepted`, an outage of the path to the API.
    Anything else (truncated, empty, garbage under a JSON media type) is the API answering
    badly about what was asked — `BadUpstreamBody`: those items fail, nothing is retried and
    the breaker does not count it, so one bad answer never stops the calls for other tokens.
    (A body cut off in transit never gets here: it is a transport error, retried.)
    """
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type in HTML_MEDIA_TYPES or body.lstrip()[:1] == b"<":
        return UpstreamIntercepted(
            api,
            f"{request_method.get()} {path}: HTTP {status} with an HTML page instead of JSON (a firewall challenge, CDN or portal "
            f"answered); not asked again in this call",
            status=status,
        )
    return BadUpstreamBody(
        api, f"{request_method.get()} {path}: HTTP {status} body is no JSON ({reason})", status=status
    )
