"""CloudEvents as the Knative Kafka data plane handles them, and their wire encodings.

Attribute values are kept as the strings that go on the wire; data is raw bytes (or None
for "no data"), so nothing is re-encoded on the way through: a price in a JSON body
reaches the function byte for byte.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

CONTEXT_ATTRIBUTES = frozenset(
    {"specversion", "id", "source", "type", "datacontenttype", "dataschema", "subject", "time"}
)
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
_EXTENSION_NAME = re.compile(r"^[a-z0-9]+$")


def is_valid_extension_name(name: str) -> bool:
    """CloudEvents attribute names: lower-case ASCII letters and digits only."""
    return bool(_EXTENSION_NAME.match(name))


@dataclass(frozen=True)
class CloudEvent:
    """One event: wire-form attribute strings (context attributes and extensions) plus raw data."""

    attributes: Mapping[str, str]
    data: bytes | None = None

    @property
    def id(self) -> str:
        return self.attributes.get("id", "")

    @property
    def type(self) -> str:
        return self.attributes.get("type", "")

    @property
    def source(self) -> str:
        return self.attributes.get("source", "")

    def get(self, name: str, default: str | None = None) -> str | None:
        """An attribute or extension by name."""
        return self.attributes.get(name, default)

    def with_extensions(self, extensions: Mapping[str, str]) -> CloudEvent:
        """A copy with `extensions` set; given values win over existing ones."""
        merged = dict(self.attributes)
        merged.update(extensions)
        return CloudEvent(attributes=merged, data=self.data)


# --- time ------------------------------------------------------------------------------------

_RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$")


def _render_time(local: datetime, nanos: int, offset: timedelta) -> str:
    # java.time ISO_OFFSET_DATE_TIME (what CloudEvents sdk-java writes): seconds always,
    # fraction only as many digits as needed, "Z" for a zero offset.
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    if nanos:
        text += "." + f"{nanos:09d}".rstrip("0")
    if offset == timedelta(0):
        return text + "Z"
    sign = "+" if offset > timedelta(0) else "-"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{text}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def format_record_time(epoch_millis: int) -> str:
    """A Kafka record timestamp rendered in UTC as the Java dispatcher does (a.3 `time`)."""
    moment = datetime(1970, 1, 1) + timedelta(milliseconds=epoch_millis)
    return _render_time(moment, (epoch_millis % 1000) * 1_000_000, timedelta(0))


def normalise_time(text: str) -> str:
    """Parse an RFC 3339 `time` and render it like sdk-java; raise ValueError if invalid."""
    match = _RFC3339.match(text.strip())
    if match is None:
        raise ValueError(f"time {text!r} is not RFC 3339")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    local = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
    nanos = int((fraction or "0").ljust(9, "0"))
    if zone in ("Z", "z"):
        offset = timedelta(0)
    else:
        sign = 1 if zone[0] == "+" else -1
        offset = sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    return _render_time(local, nanos, offset)


def format_send_time(moment: datetime) -> str:
    """A send time as cloudevents/sdk-go writes it (RFC 3339, UTC, trailing zeros trimmed)."""
    utc = moment.astimezone(UTC).replace(tzinfo=None)
    return _render_time(utc, utc.microsecond * 1000, timedelta(0))


# --- HTTP binary mode --------------------------------------------------------------------------

_HEADER_SAFE = frozenset(chr(c) for c in range(0x20, 0x7F))


def encode_header_value(value: str) -> str:
    """Percent-encode what cannot go into an HTTP header (non-ASCII, control characters).

    The CloudEvents HTTP binding also lists space, '"' and '%', but neither sdk-java nor the
    Python SDK (which the functions use) decode those, so they travel unchanged.
    """
    if all(ch in _HEADER_SAFE for ch in value):
        return value
    out = []
    for ch in value:
        if ch in _HEADER_SAFE:
            out.append(ch)
        else:
            out.extend(f"%{byte:02X}" for byte in ch.encode("utf-8"))
    return "".join(out)


def binary_http_headers(event: CloudEvent) -> list[tuple[str, str]]:
    """Request headers of the CloudEvents binary HTTP binding (a.1): ce-* and Content-Type.

    A `traceparent`/`tracestate` extension is also sent as the W3C trace-context header so
    that the function's tracing continues the producer's trace.
    """
    headers: list[tuple[str, str]] = []
    for name, value in event.attributes.items():
        if name == "datacontenttype":
            headers.append(("Content-Type", encode_header_value(value)))
        else:
            headers.append((f"ce-{name}", encode_header_value(value)))
    for name in ("traceparent", "tracestate"):
        if name in event.attributes:
            headers.append((name, encode_header_value(event.attributes[name])))
    return headers


# --- Kafka (KafkaSink output, knative-eventing.md c) -------------------------------------------


def kafka_binary_headers(event: CloudEvent) -> list[tuple[str, bytes]]:
    """Kafka binary mode: every attribute as header ce_<name>, datacontenttype as content-type."""
    headers: list[tuple[str, bytes]] = []
    for name, value in event.attributes.items():
        key = "content-type" if name == "datacontenttype" else f"ce_{name}"
        headers.append((key, value.encode("utf-8")))
    return headers


def structured_json(event: CloudEvent) -> bytes:
    """The JSON event format (`application/cloudevents+json`), data embedded without re-encoding.

    JSON data (JSON content type, or none) is inserted verbatim; other UTF-8 text becomes a
    JSON string; anything else goes to `data_base64`.
    """
    envelope = json.dumps(dict(event.attributes), ensure_ascii=False, separators=(",", ":"))
    if event.data is None:
        return envelope.encode("utf-8")
    content_type = event.attributes.get("datacontenttype")
    member: str
    if is_json_content_type(content_type) and _is_json(event.data):
        member = '"data":' + event.data.decode("utf-8")
    else:
        try:
            member = '"data":' + json.dumps(event.data.decode("utf-8"), ensure_ascii=False)
        except UnicodeDecodeError:
            member = '"data_base64":' + json.dumps(base64.b64encode(event.data).decode("ascii"))
    prefix = envelope[:-1] + ("," if len(envelope) > 2 else "")
    return (prefix + member + "}").encode("utf-8")


def is_json_content_type(content_type: str | None) -> bool:
    """True for no content type (JSON implied by the event format) and */json, */*+json."""
    if content_type is None:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("/json") or media.endswith("+json")


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


# --- JSON that keeps numbers exactly -------------------------------------------------------------


class JsonNumber(str):
    """A JSON number kept as its original text, so re-serialising never rounds a price."""


def loads_exact(text: str | bytes) -> Any:
    """json.loads keeping every number as `JsonNumber` text."""
    return json.loads(text, parse_float=JsonNumber, parse_int=JsonNumber)


def dumps_exact(value: Any) -> str:
    """Compact JSON of a `loads_exact` tree; numbers are written back exactly as read."""
    if isinstance(value, JsonNumber):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        return (
            "{" + ",".join(f"{json.dumps(str(k), ensure_ascii=False)}:{dumps_exact(v)}" for k, v in value.items()) + "}"
        )
    if isinstance(value, Iterable):
        return "[" + ",".join(dumps_exact(v) for v in value) + "]"
    return json.dumps(value)  # floats such as NaN from parse_constant


def render_scalar(value: Any) -> str | None:
    """A JSON scalar attribute value as its wire string; None for objects and arrays."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    return None


__all__ = [
    "CONTEXT_ATTRIBUTES",
    "STRUCTURED_CONTENT_TYPE",
    "CloudEvent",
    "JsonNumber",
    "binary_http_headers",
    "dumps_exact",
    "encode_header_value",
    "format_record_time",
    "format_send_time",
    "is_json_content_type",
    "is_valid_extension_name",
    "kafka_binary_headers",
    "loads_exact",
    "normalise_time",
    "render_scalar",
    "structured_json",
]
