"""Kafka record → CloudEvent, exactly as KafkaSource's dispatcher does it (knative-eventing.md a.2–a.6).

Decoding order (a.2): a `content-type` header naming the CloudEvents JSON format → structured
event; else a `ce_specversion` header → binary event; else — or when either of those does not
parse into a valid event — the record is wrapped with synthesised attributes (a.3). Then the
partition/offset extensions and `ceOverrides` are added (a.6).
"""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from local.eventing.cloudevent import (
    STRUCTURED_CONTENT_TYPE,
    CloudEvent,
    dumps_exact,
    format_record_time,
    is_json_content_type,
    is_valid_extension_name,
    loads_exact,
    normalise_time,
    render_scalar,
)

KafkaKeyType = Literal["string", "int", "float", "byte-array"]
KEY_TYPES: tuple[KafkaKeyType, ...] = ("string", "int", "float", "byte-array")
KAFKA_EVENT_TYPE = "dev.knative.kafka.event"
_SPEC_VERSIONS = ("1.0", "0.3")
_URI_FORBIDDEN = frozenset(' "<>\\^`{|}')


@dataclass(frozen=True)
class KafkaRecord:
    """The parts of a consumed Kafka record the dispatcher looks at."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes | None]] = ()


class InvalidCloudEvent(ValueError):
    """The record claims to be a CloudEvent but is not a valid one (it is then wrapped, a.2 step 3)."""


def event_from_record(
    record: KafkaRecord,
    *,
    namespace: str,
    source_name: str,
    key_type: KafkaKeyType = "string",
    ce_overrides: Mapping[str, str] | None = None,
) -> CloudEvent:
    """The CloudEvent a KafkaSource named `namespace/source_name` delivers for `record`."""
    try:
        event = decode_cloudevent(record)
    except InvalidCloudEvent:
        event = None
    if event is None:
        event = wrap_plain_record(record, namespace=namespace, source_name=source_name, key_type=key_type)
    extensions = {
        "knativekafkapartition": str(record.partition),
        "knativekafkaoffset": str(record.offset),
    }
    extensions.update(ce_overrides or {})
    return event.with_extensions(extensions)


def decode_cloudevent(record: KafkaRecord) -> CloudEvent | None:
    """A record that already is a CloudEvent (a.2 steps 1–2, a.5); None if it does not claim to be one.

    Raises `InvalidCloudEvent` when it claims to be one but does not parse.
    """
    content_type = _last_header(record.headers, "content-type")
    if content_type is not None:
        media = content_type.decode("utf-8", "replace").split(";", 1)[0].strip().lower()
        if media == STRUCTURED_CONTENT_TYPE:
            return _decode_structured(record.value)
    if any(name.lower() == "ce_specversion" for name, _ in record.headers):
        return _decode_binary(record)
    return None


def wrap_plain_record(
    record: KafkaRecord, *, namespace: str, source_name: str, key_type: KafkaKeyType = "string"
) -> CloudEvent:
    """Synthesised attributes for a record that is no CloudEvent (a.3, InvalidCloudEventInterceptor)."""
    attributes: dict[str, str] = {
        "specversion": "1.0",
        "id": f"partition:{record.partition}/offset:{record.offset}",
        "source": f"/apis/v1/namespaces/{namespace}/kafkasources/{source_name}#{record.topic}",
        "type": KAFKA_EVENT_TYPE,
        "subject": f"partition:{record.partition}#{record.offset}",
        "time": format_record_time(record.timestamp_ms),
    }
    key = render_key(record.key, key_type)
    if key is not None:
        attributes["partitionkey"] = key
        attributes["key"] = key
    content_type: str | None = None
    for name, value in record.headers:
        text = (value or b"").decode("utf-8", "replace")
        if name.lower() == "content-type":
            content_type = text
            continue
        attributes["kafkaheader" + sanitise_header_name(name)] = text  # duplicates: last one wins
    if content_type is not None:
        attributes["datacontenttype"] = content_type.lower()
    return CloudEvent(attributes=attributes, data=record.value)


def sanitise_header_name(name: str) -> str:
    """Lower-case the header name and drop every character outside [a-z0-9] (`X-Request-Id` → `xrequestid`)."""
    return "".join(ch for ch in name.lower() if ("a" <= ch <= "z") or ("0" <= ch <= "9"))


def render_key(key: bytes | None, key_type: KafkaKeyType = "string") -> str | None:
    """The `key`/`partitionkey` value for a record key (a.4); None for a null or empty key."""
    if not key:
        return None
    if key_type == "int" and len(key) == 4:
        return str(struct.unpack(">i", key)[0])
    if key_type == "float" and len(key) == 4:
        return java_float_string(struct.unpack(">f", key)[0], single=True)
    if key_type == "float" and len(key) == 8:
        return java_float_string(struct.unpack(">d", key)[0], single=False)
    if key_type == "byte-array":
        return base64.b64encode(key).decode("ascii")  # binary attributes are base64 on the wire
    return key.decode("utf-8", "replace")


def java_float_string(value: float, *, single: bool) -> str:
    """`Float.toString` / `Double.toString`: shortest digits, scientific outside [1e-3, 1e7)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1, value) < 0 else "0.0"
    shortest = repr(value)
    if single:
        for precision in range(1, 10):
            candidate = f"{value:.{precision}g}"
            if struct.unpack(">f", struct.pack(">f", float(candidate)))[0] == value:
                shortest = candidate
                break
    number = Decimal(shortest).normalize()
    sign = "-" if number < 0 else ""
    digits = "".join(map(str, number.as_tuple().digits))
    exponent = number.adjusted()  # decimal exponent of the first significant digit
    if 1e-3 <= abs(value) < 1e7:
        if exponent >= 0:
            whole = digits[: exponent + 1].ljust(exponent + 1, "0")
            fraction = digits[exponent + 1 :] or "0"
        else:
            whole, fraction = "0", "0" * (-exponent - 1) + digits
        return f"{sign}{whole}.{fraction}"
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{exponent}"


