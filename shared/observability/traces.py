"""Spans, exported over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

One trace runs from a scheduler tick to the audits it caused:

    tick <schedule>            scheduler, the PingSource event (a root: pings carry no trace)
    └ send <topic>             PRODUCER: the tick's jobs written to Kafka; each record's
      │                        `ce_traceparent` header carries this span's context
      └ process <topic>        CONSUMER: price / metadata / audit handling one delivered job
        ├ GET                  CLIENT: one per upstream HTTP attempt (shared/upstream/http.py)
        ├ INSERT token_prices  CLIENT: one per SQL statement run inside a traced job, the
        ├ COMMIT               transactions' COMMIT included (shared/db/connection.py)
        └ send <audit topic>   PRODUCER: the completion event
          └ process <audit topic>   audit: its GoPlus calls and writes below it

Attributes follow the OpenTelemetry semantic conventions (HTTP client, messaging, database,
CloudEvents). No attribute carries a secret: API keys travel in headers, which are never
recorded, and `url.full` loses user info and has credential-named query values redacted.

Nothing here is global: `Tracing` holds the process's tracer provider, made by
`shared.runtime.resources.Resources` and shut down (spans flushed) with it or at exit;
every layer that makes spans is handed its tracer. With tracing off the tracer is None and
each layer skips span work entirely, and trace ids still travel as before
(`shared.observability.tracing`). The standard variables the SDK reads itself keep their meaning:
`OTEL_EXPORTER_OTLP_HEADERS`/`_TIMEOUT`/`_COMPRESSION`, `OTEL_TRACES_SAMPLER`(`_ARG`),
`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_*`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared.observability.logging import is_secret_name, redact

if TYPE_CHECKING:
    import httpx
    from opentelemetry.sdk.trace import TracerProvider

    from shared.config import Settings
    from shared.events import InboundEvent, OutboundEvent

SERVICE_NAMESPACE = "price-crawler"
TRACES_PATH = "v1/traces"
# Semantic conventions' placeholder for a redacted query value.
REDACTED = "REDACTED"
_propagator = TraceContextTextMapPropagator()


# --- the process's tracer provider ----------------------------------------------------------------


def traces_endpoint(settings: Settings) -> str | None:
    """Where spans go: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as is, else OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces;
    None (tracing off) when neither is set or OTEL_SDK_DISABLED is true."""
    if settings.otel_sdk_disabled:
        return None
    if settings.otel_exporter_otlp_traces_endpoint:
        return settings.otel_exporter_otlp_traces_endpoint
    base = settings.otel_exporter_otlp_endpoint.strip()
    if not base:
        return None
    return f"{base.rstrip('/')}/{TRACES_PATH}"


class Tracing:
    """The spans of one process: its tracer provider and tracer, or nothing when tracing is off."""

    def __init__(self, provider: TracerProvider | None = None):
        self._provider = provider
        self.tracer: Tracer | None = provider.get_tracer("price-crawler") if provider is not None else None

    @classmethod
    def from_settings(cls, settings: Settings, service_name: str) -> Tracing:
        """A provider exporting in batches to the OTLP/HTTP endpoint of `settings`, as `service_name`
        (OTEL_SERVICE_NAME wins); tracing off when no endpoint is configured."""
        endpoint = traces_endpoint(settings)
        if endpoint is None:
            return cls(None)
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.resources import SERVICE_NAMESPACE as NAMESPACE
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        resource = Resource.create(
            {SERVICE_NAME: settings.otel_service_name or service_name or "price-crawler", NAMESPACE: SERVICE_NAMESPACE}
        )
        # shutdown_on_exit: the SDK flushes what is batched when the worker exits (SIGTERM on scale-down).
        provider = TracerProvider(resource=resource, shutdown_on_exit=True)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        return cls(provider)

    @property
    def enabled(self) -> bool:
        """Whether spans are recorded and exported."""
        return self.tracer is not None

    def flush(self, timeout_millis: int = 5000) -> bool:
        """Export every finished span now; True when all were exported in time."""
        return self._provider.force_flush(timeout_millis) if self._provider is not None else True

    def shutdown(self) -> None:
        """Flush and stop the exporter (at process exit)."""
        if self._provider is not None:
            self._provider.shutdown()


def current_traceparent() -> str | None:
    """The `traceparent` of the span being recorded in this context, or None outside one (tracing off)."""
    span = trace.get_current_span()
    if not span.is_recording():
        return None
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent")


def _fail(span: Span, exc: BaseException, error_type: str | None = None) -> None:
    span.set_attribute("error.type", error_type or _qualified_name(exc))
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {redact(str(exc))}"[:500]))


def _qualified_name(exc: BaseException) -> str:
    cls = type(exc)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


# --- an event delivered to a function ------------------------------------------------------------


@contextmanager
def event_span(tracer: Tracer | None, event: InboundEvent, topic: str | None) -> Iterator[Span | None]:
    """The span of one delivered event, child of the context it carries (its producer's send span).

    From a KafkaSource (`topic` given): a CONSUMER `process <topic>` span with the messaging
    attributes; from anything else (the PingSource): an INTERNAL span the handler may rename.
    Yields None when tracing is off. The caller sets the outcome (`event_failed`).
    """
    if tracer is None:
        yield None
        return
    carrier = {k: v for k in ("traceparent", "tracestate") if (v := event.extensions.get(k))}
    parent = _propagator.extract(carrier) if carrier else None
    attributes: dict[str, Any] = {
        "cloudevents.event_id": event.id,
        "cloudevents.event_source": event.source,
        "cloudevents.event_type": event.type,
        "cloudevents.event_spec_version": "1.0",
    }
    if event.subject:
        attributes["cloudevents.event_subject"] = event.subject
    if topic:
        attributes.update(
            {
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.operation.name": "process",
                "messaging.destination.name": topic,
                "messaging.message.id": event.id,
            }
        )
        # The local plane and Knative's dispatcher stamp these extensions on every record.
        partition, offset = event.extensions.get("knativekafkapartition"), event.extensions.get("knativekafkaoffset")
        if partition is not None:
            attributes["messaging.destination.partition.id"] = partition
        if offset is not None and offset.isdigit():
            attributes["messaging.kafka.offset"] = int(offset)
        key = event.extensions.get("partitionkey") or event.extensions.get("key")
        if key:
            attributes["messaging.kafka.message.key"] = key
        name, kind = f"process {topic}", SpanKind.CONSUMER
    else:
        name, kind = f"handle {event.type}", SpanKind.INTERNAL
    with tracer.start_as_current_span(
        name, context=parent, kind=kind, attributes=attributes, record_exception=False, set_status_on_exception=False
    ) as span:
        yield span


def event_failed(span: Span | None, exc: BaseException, status: int) -> None:
    """Mark the event's span failed with the error and the HTTP status the function answered."""
    if span is not None:
        span.set_attribute("http.response.status_code", status)
        _fail(span, exc, type(exc).__name__)


# --- events written to Kafka -----------------------------------------------------------------------


@contextmanager
def send_span(tracer: Tracer | None, topic: str, events: Sequence[OutboundEvent]) -> Iterator[dict[str, str]]:
    """A PRODUCER `send <topic>` span around writing `events` and awaiting their confirmation.

    Yields the trace-context headers (`traceparent`, `tracestate`) every record must carry so
    its consumer's span is a child of this one; empty when tracing is off.
    """
    if tracer is None:
        yield {}
        return
    attributes: dict[str, Any] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.destination.name": topic,
    }
    if len(events) == 1:
        attributes["messaging.message.id"] = events[0].id
        if events[0].key:
            attributes["messaging.kafka.message.key"] = events[0].key
    else:
        attributes["messaging.batch.message_count"] = len(events)
    with tracer.start_as_current_span(
        f"send {topic}",
        kind=SpanKind.PRODUCER,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        carrier: dict[str, str] = {}
        _propagator.inject(carrier)
        try:
            yield carrier
        except BaseException as exc:
            _fail(span, exc)
            raise


def with_trace_headers(headers: list[tuple[str, bytes]], carrier: Mapping[str, str]) -> list[tuple[str, bytes]]:
    """`headers` of a binary-mode CloudEvent with its `ce_traceparent`/`ce_tracestate` set from `carrier`."""
    if not carrier:
        return headers
    names = {f"ce_{k}" for k in carrier}
    return [h for h in headers if h[0] not in names] + [(f"ce_{k}", v.encode()) for k, v in carrier.items()]


# --- upstream HTTP ---------------------------------------------------------------------------------


@contextmanager
def http_client_span(tracer: Tracer | None, api: str, request: httpx.Request) -> Iterator[Span | None]:
    """A CLIENT span around one HTTP attempt: method, server, sanitised URL, status (`http_response`)."""
    if tracer is None:
        yield None
        return
    url = request.url
    attributes: dict[str, Any] = {
        "http.request.method": request.method,
        "server.address": url.host,
        "server.port": url.port or (443 if url.scheme == "https" else 80),
        "url.full": safe_url(url),
        "crawler.upstream.api": api,
    }
    with tracer.start_as_current_span(
        request.method,
        kind=SpanKind.CLIENT,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as exc:
            answered = (getattr(span, "attributes", None) or {}).get("http.response.status_code")  # SDK spans
            if not answered:  # no answer: timeout, connection error
                cause = exc.__cause__ or exc  # httpx's own exception (httpx.ReadTimeout), not our wrapper
                _fail(span, exc, _qualified_name(cause))
            raise


def http_response(span: Span | None, status: int) -> None:
    """Record the answer's status on the attempt's span (4xx/5xx are errors of a client span)."""
    if span is None:
        return
    span.set_attribute("http.response.status_code", status)
    if status >= 400:
        span.set_attribute("error.type", str(status))
        span.set_status(Status(StatusCode.ERROR))


def safe_url(url: httpx.URL) -> str:
    """The URL without user info and with every credential-named query value replaced by REDACTED."""
    # Each part through `redact` too: it masks any registered secret (an API key) wherever it appears.
    params: list[tuple[str, str | int | float | bool | None]] = [
        (k, REDACTED if is_secret_name(k) else redact(v)) for k, v in url.params.multi_items()
    ]
    clean = url.copy_with(username=None, password=None, query=None, path=redact(url.path))
    if params:
        import httpx

        clean = clean.copy_with(params=httpx.QueryParams(params))
    return str(clean)


# --- SQL statements ----------------------------------------------------------------------------------


@contextmanager
def db_span(tracer: Tracer | None, sql: str, connection: Mapping[str, Any]) -> Iterator[None]:
    """A CLIENT span around one SQL statement, only inside a span being recorded (a job, a tick):
    readiness pings and background folds make no root spans of their own.

    `connection` holds the connection's `db.namespace`, `server.address`, `server.port`.
    """
    if tracer is None or not trace.get_current_span().is_recording():
        yield
        return
    summary = statement_summary(sql)
    attributes: dict[str, Any] = {"db.system.name": "postgresql", **connection}
    if summary.operation:
        attributes["db.operation.name"] = summary.operation
    if summary.collection:
        attributes["db.collection.name"] = summary.collection
    if summary.text:
        attributes["db.query.summary"] = summary.text
    name = summary.text or str(connection.get("db.namespace") or "postgresql")
    with tracer.start_as_current_span(
        name, kind=SpanKind.CLIENT, attributes=attributes, record_exception=False, set_status_on_exception=False
    ) as span:
        try:
            yield
        except BaseException as exc:
            fields = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
            if fields.get("C"):
                span.set_attribute("db.response.status_code", str(fields["C"]))
            _fail(span, exc, str(fields["C"]) if fields.get("C") else None)
            raise


class StatementSummary:
    """What a statement does, by the conventions: one operation and collection when it has one of
    each, and a low-cardinality summary (`INSERT token_prices INSERT token_latest_prices`)."""

    __slots__ = ("operation", "collection", "text")

    def __init__(self, operation: str | None, collection: str | None, text: str | None):
        self.operation, self.collection, self.text = operation, collection, text


_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)
_CTE_NAME = re.compile(r"(?:\bWITH|,)\s+(\w+)\s+AS\s*\(", re.I)
_WRITE = re.compile(r"\b(?:(INSERT)\s+INTO|(?<!\bDO\s)(UPDATE)|(DELETE)\s+FROM)\s+(\w+(?:\.\w+)?)", re.I)
_READ = re.compile(r"\b(?:FROM|JOIN)\s+(\w+(?:\.\w+)?)\b(?!\s*\()", re.I)
_CONTROL = frozenset({"BEGIN", "COMMIT", "ROLLBACK", "START", "SAVEPOINT", "RELEASE", "SET", "LOCK", "SHOW"})
_SQL_WORDS = frozenset({"SELECT", "LATERAL", "ONLY", "UNNEST"})
_MAX_SUMMARY = 255


@lru_cache(maxsize=512)  # a process runs a few dozen distinct statements, many times each
def statement_summary(sql: str) -> StatementSummary:
    """Operation, collection and summary of a SQL statement, read from its text (never its values)."""
    text = _COMMENTS.sub(" ", sql).strip()
    first = text.split(None, 1)[0].upper() if text else ""
    if first in _CONTROL:
        return StatementSummary(first, None, first)
    ctes = {m.lower() for m in _CTE_NAME.findall(text)}
    writes = [
        ((m[1] or m[2] or m[3]).upper(), m[4])
        for m in _WRITE.finditer(text)
        if m[4].lower() not in ctes and m[4].upper() != "SET"
    ]
    if writes:
        pairs = list(dict.fromkeys(writes))
    elif first in ("SELECT", "WITH"):
        tables = [
            t for t in dict.fromkeys(_READ.findall(text)) if t.lower() not in ctes and t.upper() not in _SQL_WORDS
        ]
        pairs = [("SELECT", t) for t in tables] or [("SELECT", "")]
    else:
        return StatementSummary(first or None, None, first or None)
    operations = {op for op, _ in pairs}
    summary_parts: list[str] = []
    for op, table in pairs:
        if not summary_parts or summary_parts[-1].split(" ", 1)[0] != op or op != "SELECT":
            summary_parts.append(f"{op} {table}".strip())
        else:  # SELECT a b: the tables one SELECT reads
            summary_parts[-1] = f"{summary_parts[-1]} {table}"
    summary = " ".join(summary_parts)[:_MAX_SUMMARY]
    operation = next(iter(operations)) if len(operations) == 1 else None
    collection = pairs[0][1] or None if len(pairs) == 1 else None
    return StatementSummary(operation, collection, summary)
