"""Observability for every function: structured logs (`logging`), W3C trace context (`tracing`)
and OpenTelemetry metrics exported for Prometheus (`metrics`)."""
