"""Metrics with the OpenTelemetry SDK, exported in Prometheus text format on /metrics.

Every metric the system exports is declared once, in `CATALOGUE`: its instrument name,
kind, unit, help text and labels. The exporter derives the Prometheus name from it
(unit suffix, `_total` for counters: `crawler_job_duration` in seconds is exported as
`crawler_job_duration_seconds`), and `promtool check metrics` passes on the output
(tests/unit/test_metrics.py runs it). Callers use the module-level helpers with a
catalogued name; a name missing from the catalogue still works (with the caller's help
text) but is logged once, and a unit test fails on it.

Three families are read at scrape time instead of being pushed:
  - price freshness, from the database (`watch_price_freshness`),
  - circuit-breaker state and Binance used weight, from the process's upstream clients
    (`watch_upstream`),
  - the local eventing plane's delivery counters and consumer lag (`watch_eventing`).
A failing read never breaks the scrape: it reports what it last knew, or nothing.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Literal, Mapping

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Kind = Literal["counter", "histogram", "gauge", "observable_counter", "observable_gauge"]


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One exported metric: the instrument name and what Prometheus shows for it."""

    name: str  # OpenTelemetry instrument name: no unit suffix, no `_total`
    kind: Kind
    unit: str  # UCUM: "s" becomes the `_seconds` suffix; "{job}"-style annotations add none
    description: str
    labels: tuple[str, ...] = ()

    @property
    def exported_name(self) -> str:
        """The metric family name in the Prometheus exposition."""
        suffix = {"s": "_seconds", "By": "_bytes"}.get(self.unit, "")
        name = self.name if self.name.endswith(suffix) else self.name + suffix
        return name + "_total" if self.kind in ("counter", "observable_counter") else name


_JOB = ("function", "job_type", "token_type")
_SOURCE = ("source",)

