"""W3C trace context carried through CloudEvents (the `traceparent` extension).

A scheduler tick starts a trace (or continues the PingSource's); every job it emits
carries a child `traceparent`; price/metadata pass theirs on to the events they write
(completion, price updates, detail jobs), and audit logs it — so one tick is one trace
id from scheduler to audit, and `trace_id` in the JSON logs joins every line of it.

Parsing follows the W3C Trace Context rules through OpenTelemetry's propagator
(all-zero ids, version `ff` and upper-case hex are invalid; a future version's extra
fields are ignored); ids come from the OpenTelemetry SDK's generator.
"""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_propagator = TraceContextTextMapPropagator()
_ids = RandomIdGenerator()
_SAMPLED = 0x01


@dataclass(frozen=True, slots=True)
class TraceContext:
    """A valid W3C trace context: 32-hex trace id, 16-hex parent span id, trace flags."""

    trace_id: str
    span_id: str
    flags: int = _SAMPLED

    @property
    def sampled(self) -> bool:
        return bool(self.flags & _SAMPLED)

    @property
    def traceparent(self) -> str:
        """The `traceparent` value (version 00)."""
        return f"00-{self.trace_id}-{self.span_id}-{self.flags:02x}"

    def child(self) -> TraceContext:
        """A new span in the same trace, with the same flags."""
        return TraceContext(self.trace_id, _new_span_id(), self.flags)


def parse_traceparent(value: str | None) -> TraceContext | None:
    """The trace context in a `traceparent` value, or None when absent or invalid."""
    if not value:
        return None
    context = _propagator.extract({"traceparent": value.strip()})
    span = trace.get_current_span(context).get_span_context()
    if not span.is_valid:
        return None
    return TraceContext(format(span.trace_id, "032x"), format(span.span_id, "016x"), int(span.trace_flags))


def new_trace() -> TraceContext:
    """A new, sampled trace."""
    return TraceContext(format(_ids.generate_trace_id(), "032x"), _new_span_id())


def new_traceparent() -> str:
    """A traceparent for a new, sampled trace."""
    return new_trace().traceparent


def child_traceparent(parent: str | None) -> str:
    """A traceparent for a new span in `parent`'s trace (a new trace if `parent` is absent or invalid)."""
    context = parse_traceparent(parent)
    return (context.child() if context is not None else new_trace()).traceparent


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id inside a traceparent, if it is valid."""
    context = parse_traceparent(traceparent)
    return context.trace_id if context is not None else None


def span_id_of(traceparent: str | None) -> str | None:
    """The parent span id inside a traceparent, if it is valid."""
    context = parse_traceparent(traceparent)
    return context.span_id if context is not None else None


def _new_span_id() -> str:
    return format(_ids.generate_span_id(), "016x")
