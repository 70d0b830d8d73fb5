"""HTTP requests exactly as Knative's sources deliver CloudEvents to a function.

`kafka_source_request` builds what KafkaSource POSTs for one Kafka record
(docs/knative-eventing.md a.1-a.8): a plain record (no `ce_*` headers,
e.g. written by kcat) becomes a `dev.knative.kafka.event` with id
`partition:<P>/offset:<O>` and no Content-Type; a binary-mode CloudEvent record keeps its
own attributes. `ping_request` is what PingSource sends on a tick (section e).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

NAMESPACE = "price-crawler"
KAFKA_EVENT_TYPE = "dev.knative.kafka.event"
PING_EVENT_TYPE = "dev.knative.sources.ping"


@dataclass(frozen=True)
class DeliveredRequest:
    """One HTTP request a source sends to a function."""

    headers: dict[str, str]
    body: bytes
    method: str = "POST"
    path: str = "/"

    def to(self, app: Any):
        """POST it through a `FunctionApp` (`handle_http`) and return the `HttpResponse`."""
        return app.handle_http(self.method, self.path, self.headers, self.body)


def rfc3339(at: datetime) -> str:
    """UTC with milliseconds and `Z`, as the Java SDK writes `ce-time`."""
    return at.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def kafka_source_request(
    value: bytes | str | None,
    *,
    topic: str,
    partition: int = 0,
    offset: int = 0,
    key: bytes | str | None = None,
    kafka_headers: Iterable[tuple[str, bytes | str]] = (),
    timestamp: datetime | None = None,
    source_name: str = "price-request-source",
    namespace: str = NAMESPACE,
) -> DeliveredRequest:
    """The request KafkaSource sends for one record (a.3 for plain records, a.5 for CloudEvents)."""
    record_headers = [(name, v.encode() if isinstance(v, str) else v) for name, v in kafka_headers]
    body = b"" if value is None else value.encode() if isinstance(value, str) else value
    headers: dict[str, str] = {"Prefer": "reply", "Kn-Namespace": namespace}
    if any(name == "ce_specversion" for name, _ in record_headers):
        # a.5: a binary-mode CloudEvent record passes its own attributes through.
        for name, raw in record_headers:
            if name.startswith("ce_"):
                headers[f"ce-{name[3:].lower()}"] = raw.decode()
            elif name.lower() == "content-type":
                headers["Content-Type"] = raw.decode()
    else:
        # a.3: a plain record is wrapped; no Content-Type unless the record had one.
        headers.update(
            {
                "ce-specversion": "1.0",
                "ce-id": f"partition:{partition}/offset:{offset}",
                "ce-source": f"/apis/v1/namespaces/{namespace}/kafkasources/{source_name}#{topic}",
                "ce-subject": f"partition:{partition}#{offset}",
                "ce-type": KAFKA_EVENT_TYPE,
                "ce-time": rfc3339(timestamp or datetime.now(timezone.utc)),
            }
        )
        key_text = key.decode() if isinstance(key, bytes) else key
        if key_text:
            headers["ce-key"] = key_text
            headers["ce-partitionkey"] = key_text
        for name, raw in record_headers:
            if name.lower() == "content-type":
                headers["Content-Type"] = raw.decode().lower()
            else:
                headers[f"ce-kafkaheader{re.sub('[^a-z0-9]', '', name.lower())}"] = raw.decode("utf-8", "replace")
    # a.6: added to every KafkaSource event.
    headers["ce-knativekafkapartition"] = str(partition)
    headers["ce-knativekafkaoffset"] = str(offset)
    return DeliveredRequest(headers, body)


def request_for_message(message: Any, *, source_name: str = "price-request-source") -> DeliveredRequest:
    """The KafkaSource request for a record consumed with confluent-kafka (`Message`)."""
    _, millis = message.timestamp()
    return kafka_source_request(
        message.value(),
        topic=message.topic(),
        partition=message.partition(),
        offset=message.offset(),
        key=message.key(),
        kafka_headers=message.headers() or (),
        timestamp=datetime.fromtimestamp(millis / 1000, timezone.utc) if millis and millis > 0 else None,
        source_name=source_name,
    )


def job_request(
    job: Mapping[str, Any] | bytes | str,
    *,
    topic: str = "price-crawler.price.request",
    offset: int = 0,
    partition: int = 0,
    **kwargs: Any,
) -> DeliveredRequest:
    """A job message written by a plain Kafka client, as KafkaSource delivers it."""
    value = job if isinstance(job, (bytes, str)) else json.dumps(job)
    return kafka_source_request(value, topic=topic, partition=partition, offset=offset, **kwargs)


def ping_request(
    schedule: str | None,
    *,
    name: str | None = None,
    data: bytes | str | None = None,
    at: datetime | None = None,
    namespace: str = NAMESPACE,
) -> DeliveredRequest:
    """What PingSource POSTs on a tick: binary mode, JSON data `{"schedule": ...}`, a fresh UUID id."""
    body = data if data is not None else json.dumps({"schedule": schedule})
    return DeliveredRequest(
        {
            "ce-specversion": "1.0",
            "ce-id": str(uuid.uuid4()),
            "ce-source": f"/apis/v1/namespaces/{namespace}/pingsources/{name or f'{schedule}-tick'}",
            "ce-type": PING_EVENT_TYPE,
            "ce-time": rfc3339(at or datetime.now(timezone.utc)),
            "Content-Type": "application/json",
        },
        body.encode() if isinstance(body, str) else body,
    )


def structured_request(attributes: Mapping[str, Any], data: Any) -> DeliveredRequest:
    """A structured-mode CloudEvent (`application/cloudevents+json`): attributes and data in the body."""
    envelope = {"specversion": "1.0", **attributes, "data": data}
    return DeliveredRequest({"Content-Type": "application/cloudevents+json"}, json.dumps(envelope).encode())