CATALOGUE: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        # --- jobs (price, metadata, audit functions) --------------------------------------------
        MetricSpec("crawler_jobs_received", "counter", "{job}", "Job messages received and parsed", _JOB),
        MetricSpec("crawler_jobs_completed", "counter", "{job}",
                   "Jobs done and committed (answered 200), by job_logs status: succeeded, partial, failed",
                   (*_JOB, "status")),
        MetricSpec("crawler_jobs_failed", "counter", "{job}",
                   "Job attempts that raised (answered 429/5xx): KafkaSource retries them, then dead-letters them",
                   (*_JOB, "reason")),
        MetricSpec("crawler_jobs_skipped", "counter", "{job}",
                   "Jobs skipped because newer ticks superseded them (coalesced)", (*_JOB, "reason")),
        MetricSpec("crawler_jobs_rejected", "counter", "{job}",
                   "Job messages rejected as malformed (answered 400: dead-lettered at once)", _JOB),
        MetricSpec("crawler_job_duration", "histogram", "s", "Job duration from receipt to commit", _JOB),
        MetricSpec("crawler_db_rows_upserted", "counter", "{row}", "Rows written (inserted or overwritten) per table",
                   (*_JOB, "table")),
        MetricSpec("crawler_prices_suspect", "counter", "{price}",
                   "Prices held back as implausible (docs/pricing.md): not stored, not announced", ("token_set",)),
        # --- every function ------------------------------------------------------------------------
        MetricSpec("crawler_candle_ticks_folded", "counter", "{tick}",
                   "Queued price ticks folded into the gold candles (shared/runtime/candle_fold.py)"),
        MetricSpec("crawler_candle_fold_failures", "counter", "{fold}",
                   "Candle folds that failed; their ticks stay queued for the next fold"),
        MetricSpec("crawler_candle_fold_duration", "histogram", "s", "Duration of one candle fold"),
        MetricSpec("crawler_events_handled", "counter", "{event}",
                   "CloudEvents answered, by verdict: done (2xx), rejected (4xx: dead letter), "
                   "throttled (429), retry (503), error (500)", ("function", "verdict")),
        MetricSpec("crawler_dependency_up", "gauge", "",
                   "1 when the dependency answered the last readiness check, else 0", ("function", "dependency")),
        # --- scheduler --------------------------------------------------------------------------------
        MetricSpec("crawler_scheduler_ticks", "counter", "{tick}",
                   "Scheduler ticks by outcome: emitted, skipped (backlog), bootstrapped (empty database)",
                   ("schedule", "outcome")),
        MetricSpec("crawler_scheduler_last_tick_timestamp", "gauge", "s",
                   "Unix time of the last tick that emitted jobs, per schedule", ("schedule",)),
        # --- upstream APIs ----------------------------------------------------------------------------
        MetricSpec("crawler_upstream_requests", "counter", "{request}",
                   "Upstream HTTP requests by API and status (no_response: timeout or connection error)",
                   ("api", "status")),
        MetricSpec("crawler_upstream_request_duration", "histogram", "s", "Upstream request latency", ("api",)),
        MetricSpec("crawler_upstream_rate_limit_waits", "counter", "{wait}",
                   "Waits before an upstream request: own rate limiter, Binance weight window, Retry-After cooldown",
                   ("api", "reason")),
        MetricSpec("crawler_upstream_rate_limit_wait", "counter", "s",
                   "Seconds spent waiting before upstream requests, by reason", ("api", "reason")),
        MetricSpec("crawler_upstream_events", "counter", "{event}",
                   "Upstream trouble by kind: retry, rate_limited (gave up waiting), banned (418), "
                   "circuit_open (refused by the breaker)", ("api", "kind")),
        MetricSpec("crawler_upstream_breaker_transitions", "counter", "{transition}",
                   "Circuit-breaker state changes, by the state entered", ("api", "state")),
        MetricSpec("crawler_upstream_breaker_state", "observable_gauge", "",
                   "1 for the circuit breaker's current state (closed, open, half_open), 0 for the others",
                   ("api", "state")),
        MetricSpec("crawler_upstream_used_weight", "observable_gauge", "",
                   "Binance request weight used in the current minute (X-MBX-USED-WEIGHT-1M), shared per IP",
                   ("api",)),
        # --- data freshness ---------------------------------------------------------------------------
        MetricSpec("crawler_price_oldest_age", "observable_gauge", "s",
                   "Age of the oldest latest price among the current members of each token set", ("token_set",)),
        # --- quotes function (read API) --------------------------------------------------------------
        MetricSpec("quotes_requests", "counter", "{request}", "Quotes API requests by route and status",
                   ("route", "status")),
        MetricSpec("quotes_request_duration", "histogram", "s", "Quotes API request duration", ("route",)),
        # --- bronze archive (raw upstream responses in object storage) ----------------------------------
        MetricSpec("archive_writes", "counter", "{object}", "Bronze archive writes by outcome (written, duplicate, failed)",
                   ("outcome", "source")),
        # --- local eventing plane (PingSource / KafkaSource) --------------------------------------------
        MetricSpec("crawler_eventing_events_received", "observable_counter", "{event}",
                   "Records consumed (KafkaSource) or ticks fired (PingSource)", _SOURCE),
        MetricSpec("crawler_eventing_delivery_attempts", "observable_counter", "{attempt}",
                   "Sends to the sink, first tries and retries", _SOURCE),
        MetricSpec("crawler_eventing_delivery_retries", "observable_counter", "{attempt}",
                   "Sends to the sink after the first try", _SOURCE),
        MetricSpec("crawler_eventing_delivery_responses", "observable_counter", "{response}",
                   "Sink answers by HTTP status (network_error: none)", (*_SOURCE, "status")),
        MetricSpec("crawler_eventing_events_delivered", "observable_counter", "{event}",
                   "Events the sink acknowledged", _SOURCE),
        MetricSpec("crawler_eventing_dead_letters", "observable_counter", "{event}",
                   "Events that reached the dead-letter sink", _SOURCE),
        MetricSpec("crawler_eventing_events_dropped", "observable_counter", "{event}",
                   "Events lost: sink and dead-letter sink both failed", _SOURCE),
        MetricSpec("crawler_eventing_ticks_skipped", "observable_counter", "{tick}",
                   "PingSource ticks skipped because earlier sends were still in flight", _SOURCE),
        MetricSpec("crawler_eventing_consumer_lag", "observable_gauge", "{message}",
                   "Records not yet committed by the source's consumer group, per partition",
                   (*_SOURCE, "topic", "partition")),
    )
}

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
                    views=[View(instrument_name=name, aggregation=ExplicitBucketHistogramAggregation(_DURATION_BUCKETS))
                           for name in histograms],
                )
    return _provider.get_meter("price_crawler")


