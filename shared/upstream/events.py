"""What the HTTP layer reports to whoever measures it (metrics, logs).

The layer does not import a metrics module: it calls an `on_event` callback with an
`UpstreamEvent`, and the metrics module turns those into counters and histograms.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

log = logging.getLogger(__name__)


class EventKind(StrEnum):
    """Kinds of upstream events."""

    REQUEST = "request"  # one HTTP attempt finished: status (None = no answer), seconds = latency
    RETRY = "retry"  # an attempt failed and the call will retry after `seconds`
    RATE_LIMIT_WAIT = "rate_limit_wait"  # waited `seconds` for our own limiter (`detail` = limiter name)
    WEIGHT_WAIT = "weight_wait"  # waited `seconds` for the Binance used-weight window to roll over
    COOLDOWN_WAIT = "cooldown_wait"  # waited `seconds` for a Retry-After another call received
    RATE_LIMITED = "rate_limited"  # gave up waiting: RateLimited raised without a request
    BANNED = "banned"  # HTTP 418 (or a WAF 403) received (seconds = its length) or a call refused during it
    BREAKER = "breaker"  # the circuit breaker changed state (`detail` = new state)
    CIRCUIT_OPEN = "circuit_open"  # a call was refused because the breaker is open


@dataclass(frozen=True, slots=True)
class UpstreamEvent:
    """One observation of an upstream API's behaviour."""

    api: str
    kind: EventKind
    path: str = ""
    status: int | None = None
    seconds: float = 0.0
    detail: str = ""


EventSink = Callable[[UpstreamEvent], None]


def emit(sink: EventSink | None, event: UpstreamEvent) -> None:
    """Deliver `event`; a failing sink is logged, never allowed to break a request."""
    if sink is None:
        return
    try:
        sink(event)
    except Exception:
        log.exception("upstream event sink failed for %s", event)
