"""Resilient HTTP for one upstream API (one `UpstreamHttp` per API per process).

Every GET (and every POST, `post_json`: JSON-RPC batches, quote requests) goes through, in order:
1. the ban gate (after HTTP 418 nothing is sent until the ban ends; after a WAF 403,
   when `forbidden_is_block`, nothing until its backoff ends),
2. the circuit breaker (open -> `CircuitOpen` at once, no request),
and then, for each attempt:
3. any Retry-After cool-down another call received, our own per-minute rate limiter,
   and (Binance) the used-weight budget - each waits, or raises `RateLimited` when the
   wait is longer than `max_wait_seconds` so the caller can fall back or answer 429;
4. the request, with a timeout; the answer is decoded with every fractional number as
   `Decimal`;
5. retries with capped exponential backoff and jitter (tenacity) for timeouts,
   connection errors (a body cut off in transit included), 5xx, 408 and 429 - never for
   other 4xx - waiting at least the server's Retry-After.

A 2xx body that is no JSON (truncated, empty, garbage) or of the wrong shape (`expect`, or
a `check` raising `BadUpstreamBody`) is the API answering, not failing: `BadUpstreamBody`,
never retried, and the breaker counts it as the success of a call that reached a healthy
API. A 2xx HTML page is not the API answering (a firewall challenge, a CDN): it is
`UpstreamIntercepted`, not retried in the call, and a breaker failure like a 5xx
(`failures.undecodable_body_error`, docs/resilience.md). Only transport failures, 5xx, HTML
pages and the like open the breaker; rate limits only hold calls back.

Thread-safe: functions run under gunicorn threads and share one instance per API.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from opentelemetry.trace import Tracer
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from shared.config import UpstreamSettings
from shared.errors import (
    BadUpstreamBody,
    CircuitOpen,
    PermanentUpstreamError,
    RateLimited,
    RetryableUpstreamError,
    UpstreamBanned,
    UpstreamError,
    UpstreamIntercepted,
)
from shared.observability.traces import http_client_span, http_response

from .breaker import BreakerState, CircuitBreaker
from .events import EventKind, EventSink, UpstreamEvent, emit
from .failures import (
    RETRY_AFTER_STATUSES,
    error_for_status,
    request_method,
    retry_after_seconds,
    undecodable_body_error,
)
from .jsonbody import JsonShape, decode_json
from .ratelimit import SlidingWindowLimiter
from .weight import UsedWeightBudget

log = logging.getLogger(__name__)

DEFAULT_LIMITER = "default"
# Binance's shortest ban is 2 minutes; assumed when a 418 comes without Retry-After.
DEFAULT_BAN_SECONDS = 120.0
USER_AGENT = "price-crawler-functions/0.1"

BodyCheck = Callable[[Any], None]
"""Inspects a decoded 2xx body and raises an `UpstreamError` if it reports a failure (in-body codes)."""

ResponseHook = Callable[[str, str, Mapping[str, Any] | None, httpx.Response], None]
"""Sees every raw response received: (api, path, params, response). The bronze archive is one."""


class UpstreamHttp:
    """GET JSON from one upstream API, within its budgets and with retries and a circuit breaker."""

    def __init__(
        self,
        api: str,
        settings: UpstreamSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        extra_rate_limits: Mapping[str, int] | None = None,
        weight_budget_per_minute: int | None = None,
        burst_limit_per_second: int | None = None,
        on_event: EventSink | None = None,
        on_response: ResponseHook | None = None,
        tracer: Tracer | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ):
        """Build the layer for `api` from its settings.

        `headers` are sent with every request (API keys go here, never in the query).
        `extra_rate_limits` adds named limiters (requests per minute) for endpoint groups
        with their own budget; `get_json(limiter=name)` uses one instead of the default.
        `weight_budget_per_minute` turns on used-weight tracking (Binance).
        `burst_limit_per_second` caps every request of the API in any one second as well
        (Finnhub: 60/min and at most 30/s).
        `on_response` sees every raw response (any status) before it is judged; its errors
        are logged and never affect the request.
        `tracer` makes each attempt an HTTP client span (`shared.observability.traces.http_client_span`).
        `clock`, `wall_clock` and `sleep` are injectable so tests never really wait.
        """
        if not settings.base_url:
            raise ValueError(f"{api}: base URL is not configured")
        self.api = api
        self.settings = settings
        self.max_wait_seconds = settings.max_wait_seconds
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._on_event = on_event
        self._on_response = on_response
        self._tracer = tracer
        self._limiters = {DEFAULT_LIMITER: SlidingWindowLimiter(settings.rate_limit_per_minute, clock=clock)}
        for name, per_minute in (extra_rate_limits or {}).items():
            self._limiters[name] = SlidingWindowLimiter(per_minute, clock=clock)
        self._burst = (
            SlidingWindowLimiter(burst_limit_per_second, period=1.0, clock=clock) if burst_limit_per_second else None
        )
        self._weight = UsedWeightBudget(weight_budget_per_minute, wall_clock) if weight_budget_per_minute else None
        self._breaker = CircuitBreaker(
            settings.breaker_failure_threshold, settings.breaker_reset_seconds, clock, on_change=self._breaker_changed
        )
        self._hold_lock = threading.Lock()
        self._banned_until = 0.0  # clock() time; HTTP 418, or a WAF block (403)
        self._blocks_in_a_row = 0  # consecutive WAF 403s: the block backoff doubles with each
        self._hold_status = 418  # what the current ban gate stands for: 418 ban or 403 block
        self._cooldown_until = 0.0  # clock() time; Retry-After on 429/503
        self._client = httpx.Client(
            base_url=settings.base_url,
            timeout=settings.timeout_seconds,
            transport=transport,
            headers={"accept": "application/json", "user-agent": USER_AGENT, **(headers or {})},
        )
        # initial * 2^(n-1), capped, plus up to `initial` of jitter so replicas do not retry in step.
        self._backoff = wait_exponential(
            multiplier=settings.backoff_initial_seconds, max=settings.backoff_max_seconds
        ) + wait_random(0, settings.backoff_initial_seconds)
        self._retrying = Retrying(
            stop=stop_after_attempt(max(0, settings.max_retries) + 1),
            wait=self._retry_wait,
            retry=retry_if_exception(self._should_retry),
            before_sleep=self._before_retry,
            sleep=self._sleep,
            reraise=True,
        )

    # --- public -----------------------------------------------------------------------------

    @property
    def breaker_state(self) -> str:
        """The circuit breaker's state: "closed", "open" or "half_open"."""
        return self._breaker.state.value

    @property
    def used_weight(self) -> int | None:
        """Binance weight used in the current minute as last known, or None if not tracked."""
        return self._weight.used if self._weight else None

    def get_json(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        weight: int = 1,
        headers: Mapping[str, str] | None = None,
        limiter: str = DEFAULT_LIMITER,
        expect: type | tuple[type, ...] | None = None,
        check: BodyCheck | None = None,
        shape: JsonShape | None = None,
    ) -> Any:
        """GET `path` (relative to the base URL) and return the decoded JSON body.

        Numbers with a fraction or exponent are `Decimal`, integers `int`; never a float.
        `weight` is the request's cost in the API's weight budget (Binance).
        `expect` (list and/or dict) and `check` validate the body; a body of the wrong shape
        is `BadUpstreamBody` (not retried, not a breaker failure: the items asked fail).
        `shape` decodes only the fields a reader needs (`JsonShape`; the whole body otherwise).
        Raises `RetryableUpstreamError` (incl. `RateLimited`, `UpstreamBanned`,
        `CircuitOpen`) or `PermanentUpstreamError` (incl. `RegionBlocked`).
        """
        return self._call("GET", path, params, None, weight, headers, limiter, expect, check, shape)

    def post_json(
        self,
        path: str,
        document: Any,
        *,
        headers: Mapping[str, str] | None = None,
        limiter: str = DEFAULT_LIMITER,
        expect: type | tuple[type, ...] | None = None,
        check: BodyCheck | None = None,
    ) -> Any:
        """POST `document` as JSON to `path` and return the decoded JSON body.

        The same gates, budgets, retries, breaker and `Retry-After` handling as `get_json`
        (one request of the rate limit per POST, a JSON-RPC batch included). Only for
        requests that are safe to repeat - reads such as JSON-RPC `eth_*` queries or quote
        requests - since a timed-out POST is retried like a GET.
        """
        content = json.dumps(document, separators=(",", ":")).encode()
        post_headers = {"content-type": "application/json", **(headers or {})}
        return self._call("POST", path, None, content, 1, post_headers, limiter, expect, check, None)

    def _call(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        content: bytes | None,
        weight: int,
        headers: Mapping[str, str] | None,
        limiter: str,
        expect: type | tuple[type, ...] | None,
        check: BodyCheck | None,
        shape: JsonShape | None,
    ) -> Any:
        token = request_method.set(method)
        try:
            return self._gated_call(path, params, content, weight, headers, limiter, expect, check, shape)
        finally:
            request_method.reset(token)

    def _gated_call(
        self,
        path: str,
        params: Mapping[str, Any] | None,
        content: bytes | None,
        weight: int,
        headers: Mapping[str, str] | None,
        limiter: str,
        expect: type | tuple[type, ...] | None,
        check: BodyCheck | None,
        shape: JsonShape | None,
    ) -> Any:
        bucket = self._limiters.get(limiter)
        if bucket is None:
            raise ValueError(f"{self.api}: unknown rate limiter {limiter!r}")
        self._refuse_if_banned(path)
        if not self._breaker.admit():
            self._emit(EventKind.CIRCUIT_OPEN, path)
            raise CircuitOpen(
                self.api, f"{request_method.get()} {path}: circuit open after repeated failures; no request sent"
            )
        try:
            # A copy per call: retry state then never crosses threads, whatever the tenacity version.
            body = self._retrying.copy()(
                self._attempt, path, params, content, weight, headers, bucket, expect, check, shape
            )
        except RateLimited:
            self._breaker.release()  # a budget signal, not a sign of ill health
            raise
        except RetryableUpstreamError:
            self._breaker.record_failure()
            raise
        except UpstreamError:
            self._breaker.record_success()  # a permanent 4xx: the API is up and answered
            raise
        except BaseException:
            self._breaker.release()
            raise
        self._breaker.record_success()
        if self._blocks_in_a_row:
            with self._hold_lock:
                self._blocks_in_a_row = 0
        return body

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> UpstreamHttp:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- one attempt ----------------------------------------------------------------------------

    def _attempt(
        self,
        path: str,
        params: Mapping[str, Any] | None,
        content: bytes | None,
        weight: int,
        headers: Mapping[str, str] | None,
        bucket: SlidingWindowLimiter,
        expect: type | tuple[type, ...] | None,
        check: BodyCheck | None,
        shape: JsonShape | None,
    ) -> Any:
        self._refuse_if_banned(path)
        self._await_cooldown(path)
        self._await_rate_limit(bucket, path)
        if self._burst is not None:
            self._await_rate_limit(self._burst, path)
        self._await_weight(weight, path)
        response = self._send(path, params, content, headers)
        if not response.is_success:
            raise self._error_for(path, response)
        return self._decode(path, response, expect, check, shape)

    def _send(
        self,
        path: str,
        params: Mapping[str, Any] | None,
        content: bytes | None,
        headers: Mapping[str, str] | None,
    ) -> httpx.Response:
        method = request_method.get()
        request = self._client.build_request(method, path, params=params, content=content, headers=headers)
        with http_client_span(self._tracer, self.api, request) as span:
            response = self._send_request(path, params, request)
            http_response(span, response.status_code)
        return response

    def _send_request(self, path: str, params: Mapping[str, Any] | None, request: httpx.Request) -> httpx.Response:
        started = self._clock()
        try:
            response = self._client.send(request)
        except httpx.TimeoutException as exc:
            self._emit(EventKind.REQUEST, path, seconds=self._clock() - started, detail="timeout")
            raise RetryableUpstreamError(
                self.api,
                f"{request_method.get()} {path}: timed out after {self.settings.timeout_seconds:g}s ({type(exc).__name__})",
            ) from exc
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise PermanentUpstreamError(self.api, f"{request_method.get()} {path}: bad URL ({exc})") from exc
        except httpx.HTTPError as exc:
            self._emit(EventKind.REQUEST, path, seconds=self._clock() - started, detail=type(exc).__name__)
            raise RetryableUpstreamError(
                self.api, f"{request_method.get()} {path}: {type(exc).__name__}: {exc}"
            ) from exc
        if self._on_response is not None:
            try:
                self._on_response(self.api, path, params, response)
            except Exception:  # an observer never fails the request
                log.exception("%s: response hook failed for %s %s", self.api, request.method, path)
        if self._weight is not None:
            self._weight.observe(response.headers)
        self._emit(EventKind.REQUEST, path, status=response.status_code, seconds=self._clock() - started)
        return response

    def _decode(
        self,
        path: str,
        response: httpx.Response,
        expect: type | tuple[type, ...] | None,
        check: BodyCheck | None,
        shape: JsonShape | None,
    ) -> Any:
        try:
            body = decode_json(response.content) if shape is None else shape.decode(response.content)
        except ValueError as exc:
            raise undecodable_body_error(
                self.api, path, response.status_code, response.headers.get("content-type"), response.content, str(exc)
            ) from exc
        if expect is not None and not isinstance(body, expect):
            wanted = " or ".join(_json_type(t()) for t in (expect if isinstance(expect, tuple) else (expect,)))
            raise BadUpstreamBody(
                self.api,
                f"{request_method.get()} {path}: expected a JSON {wanted}, got {_json_type(body)}",
                status=response.status_code,
            )
        if check is not None:
            try:
                check(body)
            except RateLimited as exc:  # an in-body rate-limit code: hold every thread, as for a 429
                if exc.retry_after:
                    self._hold_cooldown(exc.retry_after)
                raise
        return body

    def _error_for(self, path: str, response: httpx.Response) -> UpstreamError:
        status = response.status_code
        retry_after = None
        if status in RETRY_AFTER_STATUSES or (status == 403 and self.settings.forbidden_is_block):
            retry_after = self._capped(retry_after_seconds(response.headers, self._wall_clock()), path)
        if status == 403 and self.settings.forbidden_is_block:
            return self._blocked(path, retry_after)
        if status == 418:
            retry_after = DEFAULT_BAN_SECONDS if retry_after is None else retry_after
            with self._hold_lock:
                self._banned_until = max(self._banned_until, self._clock() + retry_after)
                self._hold_status = 418
            self._emit(EventKind.BANNED, path, status=418, seconds=retry_after)
            log.error("%s: IP banned (HTTP 418) for %.0fs; no calls until then", self.api, retry_after)
        elif retry_after:
            self._hold_cooldown(retry_after)
        return error_for_status(self.api, path, status, response.content, retry_after)

    def _capped(self, retry_after: float | None, path: str) -> float | None:
        cap = self.settings.retry_after_max_seconds
        if retry_after is not None and retry_after > cap:
            self._emit(EventKind.RATE_LIMITED, path, seconds=retry_after, detail="retry_after_capped")
            log.warning(
                "%s: Retry-After of %.0fs on %s capped to %gs (retry_after_max_seconds)",
                self.api,
                retry_after,
                path,
                cap,
            )
            return cap
        return retry_after

    def _blocked(self, path: str, retry_after: float | None) -> UpstreamError:
        """A WAF 403: hold every call for a backoff that doubles per block in a row, capped."""
        settings = self.settings
        with self._hold_lock:
            self._blocks_in_a_row += 1
            backoff = settings.block_backoff_initial_seconds * 2 ** min(self._blocks_in_a_row - 1, 32)
            hold = min(settings.block_backoff_max_seconds, max(backoff, retry_after or 0.0))
            self._banned_until = max(self._banned_until, self._clock() + hold)
            self._hold_status = 403
            blocks = self._blocks_in_a_row
        self._emit(EventKind.BANNED, path, status=403, seconds=hold, detail="waf_block")
        log.error("%s: blocked (HTTP 403, WAF) %d time(s) in a row; no calls for %.0fs", self.api, blocks, hold)
        cause = f"{request_method.get()} {path}: HTTP 403 (blocked by the API's firewall); no calls for {hold:g}s"
        return UpstreamBanned(self.api, cause, retry_after=hold, status=403)

    # --- budgets --------------------------------------------------------------------------------

    def _hold_cooldown(self, seconds: float) -> None:
        # Every thread of this process obeys the server's signal, not only the call that got it;
        # never longer than the cap, whoever asked (a header or an in-body code).
        seconds = min(seconds, self.settings.retry_after_max_seconds)
        with self._hold_lock:
            self._cooldown_until = max(self._cooldown_until, self._clock() + seconds)

    def _refuse_if_banned(self, path: str) -> None:
        remaining = self._banned_until - self._clock()
        if remaining > 0:
            status = self._hold_status
            self._emit(EventKind.BANNED, path, status=status, seconds=remaining, detail="refused")
            what = "banned by the API (HTTP 418)" if status == 418 else "blocked by the API's firewall (HTTP 403)"
            raise UpstreamBanned(
                self.api,
                f"{request_method.get()} {path}: {what} for {remaining:.0f}s more; no request sent",
                retry_after=remaining,
                status=status,
            )

    def _await_cooldown(self, path: str) -> None:
        remaining = self._cooldown_until - self._clock()
        if remaining > 0:
            self._wait_or_give_up(remaining, path, EventKind.COOLDOWN_WAIT, "the API asked to retry later")

    def _await_rate_limit(self, bucket: SlidingWindowLimiter, path: str) -> None:
        wait = bucket.reserve(self.max_wait_seconds)
        if wait > 0:
            per = "min" if bucket.period == 60 else f"{bucket.period:g}s"
            cause = f"own rate limit of {bucket.limit} requests/{per} reached"
            self._wait_or_give_up(wait, path, EventKind.RATE_LIMIT_WAIT, cause)

    def _await_weight(self, weight: int, path: str) -> None:
        if self._weight is None:
            return
        for _ in range(3):  # the window rolls over after one wait; float rounding may need a second
            wait = self._weight.reserve(weight)
            if wait <= 0:
                return
            cause = f"used weight near the {self._weight.budget}/min budget"
            self._wait_or_give_up(wait, path, EventKind.WEIGHT_WAIT, cause)
        raise RateLimited(
            self.api, f"{request_method.get()} {path}: weight budget still exhausted; no request sent", retry_after=1.0
        )

    def _wait_or_give_up(self, wait: float, path: str, kind: EventKind, cause: str) -> None:
        if wait > self.max_wait_seconds:
            self._emit(EventKind.RATE_LIMITED, path, seconds=wait, detail=kind.value)
            raise RateLimited(
                self.api,
                f"{request_method.get()} {path}: {cause}; wait of {wait:.1f}s exceeds the {self.max_wait_seconds:g}s cap; no request sent",
                retry_after=wait,
                status=None,
            )
        self._sleep(wait)
        self._emit(kind, path, seconds=wait)

    # --- retries --------------------------------------------------------------------------------

    def _should_retry(self, exc: BaseException) -> bool:
        if not isinstance(exc, RetryableUpstreamError) or isinstance(
            exc, UpstreamBanned | CircuitOpen | UpstreamIntercepted
        ):
            return False
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            return exc.retry_after <= self.max_wait_seconds
        return True

    def _retry_wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None) or 0.0
        return max(self._backoff(state), retry_after)

    def _before_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        path = state.args[0] if state.args else ""
        self._emit(EventKind.RETRY, path, status=getattr(exc, "status", None), seconds=delay, detail=str(exc))
        log.warning("%s: attempt %d failed (%s); retrying in %.2fs", self.api, state.attempt_number, exc, delay)

    # --- observability ----------------------------------------------------------------------------

    def _breaker_changed(self, state: BreakerState) -> None:
        self._emit(EventKind.BREAKER, detail=state.value)
        if state is BreakerState.OPEN:
            log.error("%s: circuit breaker open for %gs", self.api, self.settings.breaker_reset_seconds)
        else:
            log.info("%s: circuit breaker %s", self.api, state.value)

    def _emit(
        self, kind: EventKind, path: str = "", *, status: int | None = None, seconds: float = 0.0, detail: str = ""
    ) -> None:
        emit(self._on_event, UpstreamEvent(self.api, kind, path, status, seconds, detail))


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")