def _spec(name: str, kind: Kind, unit: str, description: str) -> MetricSpec:
    spec = CATALOGUE.get(name)
    if spec is not None:
        return spec
    if name not in _uncatalogued_warned:
        _uncatalogued_warned.add(name)
        log.warning("metric %s is not declared in shared.metrics.CATALOGUE", name)
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


def _observable(name: str, read: Callable[[], Iterable[tuple[float, Mapping[str, str]]]]) -> None:
    """Register an observable instrument of the catalogue whose values `read()` returns at scrape time."""

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


def count(name: str, amount: float = 1, description: str = "", unit: str = "", **labels: str) -> None:
    """Add `amount` to counter `name` (exported as `<name>[_<unit>]_total`)."""
    _instrument(name, "counter", unit, description,
                lambda m, s: m.create_counter(s.name, unit=s.unit, description=s.description)).add(amount, labels)


def observe(name: str, value: float, description: str = "", unit: str = "s", **labels: str) -> None:
    """Record one value in histogram `name` (seconds unless catalogued otherwise)."""
    _instrument(name, "histogram", unit, description,
                lambda m, s: m.create_histogram(s.name, unit=s.unit, description=s.description)).record(value, labels)


def set_gauge(name: str, value: float, description: str = "", unit: str = "", **labels: str) -> None:
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
    _observable("crawler_upstream_breaker_state", _breaker_states)
    _observable("crawler_upstream_used_weight", _used_weights)


def _live_clients() -> list:
    with _lock:
        return [c for c in (ref() for ref in reversed(_upstream_clients)) if c is not None]


def _breaker_states() -> list[tuple[float, dict[str, str]]]:
    seen: dict[str, str] = {}
    for clients in _live_clients():
        for api, state in clients.breaker_states().items():
            seen.setdefault(api, state)
    return [(1.0 if state == current else 0.0, {"api": api, "state": state})
            for api, current in sorted(seen.items()) for state in _BREAKER_STATES]


def _used_weights() -> list[tuple[float, dict[str, str]]]:
    for clients in _live_clients():
        if "binance" in clients.breaker_states():  # built already: never open a client just to read it
            used = clients.binance.http.used_weight
            if used is not None:
                return [(float(used), {"api": "binance"})]
    return []


# --- read at scrape time: price freshness -----------------------------------------------------------


