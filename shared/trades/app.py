"""The trades function's HTTP surface: the API under /api/trades; health and metrics as every function.

`TradesApp` is a `FunctionApp` whose requests under `/api/trades` go to `TradesApi`; it takes
no CloudEvents. It needs Kafka (POST publishes to raw-trades) and PostgreSQL (GET reads the
trades the normaliser stored). The token key is registered with the log redaction at start.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.errors import BadMessage
from shared.events import InboundEvent
from shared.observability.logging import register_secret
from shared.runtime.app import FunctionApp
from shared.runtime.resources import Resources
from shared.runtime.verdict import HttpResponse
from shared.trades.api import API_PREFIX, TradesApi
from shared.trades.journal import journal_response
from shared.trades.settings import TradesSettings


def _no_events(event: InboundEvent, resources: Resources) -> dict[str, Any]:
    raise BadMessage("the trades function answers its HTTP API only; it takes no CloudEvents")


@dataclass
class TradesApp(FunctionApp):
    """The trades API function."""

    name: str = "trades"
    handler: Callable[[InboundEvent, Resources], dict[str, Any]] = _no_events
    needs_database: bool = True
    needs_kafka: bool = True
    resources: Resources = field(default_factory=Resources)
    trades: TradesSettings = field(default_factory=TradesSettings)

    def __post_init__(self) -> None:
        super().__post_init__()
        register_secret(self.trades.token_key.get_secret_value())
        self.resources.once("trades_settings", lambda: self.trades)
        self.api = TradesApi(self.resources, self.trades)

    def handle_http(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        """/api/trades... → the API; GET health/metrics → the base class; anything else 404/405."""
        bare, _, query = path.partition("?")
        if bare.rstrip("/") == API_PREFIX or bare.startswith(API_PREFIX + "/"):
            return self.api.handle(method.upper(), bare.rstrip("/") or bare, query, headers, body)
        if method.upper() == "GET":
            page = journal_response(bare, self.trades)
            return page or super().handle_http(method, bare, headers, body)
        return HttpResponse.json(404, {"error": f"no route for {method.upper()} {bare[:200]}"})
