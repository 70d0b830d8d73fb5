"""Decode a CloudEvent from an HTTP request (binary or structured mode)."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from shared.errors import BadMessage
from shared.events import InboundEvent
from shared.runtime.cloudevents_compat import from_http

_REQUIRED = ("id", "source", "type")
_CORE = {"id", "source", "type", "specversion", "subject", "time", "datacontenttype", "dataschema", "data"}
# Longest id, source and type accepted, in UTF-8 bytes. The job id derives from source and id
# (`{source}#{id}`) and is a key of job_logs: a B-tree entry holds at most ~2,700 bytes, so a
# 3-KB id made the job log fail (a 500, retried to no end) or stored it. Knative's own ids
# (`partition:P/offset:O`, sources `/apis/v1/namespaces/…#topic`) are far shorter.
MAX_ATTRIBUTE_BYTES = {"id": 256, "source": 512, "type": 256}


def event_from_http(headers: Mapping[str, str], body: bytes) -> InboundEvent:
    """Parse the request into an `InboundEvent`; raise `BadMessage` if it is no CloudEvent."""
    lowered = {k.lower(): v for k, v in headers.items()}
    binary = "ce-specversion" in lowered
    missing = [f"ce-{name}" for name in _REQUIRED if binary and not lowered.get(f"ce-{name}")]
    if missing:  # the SDK would report these as a missing specversion
        raise BadMessage(f"request is not a CloudEvent: binary mode without {', '.join(missing)}")
    try:
        event = from_http(lowered, body, data_unmarshaller=lambda raw: raw)
        data = _as_bytes(event.data) if binary else _structured_data(body)
    except Exception as exc:  # the SDK raises several unrelated types for "not a CloudEvent"
        raise BadMessage(f"request is not a CloudEvent: {exc}") from None
    attributes = event.get_attributes()
    for name, limit in MAX_ATTRIBUTE_BYTES.items():
        size = len(str(attributes[name]).encode("utf-8", "surrogatepass"))
        if size > limit:
            raise BadMessage(f"CloudEvent {name} is {size} bytes, over the {limit}-byte limit")
    extensions = {k: str(v) for k, v in attributes.items() if k not in _CORE}
    return InboundEvent(
        id=str(attributes["id"]),
        source=str(attributes["source"]),
        type=str(attributes["type"]),
        subject=_opt(attributes.get("subject")),
        time=_opt(attributes.get("time")),
        datacontenttype=_opt(attributes.get("datacontenttype")),
        extensions=extensions,
        data=data,
    )


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)


def _as_bytes(data: Any) -> bytes:
    if data is None:
        return b""
    if isinstance(data, bytes):
        return data
    return str(data).encode()


def _structured_data(body: bytes) -> bytes:
    # The SDK re-encodes structured `data` through floats; take it from the envelope exactly.
    envelope = json.loads(body, parse_float=Decimal)
    if "data_base64" in envelope:
        return base64.b64decode(envelope["data_base64"], validate=True)
    data = envelope.get("data")
    if data is None:
        return b""
    return data.encode() if isinstance(data, str) else _exact_json(data).encode()


def _exact_json(value: Any) -> str:
    """JSON text of `value`, every Decimal written as the number it was on the wire."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{_exact_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_exact_json(v) for v in value) + "]"
    return json.dumps(value)
