"""The metric catalogue: every metric the system exports, declared once (name, kind, unit, help, labels).

Dashboards (infra/observability), alerts and docs/observability.md name these; the unit tests
check that each is documented, exported in Prometheus form and used. Grouped by who records
them: the function runtime, the upstream layer and the archive (platform), the price crawler,
and the local eventing plane.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
        MetricSpec(
            "crawler_jobs_completed",
            "counter",
            "{job}",
            "Jobs done and committed (answered 200), by job_logs status: succeeded, partial, failed, expired",
            (*_JOB, "status"),
        ),
        MetricSpec(
            "crawler_jobs_failed",
            "counter",
            "{job}",
            "Job attempts that raised (answered 429/5xx): KafkaSource retries them, then dead-letters them",
            (*_JOB, "reason"),
        ),
        MetricSpec(
            "crawler_jobs_skipped",
            "counter",
            "{job}",
            "Jobs skipped because newer ticks superseded them (coalesced)",
            (*_JOB, "reason"),
        ),
        MetricSpec(
            "crawler_jobs_rejected",
            "counter",
            "{job}",
            "Job messages rejected as malformed (answered 400: dead-lettered at once)",
            _JOB,
        ),
        MetricSpec(
            "crawler_jobs_dead_lettered",
            "counter",
            "{job}",
            "Dead letters the deadletter function stored (once per event), their job ended dead_lettered",
            ("job_type", "status"),
        ),
        MetricSpec(
            "crawler_prices_suspect",
            "counter",
            "{price}",
            "Prices held back as implausible (docs/pricing.md): not stored, not announced",
            ("token_set",),
        ),
        MetricSpec("crawler_job_duration", "histogram", "s", "Job duration from receipt to commit", _JOB),
        MetricSpec(
            "crawler_db_rows_upserted",
            "counter",
            "{row}",
            "Rows written (inserted or overwritten) per table",
            (*_JOB, "table"),
        ),
        # --- every function ------------------------------------------------------------------------
        MetricSpec(
            "crawler_candle_ticks_folded",
            "counter",
            "{tick}",
            "Queued price ticks folded into the gold candles (shared/crawler/candle_fold.py)",
        ),
        MetricSpec(
            "crawler_candle_fold_failures",
            "counter",
            "{fold}",
            "Candle folds that failed; their ticks stay queued for the next fold",
        ),
        MetricSpec("crawler_candle_fold_duration", "histogram", "s", "Duration of one candle fold"),
        MetricSpec(
            "crawler_events_handled",
            "counter",
            "{event}",
            "CloudEvents answered, by verdict: done (2xx), rejected (4xx: dead letter), "
            "throttled (429), retry (503), error (500)",
            ("function", "verdict"),
        ),
        MetricSpec(
            "crawler_dependency_up",
            "gauge",
            "",
            "1 when the dependency answered the last readiness check, else 0",
            ("function", "dependency"),
        ),
        # --- scheduler --------------------------------------------------------------------------------
        MetricSpec(
            "crawler_scheduler_ticks",
            "counter",
            "{tick}",
            "Scheduler ticks by outcome: emitted, skipped (backlog), bootstrapped (empty database)",
            ("schedule", "outcome"),
        ),
        MetricSpec(
            "crawler_scheduler_last_tick_timestamp",
            "gauge",
            "s",
            "Unix time of the last tick that emitted jobs, per schedule",
            ("schedule",),
        ),
        # --- upstream APIs ----------------------------------------------------------------------------
        MetricSpec(
            "crawler_upstream_requests",
            "counter",
            "{request}",
            "Upstream HTTP requests by API and status (no_response: timeout or connection error)",
            ("api", "status"),
        ),
        MetricSpec("crawler_upstream_request_duration", "histogram", "s", "Upstream request latency", ("api",)),
        MetricSpec(
            "crawler_upstream_rate_limit_waits",
            "counter",
            "{wait}",
            "Waits before an upstream request: own rate limiter, Binance weight window, Retry-After cooldown",
            ("api", "reason"),
        ),
        MetricSpec(
            "crawler_upstream_rate_limit_wait",
            "counter",
            "s",
            "Seconds spent waiting before upstream requests, by reason",
            ("api", "reason"),
        ),
        MetricSpec(
            "crawler_upstream_events",
            "counter",
            "{event}",
            "Upstream trouble by kind: retry, rate_limited (gave up waiting), banned (418), "
            "circuit_open (refused by the breaker)",
            ("api", "kind"),
        ),
        MetricSpec(
            "crawler_upstream_breaker_transitions",
            "counter",
            "{transition}",
            "Circuit-breaker state changes, by the state entered",
            ("api", "state"),
        ),
        MetricSpec(
            "crawler_upstream_breaker_state",
            "observable_gauge",
            "",
            "1 for the circuit breaker's current state (closed, open, half_open), 0 for the others",
            ("api", "state"),
        ),
        MetricSpec(
            "crawler_upstream_used_weight",
            "observable_gauge",
            "",
            "Binance request weight used in the current minute (X-MBX-USED-WEIGHT-1M), shared per IP",
            ("api",),
        ),
        # --- data freshness ---------------------------------------------------------------------------
        MetricSpec(
            "crawler_price_oldest_age",
            "observable_gauge",
            "s",
            "Age of the oldest latest price among the current members of each token set",
            ("token_set",),
        ),
        # --- quotes function (read API) --------------------------------------------------------------
        MetricSpec(
            "crawler_quotes_requests",
            "counter",
            "{request}",
            "Quotes API requests by route and status",
            ("route", "status"),
        ),
        MetricSpec("crawler_quotes_request_duration", "histogram", "s", "Quotes API request duration", ("route",)),
        # --- trade ingestion (shared/trades) -------------------------------------------------------------
        MetricSpec(
            "crawler_trades_api_requests",
            "counter",
            "{request}",
            "Trades API requests by route, method and status",
            ("route", "method", "status"),
        ),
        MetricSpec(
            "crawler_trades_fills",
            "counter",
            "{fill}",
            "Trade records by outcome: accepted (API, published to raw-trades), new, duplicate, "
            "conflict (a reused key naming another trade), rejected (dead-lettered with its reason), "
            "synced (exchange sync, published to raw-trades)",
            ("function", "outcome"),
        ),
        MetricSpec(
            "crawler_trades_enriched",
            "counter",
            "{trade}",
            "Trades the enricher handled by outcome: enriched, pending_market (waiting for the crawler's "
            "price), superseded, duplicate (a redelivery), reenriched (when the price arrived)",
            ("function", "outcome"),
        ),
        MetricSpec(
            "crawler_trades_alerts",
            "counter",
            "{alert}",
            "Behavioural alerts raised (each once) by rule",
            ("function", "rule"),
        ),
        # --- chain and bridge stats (shared/stats) -------------------------------------------------------
        MetricSpec(
            "crawler_stats_chain_health",
            "gauge",
            "",
            "A chain's health at its last reading: 0 healthy, 1 degraded, 2 down",
            ("chain",),
        ),
        MetricSpec(
            "crawler_stats_bridge_duration",
            "gauge",
            "s",
            "The provider's own estimate of a route's transfer time at its last quote",
            ("route", "provider"),
        ),
        MetricSpec(
            "crawler_stats_bridge_slow_after",
            "gauge",
            "s",
            "A route's configured threshold: an estimated duration above it is slow",
            ("route",),
        ),
        # --- stock analytics (shared/stocks) ------------------------------------------------------------
        MetricSpec(
            "crawler_stock_quotes",
            "counter",
            "{quote}",
            "Finnhub answers by outcome: new (silver + stock-quotes), repeat, no_data, not_covered, rejected (with reason)",
            ("outcome", "reason"),
        ),
        MetricSpec(
            "crawler_stock_job_duration",
            "histogram",
            "s",
            "Duration of a stock job (quote tick, gold run)",
            ("schedule",),
        ),
        MetricSpec(
            "crawler_stock_gold_runs",
            "counter",
            "{run}",
            "Gold builds (dbt) by job_logs status: succeeded, partial (a data test failed), failed",
            ("status",),
        ),
        MetricSpec(
            "crawler_stock_gold_last_run_nodes",
            "gauge",
            "{node}",
            "Nodes (dbt) of the latest gold build by kind (model, test) and status",
            ("kind", "status"),
        ),
        MetricSpec(
            "crawler_stock_gold_last_success_timestamp",
            "gauge",
            "s",
            "Unix time of the latest gold build whose models and tests all passed",
        ),
        # --- bronze archive (raw upstream responses in object storage) ----------------------------------
        MetricSpec(
            "crawler_archive_writes",
            "counter",
            "{object}",
            "Bronze archive writes by outcome (written, duplicate, failed)",
            ("outcome", "source"),
        ),
        # --- local eventing plane (PingSource / KafkaSource) --------------------------------------------
        MetricSpec(
            "crawler_eventing_events_received",
            "observable_counter",
            "{event}",
            "Records consumed (KafkaSource) or ticks fired (PingSource)",
            _SOURCE,
        ),
        MetricSpec(
            "crawler_eventing_delivery_attempts",
            "observable_counter",
            "{attempt}",
            "Sends to the sink, first tries and retries",
            _SOURCE,
        ),
        MetricSpec(
            "crawler_eventing_delivery_retries",
            "observable_counter",
            "{attempt}",
            "Sends to the sink after the first try",
            _SOURCE,
        ),
        MetricSpec(
            "crawler_eventing_delivery_responses",
            "observable_counter",
            "{response}",
            "Sink answers by HTTP status (network_error: none)",
            (*_SOURCE, "status"),
        ),
        MetricSpec(
            "crawler_eventing_events_delivered",
            "observable_counter",
            "{event}",
            "Events the sink acknowledged",
            _SOURCE,
        ),
        MetricSpec(
            "crawler_eventing_dead_letters",
            "observable_counter",
            "{event}",
            "Events that reached the dead-letter sink",
            _SOURCE,
        ),
        MetricSpec(
            "crawler_eventing_events_dropped",
            "observable_counter",
            "{event}",
            "Events lost: sink and dead-letter sink both failed",
            _SOURCE,
        ),
        MetricSpec(
            "crawler_eventing_ticks_skipped",
            "observable_counter",
            "{tick}",
            "PingSource ticks skipped because earlier sends were still in flight",
            _SOURCE,
        ),
        MetricSpec(
            "crawler_eventing_consumer_lag",
            "observable_gauge",
            "{message}",
            "Records not yet committed by the source's consumer group, per partition",
            (*_SOURCE, "topic", "partition"),
        ),
    )
}
