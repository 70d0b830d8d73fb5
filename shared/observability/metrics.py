"""Metrics with the OpenTelemetry SDK, exported in Prometheus text format on /metrics.

Every metric is declared once, in `shared.observability.catalogue`; the exporter derives the
Prometheus name from it (unit suffix, `_total` for counters: `crawler_job_duration` in
seconds is exported as `crawler_job_duration_seconds`), and `promtool check metrics` passes
on the output (tests/unit/test_metrics.py runs it). Callers use `count`, `observe` and
`set_gauge` with a catalogued name; a name missing from the catalogue still works (with the
caller's help text) but is logged once, and a unit test fails on it.

Values read at scrape time instead of pushed are registered with `observe_at_scrape`: the
upstream clients' breaker state and Binance used weight (`watch_upstream`, here), the price
crawler's freshness (`shared.crawler.freshness`), the local eventing plane's counters
(`local.eventing.telemetry`). A failing read never breaks the scrape.

The meter provider is process-wide on purpose: the Prometheus exporter registers in
prometheus_client's process-global REGISTRY, which /metrics renders.
"""

from __future__ import annotations

import inspect
import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from shared.observability.catalogue import CATALOGUE, Kind, MetricSpec

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

_lock = threading.RLock()
_provider: MeterProvider | None = None
_instruments: dict[str, Any] = {}
_gauge_values: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
_uncatalogued_warned: set[str] = set()


# --- the provider and instruments ---------------------------------------------------------------


def _new_reader() -> PrometheusMetricReader:
    options: dict[str, Any] = {"disable_target_info": True}
    # otel_scope_* labels repeat one constant on every series; drop them where the exporter can.
    if "scope_info_enabled" in inspect.signature(PrometheusMetricReader).parameters:
        options["scope_info_enabled"] = False
    return PrometheusMetricReader(**options)


def _meter():
    global _provider
    if _provider is None:
        with _lock:
            if _provider is None:
                histograms = [s.name for s in CATALOGUE.values() if s.kind == "histogram" and s.unit == "s"]
                _provider = MeterProvider(
                    metric_readers=[_new_reader()],
                    resource=Resource.create({"service.name": "price-crawler"}),
                    views=[
                        View(instrument_name=name, aggregation=ExplicitBucketHistogramAggregation(_DURATION_BUCKETS))
                        for name in histograms
                    ],
                )
    return _provider.get_meter("price_crawler")


def _spec(name: str, kind: Kind, unit: str, description: str) -> MetricSpec:
    spec = CATALOGUE.get(name)
    if spec is not None:
        return spec
    if name not in _uncatalogued_warned:
        _uncatalogued_warned.add(name)
        log.warning("metric %s is not declared in shared.observability.catalogue.CATALOGUE", name)
    return MetricSpec(name, kind, unit, description)


def _instrument(name: str, kind: Kind, unit: str, description: str, factory: Callable[[Any, MetricSpec], Any]):
    instrument = _instruments.get(name)
    if instrument is None:
        with _lock:
            instrument = _instruments.get(name)
            if instrument is None:
                spec = _spec(name, kind, unit, description)
                instrument = _instruments[name] = factory(_meter(), spec)
    return instrument


def _last_value_gauge(name: str, unit: str, description: str) -> dict[tuple[tuple[str, str], ...], float]:
    """A gauge set by `set_gauge`: label set → last value, observed at scrape time."""

    def create(meter, spec: MetricSpec):
        values = _gauge_values.setdefault(spec.name, {})

        def observe(_: CallbackOptions) -> Iterable[Observation]:
            return [Observation(v, dict(labels)) for labels, v in list(values.items())]

        meter.create_observable_gauge(spec.name, callbacks=[observe], unit=spec.unit, description=spec.description)
        return values

    return _instrument(name, "gauge", unit, description, create)


def observe_at_scrape(name: str, read: Callable[[], Iterable[tuple[float, Mapping[str, str]]]]) -> None:
    """Export observable metric `name` of the catalogue: `read()` returns [(value, labels)] at each scrape.

    Registered once per name: a later call for the same name keeps the first `read`, so a
    reader that can be replaced reads through a holder of its own (see `watch_upstream`).
    """

    def create(meter, spec: MetricSpec):
        def observe(_: CallbackOptions) -> Iterable[Observation]:
            try:
                return [Observation(value, dict(labels)) for value, labels in read()]
            except Exception:  # a failing probe must not break the whole scrape
                log.debug("reading %s failed", spec.name, exc_info=True)
                return []

        make = meter.create_observable_counter if spec.kind == "observable_counter" else meter.create_observable_gauge
        return make(spec.name, callbacks=[observe], unit=spec.unit, description=spec.description)

    _instrument(name, "observable_gauge", "", "", create)


