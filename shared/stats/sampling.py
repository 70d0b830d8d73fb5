"""One sample of a bridge route from one provider: ask, time the answer, read the estimate.

One request per (route, provider) sample (LI.FI `GET /v1/quote`, Relay `POST /quote/v2`,
1inch `GET /swap/v6.0/{chain}/quote`), through the resilient HTTP layer with retries off
(a retry would spend the keyless budget; the next cycle samples again). The outcome is a
`RouteSample` with a status, never an exception: a 429 is `rate_limited`, the provider's
"no quote" codes `no_route`, a failing provider `error`, an answer that is no quote for
the route `anomaly` with the reason. Only `ok` and `slow` samples carry an estimate.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from shared.errors import BadUpstreamBody, CrawlerError, RateLimited, UpstreamError
from shared.upstream.http import UpstreamHttp

from . import lifi, oneinch, relay
from .bridges import BridgeEstimate, BridgeRoute, BridgeStatus, Provider, QuoteAnomaly

MAX_DETAIL = 300


@dataclass(frozen=True)
class RouteSample:
    """What one provider answered for one route this cycle."""

    route: str
    provider: Provider
    status: BridgeStatus
    response_seconds: float
    estimate: BridgeEstimate | None
    detail: str
    observed_ms: int


def sample_route(
    route: BridgeRoute,
    provider: Provider,
    http: UpstreamHttp,
    clock: Callable[[], float] = time.monotonic,
    now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
) -> RouteSample:
    """Ask `provider` for `route` once (module docstring)."""
    started = clock()
    estimate, detail = None, ""
    try:
        if provider == "lifi":
            estimate = lifi.parse_quote(http.get_json(lifi.QUOTE_PATH, lifi.quote_params(route), expect=dict), route)
        elif provider == "relay":
            body = http.post_json(relay.QUOTE_PATH, relay.quote_request(route), expect=dict)
            estimate = relay.parse_quote(body, route)
        else:
            body = http.get_json(oneinch.quote_path(route), oneinch.quote_params(route), expect=dict)
            estimate = oneinch.parse_quote(body, route)
        status = BridgeStatus.SLOW if _slow(estimate, route) else BridgeStatus.OK
    except QuoteAnomaly as exc:
        status, detail = BridgeStatus.ANOMALY, str(exc)
    except BadUpstreamBody as exc:  # a 2xx that is no JSON or of the wrong shape: the provider answered nonsense
        status, detail = BridgeStatus.ANOMALY, exc.reason
    except RateLimited as exc:
        status, detail = BridgeStatus.RATE_LIMITED, exc.reason
    except UpstreamError as exc:
        status, detail = (BridgeStatus.NO_ROUTE if _no_route(provider, exc) else BridgeStatus.ERROR), exc.reason
    except CrawlerError as exc:  # a malformed number inside an otherwise readable answer
        status, detail = BridgeStatus.ANOMALY, exc.reason
    elapsed = clock() - started
    if status not in (BridgeStatus.OK, BridgeStatus.SLOW):
        estimate = None
    return RouteSample(route.name, provider, status, elapsed, estimate, detail[:MAX_DETAIL], now_ms())


def _slow(estimate: BridgeEstimate, route: BridgeRoute) -> bool:
    return estimate.duration_seconds is not None and estimate.duration_seconds > route.slow_after_seconds


def _no_route(provider: Provider, exc: UpstreamError) -> bool:
    if exc.status is None or exc.status >= 500:
        return False
    if provider == "lifi":
        return exc.code in lifi.NO_ROUTE_CODES
    if provider == "relay":
        return exc.code in relay.NO_ROUTE_CODES
    return exc.status == 400 and "liquidity" in exc.reason.lower()  # 1inch: "insufficient liquidity"
