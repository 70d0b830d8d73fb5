"""Runtime-neutral event records: what crosses the edge into the domain and back out.

The domain never sees an SDK CloudEvent; it sees `InboundEvent` (one delivered event)
and builds `OutboundEvent`s (events it wants written to Kafka).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from shared.json_encoding import dumps


@dataclass(frozen=True, slots=True)
class InboundEvent:
    """A CloudEvent delivered to a function. `data` is the raw body bytes."""

    id: str
    source: str
    type: str
    data: bytes
    subject: str | None = None
    time: str | None = None
    datacontenttype: str | None = None
    extensions: dict[str, str] = field(default_factory=dict)

    @property
    def traceparent(self) -> str | None:
        """W3C trace context carried by the event, if any."""
        return self.extensions.get("traceparent")


@dataclass(frozen=True, slots=True)
class OutboundEvent:
    """An event to publish as a binary-mode CloudEvent (ce_* headers, JSON body)."""

    type: str
    source: str
    data: Any
    key: str | None = None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    subject: str | None = None
    extensions: dict[str, str] = field(default_factory=dict)
    dataschema: str | None = None  # the URI of the data's JSON Schema (shared.crawler.contracts)

    def body(self) -> bytes:
        """The JSON body; Decimals are written as exact strings, never floats."""
        if isinstance(self.data, bytes):
            return self.data
        return dumps(self.data).encode()