class PriceFreshnessProbe:
    """Age of the oldest latest price per token set, read from PostgreSQL at most every `cache_seconds`.

    It keeps one connection of its own (never a pool slot a job waits for), bounds the
    query with a statement timeout, and never blocks a concurrent scrape. When the
    database cannot be read, the last known ages keep growing with the clock: no price
    can have been refreshed through a database this process cannot reach either, and a
    stale-price alert must keep firing rather than go silent.
    """

    def __init__(self, database_url: str, *, cache_seconds: float = 5.0, timeout_seconds: float = 2.0):
        self._url = database_url
        self._cache_seconds = cache_seconds
        self._timeout = timeout_seconds
        self._lock = threading.Lock()
        self._conn = None
        self._ages: dict[str, float] = {}
        self._measured_at: float | None = None

    def read(self) -> list[tuple[float, dict[str, str]]]:
        """[(age in seconds, {"token_set": name})] for every set with at least one price."""
        if self._lock.acquire(blocking=False):
            try:
                if self._measured_at is None or time.monotonic() - self._measured_at >= self._cache_seconds:
                    self._refresh()
            finally:
                self._lock.release()
        return self._extrapolated()

    def close(self) -> None:
        """Close the probe's connection."""
        with self._lock:
            self._drop_connection()

    def _refresh(self) -> None:
        from shared.db import store
        from shared.db.connection import connect

        try:
            if self._conn is None:
                self._conn = connect(self._url, timeout=self._timeout)
                self._conn.run(f"SET statement_timeout = {int(self._timeout * 1000)}")
            rows = store.oldest_latest_price_age(self._conn)
        except Exception as exc:
            log.debug("price freshness unreadable: %s", exc)
            self._drop_connection()
            return
        self._ages = dict(rows)
        self._measured_at = time.monotonic()

    def _extrapolated(self) -> list[tuple[float, dict[str, str]]]:
        if self._measured_at is None:
            return []
        elapsed = time.monotonic() - self._measured_at
        return [(age + elapsed, {"token_set": token_set}) for token_set, age in sorted(self._ages.items())]

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass


_freshness: PriceFreshnessProbe | None = None


def watch_price_freshness(database_url: str, **options: float) -> PriceFreshnessProbe:
    """Export `crawler_price_oldest_age_seconds{token_set}` read from this database (one per process)."""
    global _freshness
    with _lock:
        previous, _freshness = _freshness, PriceFreshnessProbe(database_url, **options)
    if previous is not None:
        previous.close()
    _observable("crawler_price_oldest_age", lambda: _freshness.read() if _freshness is not None else [])
    return _freshness


# --- read at scrape time: the local eventing plane ------------------------------------------------

_eventing_snapshot: Callable[[], Mapping[str, Any]] | None = None
_EVENTING_COUNTERS = {
    "crawler_eventing_events_received": "events",
    "crawler_eventing_delivery_attempts": "attempts",
    "crawler_eventing_delivery_retries": "retries",
    "crawler_eventing_events_delivered": "delivered",
    "crawler_eventing_dead_letters": "dead_lettered",
    "crawler_eventing_events_dropped": "dropped",
    "crawler_eventing_ticks_skipped": "ticks_skipped",
}


def watch_eventing(snapshot: Callable[[], Mapping[str, Any]]) -> None:
    """Export the local eventing plane's counters and consumer lag.

    `snapshot()` returns `local.eventing.telemetry.EventingMetrics.snapshot()`'s shape:
    {"sources": {key: {"events", "attempts", "retries", "delivered", "dead_lettered",
    "dropped", "ticks_skipped", "responses": {status: n}, "lag": {topic: {partition: n}}}}}.
    """
    global _eventing_snapshot
    _eventing_snapshot = snapshot
    for name, field_name in _EVENTING_COUNTERS.items():
        _observable(name, lambda f=field_name: [(float(c.get(f, 0)), {"source": key}) for key, c in _sources()])
    _observable("crawler_eventing_delivery_responses", lambda: [
        (float(n), {"source": key, "status": str(status)})
        for key, c in _sources() for status, n in sorted((c.get("responses") or {}).items())
    ])
    _observable("crawler_eventing_consumer_lag", lambda: [
        (float(lag), {"source": key, "topic": topic, "partition": str(partition)})
        for key, c in _sources() for topic, parts in sorted((c.get("lag") or {}).items())
        for partition, lag in sorted(parts.items())
    ])


def _sources() -> list[tuple[str, Mapping[str, Any]]]:
    snapshot = _eventing_snapshot() if _eventing_snapshot is not None else {}
    return sorted((snapshot.get("sources") or {}).items())


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
