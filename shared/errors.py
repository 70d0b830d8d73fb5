"""Error types with a meaning.

Each error says whether retrying can help. The HTTP verdict a function returns is
decided from these types in exactly one place (`shared.runtime.verdict`), so that
Knative's KafkaSource retries what should be retried (5xx, 429) and dead-letters
the rest (400, with the reason in the body).
"""

from __future__ import annotations


class CrawlerError(Exception):
    """Base class. `retryable` tells whether the same work can succeed later."""

    retryable: bool = True

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# --- input ----------------------------------------------------------------------------------


class BadMessage(CrawlerError):
    """A message that can never succeed (malformed, wrong schema, oversized, unknown job)."""

    retryable = False


class UnknownToken(BadMessage):
    """The message names a token the system does not know (e.g. audit for an unpriced token)."""


# --- upstream APIs --------------------------------------------------------------------------


class UpstreamError(CrawlerError):
    """An upstream API failed. `api` names it (binance, coingecko, ...); `code` is the API's own error code."""

    def __init__(self, api: str, reason: str, status: int | None = None, code: int | str | None = None):
        super().__init__(f"{api}: {reason}")
        self.api = api
        self.status = status
        self.code = code


class RetryableUpstreamError(UpstreamError):
    """Timeout, connection error (a body cut off in transit too) or 5xx: may succeed on retry."""


class RateLimited(RetryableUpstreamError):
    """HTTP 429 (or an in-body rate-limit code): wait `retry_after` seconds."""

    def __init__(
        self,
        api: str,
        reason: str,
        retry_after: float | None = None,
        status: int | None = 429,
        code: int | str | None = None,
    ):
        super().__init__(api, reason, status, code)
        self.retry_after = retry_after


class UpstreamBanned(RateLimited):
    """HTTP 418 (Binance IP ban), or a firewall block (Binance 403): no call to this API until it ends."""


class UpstreamIntercepted(RetryableUpstreamError):
    """A 2xx HTML page instead of the API's JSON: a firewall challenge, CDN or captive portal answered.

    Nothing reaches the API until it lifts, for any token: an outage of the path to the API.
    It counts against the breaker and the job is retried later (or falls back to the next
    source), but the call is not retried at once: a challenge page does not clear within a
    backoff of a second, and asking again at once is what a firewall punishes.
    """


class CircuitOpen(RetryableUpstreamError):
    """The breaker for this API is open; callers move to the fallback source at once."""


class PermanentUpstreamError(UpstreamError):
    """A 4xx answer meaning the request itself is wrong (never retried)."""

    retryable = False


class BadUpstreamBody(PermanentUpstreamError):
    """A 2xx answer that is no JSON (truncated, empty, garbage) or of the wrong shape (object where
    an array was expected, legacy envelope).

    The API is up and answered: retrying asks the same question and gets the same answer,
    so it is not retried and does not count against the breaker; the items asked about fail.
    """


class RegionBlocked(PermanentUpstreamError):
    """HTTP 451: the API refuses this region. Reported, not retried."""


class JsonRpcError(PermanentUpstreamError):
    """A JSON-RPC error object inside a 2xx answer (`code` is its code, e.g. -32601 method not found).

    Rate-limit codes (-32005, 429) are `RateLimited` instead, and server-side codes (-32000,
    -32603) `RetryableUpstreamError`: only the rest mean the request itself is wrong.
    """


class JsonRpcBatchMismatch(BadUpstreamBody):
    """A JSON-RPC batch answer whose ids are not the ids asked (missing, repeated or unknown)."""


class WrongChain(PermanentUpstreamError):
    """An RPC URL answers for another chain id than the one it is configured for."""


# --- bad data on the wire -----------------------------------------------------------------


class BadWireValue(CrawlerError, ValueError):
    """One value of an upstream answer is unusable (absurd number, wrong type): its item fails.

    Never retried (the same answer comes back) and never about the API's health. Also a
    `ValueError`, so code that already skips unreadable items skips these too. `field`
    names the JSON field, `limit` the bound the value broke.
    """

    retryable = False

    def __init__(self, field: str, value: str, limit: str):
        super().__init__(f"{field or 'number'} {value}: {limit}")
        self.field = field
        self.value = value
        self.limit = limit


# --- our own infrastructure -----------------------------------------------------------------


class DependencyUnavailable(CrawlerError):
    """PostgreSQL or Kafka is unreachable; the work is retried once it is back."""


class PrerequisiteMissing(CrawlerError):
    """The work needs state that is not there yet (e.g. no top-100 metadata): retry later."""