# --- CloudEvents Kafka protocol binding ----------------------------------------------------------


def _last_header(headers: Sequence[tuple[str, bytes | None]], name: str) -> bytes | None:
    found: bytes | None = None
    for header, value in headers:
        if header.lower() == name:
            found = value if value is not None else b""
    return found


def _decode_binary(record: KafkaRecord) -> CloudEvent:
    attributes: dict[str, str] = {}
    for name, value in record.headers:
        lowered = name.lower()
        if lowered.startswith("ce_") and len(lowered) > 3:
            attributes[lowered[3:]] = (value or b"").decode("utf-8", "replace")
    content_type = _last_header(record.headers, "content-type")
    if content_type is not None:
        attributes["datacontenttype"] = content_type.decode("utf-8", "replace")
    return _validated(attributes, record.value or None)


def _decode_structured(value: bytes | None) -> CloudEvent:
    try:
        return _parse_structured(value)
    except InvalidCloudEvent:
        raise
    except Exception as exc:  # e.g. RecursionError on deep nesting: still "not a CloudEvent", never a drop
        raise InvalidCloudEvent(
            f"structured CloudEvent cannot be parsed: {type(exc).__name__}: {str(exc)[:200]}"
        ) from None


def _parse_structured(value: bytes | None) -> CloudEvent:
    if not value:
        raise InvalidCloudEvent("structured CloudEvent without a body")
    try:
        document = loads_exact(value)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidCloudEvent(f"structured CloudEvent is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidCloudEvent("structured CloudEvent is not a JSON object")
    attributes: dict[str, str] = {}
    data: bytes | None = None
    for name, member in document.items():
        if name == "data":
            if member is None:
                continue
            if isinstance(member, str) and not is_json_content_type(document.get("datacontenttype")):
                data = member.encode("utf-8")
            else:
                data = dumps_exact(member).encode("utf-8")
        elif name == "data_base64":
            if member is None:
                continue
            try:
                data = base64.b64decode(str(member), validate=True)
            except ValueError:
                raise InvalidCloudEvent("data_base64 is not base64") from None
        elif member is not None:
            rendered = render_scalar(member)
            if rendered is None:
                raise InvalidCloudEvent(f"attribute {name!r} is not a scalar")
            attributes[name] = rendered
    return _validated(attributes, data)


def _validated(attributes: dict[str, str], data: bytes | None) -> CloudEvent:
    """Apply the checks sdk-java makes while building the event; raise InvalidCloudEvent."""
    if attributes.get("specversion") not in _SPEC_VERSIONS:
        raise InvalidCloudEvent(f"unsupported specversion {attributes.get('specversion')!r}")
    for required in ("id", "source", "type"):
        if not attributes.get(required):
            raise InvalidCloudEvent(f"missing required attribute {required!r}")
    for uri_attribute in ("source", "dataschema", "schemaurl"):
        value = attributes.get(uri_attribute)
        if value is not None and any(ch in _URI_FORBIDDEN or ord(ch) < 0x20 for ch in value):
            raise InvalidCloudEvent(f"attribute {uri_attribute!r} is not a URI reference")
    if "time" in attributes:
        try:
            attributes["time"] = normalise_time(attributes["time"])
        except ValueError as exc:
            raise InvalidCloudEvent(str(exc)) from None
    for name in attributes:
        if not is_valid_extension_name(name):
            raise InvalidCloudEvent(f"invalid attribute name {name!r}")
    ordered: dict[str, str] = {
        name: attributes[name] for name in ("specversion", "id", "source", "type") if name in attributes
    }
    ordered.update((k, v) for k, v in attributes.items() if k not in ordered)
    return CloudEvent(attributes=ordered, data=data)
