"""The quotes function's HTTP surface: the API under /v1, health and metrics as every function.

`QuotesApp` is a `FunctionApp` whose GET requests under `/v1` go to `QuotesApi`; health,
readiness and metrics are the base class's, unchanged. It takes no CloudEvents: any other
method is 405. Paths carry their query string (`/v1/prices?tokens=BTC`), as `ff_entry`
and the kn-func adapter pass them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.crawler.freshness import watch_price_freshness
from shared.crawler.quotes.api import API_PREFIX, QuotesApi
from shared.errors import BadMessage
from shared.events import InboundEvent
from shared.runtime.app import FunctionApp, Probe
from shared.runtime.resources import Resources
from shared.runtime.verdict import HttpResponse


def _no_events(event: InboundEvent, resources: Resources) -> dict[str, Any]:
    raise BadMessage("the quotes function answers HTTP GET requests only; it takes no CloudEvents")


@dataclass
class QuotesApp(FunctionApp):
    """The quotes function: read-only, needs PostgreSQL, not Kafka."""

    name: str = "quotes"
    handler: Callable[[InboundEvent, Resources], dict[str, Any]] = _no_events
    needs_database: bool = True
    needs_kafka: bool = False
    resources: Resources = field(default_factory=Resources)
    probes: Sequence[Probe] = (watch_price_freshness,)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.api = QuotesApi(self.resources)

    def handle_http(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        """GET /v1/... → the API; other GETs → health/metrics; other methods → 405."""
        bare, _, query = path.partition("?")
        if method.upper() != "GET":
            return HttpResponse.json(
                405, {"error": f"method {method.upper()} not allowed: the quotes API is read-only"}, {"Allow": "GET"}
            )
        if bare == API_PREFIX or bare.startswith(API_PREFIX + "/"):
            return self.api.handle(bare, query)
        return super().handle_http(method, bare, headers, body)
