"""The top-100 functions wired together for a test: price, metadata and scheduler apps on one
`Resources` (test database, test topics, simulated market), and KafkaSource-style delivery."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from local.market.server import SimulatedMarket
from shared.config import Settings
from shared.runtime.app import FunctionApp
from shared.runtime.resources import Resources
from shared.runtime.verdict import HttpResponse
from tests.helpers.cloudevents import job_request
from tests.helpers.db import Database
from tests.helpers.functions import function_app


def utc_now_iso() -> str:
    """Now, as job messages write timestamps (`2025-06-25T21:00:00.123456Z`)."""
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass
class Top100Stack:
    """The price, metadata and scheduler functions on one `Resources` (test DB, test topics, market)."""

    market: SimulatedMarket
    resources: Resources
    db: Database
    topics: dict[str, str]
    bootstrap: str
    offsets: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.price_app = function_app("price", self.resources)
        self.metadata_app = function_app("metadata", self.resources)
        self.scheduler_app = function_app("scheduler", self.resources)

    @property
    def settings(self) -> Settings:
        return self.resources.settings

    def configure(self, **changes: Any) -> None:
        """Run the next jobs with these settings changed (settings are immutable: a changed copy)."""
        self.resources.settings = self.resources.settings.model_copy(update=changes)

    def deliver(
        self,
        app: FunctionApp,
        job: dict[str, Any] | bytes | str,
        *,
        topic: str,
        offset: int | None = None,
        source_name: str,
    ) -> HttpResponse:
        """KafkaSource-style delivery of a plain job record (next offset unless given)."""
        if offset is None:
            offset = self.offsets.get(topic, 0)
            self.offsets[topic] = offset + 1
        return job_request(job, topic=topic, offset=offset, source_name=source_name).to(app)

    def price(self, job: dict[str, Any] | bytes | str, *, offset: int | None = None) -> HttpResponse:
        """Deliver a job to the price function as KafkaSource would."""
        return self.deliver(
            self.price_app, job, topic=self.topics["price"], offset=offset, source_name="price-request-source"
        )

    def refresh_top100(self) -> HttpResponse:
        """Run the top-100 metadata refresh (a metadata/top100 job with no tokens named)."""
        job = {"job_type": "metadata", "token_type": "top100", "symbols": [], "timestamp": utc_now_iso()}
        return self.deliver(
            self.metadata_app, job, topic=self.topics["metadata"], source_name="metadata-request-source"
        )


def body_of(response: HttpResponse) -> dict[str, Any]:
    """The JSON body of a function's answer."""
    return json.loads(response.body)