# --- recording ------------------------------------------------------------------------------------


def count(name: str, amount: float = 1, /, *, description: str = "", unit: str = "", **labels: str) -> None:
    """Add `amount` to counter `name` (exported as `<name>[_<unit>]_total`)."""
    _instrument(
        name,
        "counter",
        unit,
        description,
        lambda m, s: m.create_counter(s.name, unit=s.unit, description=s.description),
    ).add(amount, labels)


def observe(name: str, value: float, /, *, description: str = "", unit: str = "s", **labels: str) -> None:
    """Record one value in histogram `name` (seconds unless catalogued otherwise)."""
    _instrument(
        name,
        "histogram",
        unit,
        description,
        lambda m, s: m.create_histogram(s.name, unit=s.unit, description=s.description),
    ).record(value, labels)


def set_gauge(name: str, value: float, /, *, description: str = "", unit: str = "", **labels: str) -> None:
    """Set gauge `name` to `value` for this label set."""
    _last_value_gauge(name, unit, description)[tuple(sorted(labels.items()))] = value


_WAIT_KINDS = {"rate_limit_wait": "rate_limiter", "weight_wait": "weight_window", "cooldown_wait": "retry_after"}


def record_upstream_event(event) -> None:
    """Turn a `shared.upstream.events.UpstreamEvent` into upstream metrics (the HTTP layer's `on_event`)."""
    kind = str(event.kind)
    if kind == "request":
        status = str(event.status) if event.status is not None else "no_response"
        count("crawler_upstream_requests", api=event.api, status=status)
        observe("crawler_upstream_request_duration", event.seconds, api=event.api)
    elif kind in _WAIT_KINDS:
        reason = _WAIT_KINDS[kind]
        count("crawler_upstream_rate_limit_waits", api=event.api, reason=reason)
        count("crawler_upstream_rate_limit_wait", event.seconds, api=event.api, reason=reason)
    elif kind == "breaker":
        count("crawler_upstream_breaker_transitions", api=event.api, state=event.detail or "unknown")
    else:
        count("crawler_upstream_events", api=event.api, kind=kind)


# --- read at scrape time: upstream clients --------------------------------------------------------

_BREAKER_STATES = ("closed", "open", "half_open")
_upstream_clients: list[weakref.ref] = []


def watch_upstream(clients) -> None:
    """Export breaker state and Binance used weight of `clients` (a `shared.upstream.UpstreamClients`).

    Only the APIs this process has called appear. With several client sets in one
    process (tests), the most recently watched one wins per API.
    """
    with _lock:
        _upstream_clients[:] = [ref for ref in _upstream_clients if ref() is not None and ref() is not clients]
        _upstream_clients.append(weakref.ref(clients))
    observe_at_scrape("crawler_upstream_breaker_state", _breaker_states)
    observe_at_scrape("crawler_upstream_used_weight", _used_weights)


def _live_clients() -> list:
    with _lock:
        return [c for c in (ref() for ref in reversed(_upstream_clients)) if c is not None]


def _breaker_states() -> list[tuple[float, dict[str, str]]]:
    seen: dict[str, str] = {}
    for clients in _live_clients():
        for api, state in clients.breaker_states().items():
            seen.setdefault(api, state)
    return [
        (1.0 if state == current else 0.0, {"api": api, "state": state})
        for api, current in sorted(seen.items())
        for state in _BREAKER_STATES
    ]


def _used_weights() -> list[tuple[float, dict[str, str]]]:
    for clients in _live_clients():
        if "binance" in clients.breaker_states():  # built already: never open a client just to read it
            used = clients.binance.http.used_weight
            if used is not None:
                return [(float(used), {"api": "binance"})]
    return []


# --- exposition -------------------------------------------------------------------------------------


def render_prometheus() -> bytes:
    """The text exposition of every metric of this process (plus the process and GC collectors)."""
    _meter()
    return generate_latest(REGISTRY)


def sample_value(text: str | bytes, name: str, **labels: str) -> float | None:
    """The value of sample `name` whose labels include `labels` in an exposition (summed over matches).

    `name` is the sample name as exposed, e.g. `crawler_jobs_received_total` or
    `crawler_job_duration_seconds_count`. None when no sample matches.
    """
    if isinstance(text, bytes):
        text = text.decode()
    total, found = 0.0, False
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
                found = True
    return total if found else None
