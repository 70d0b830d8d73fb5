"""The stocks function's handler: PingSource ticks in, quotes and gold out (DESIGN.md §11).

- `{"schedule": "stock-quotes"}` (stock-quotes-tick, every 6 s): one job over the configured
  symbols (STOCKS_SYMBOLS, or a `symbols` list in the tick), as many as Finnhub's per-minute
  budget allows per tick, rotating through the rest on later ticks. Each raw answer goes to
  bronze (the upstream layer's archive hook), each new quote to silver and then to
  `stock-quotes` as `stocks.quote.validated`.
- `{"schedule": "stock-gold"}` (stock-gold-tick, every minute): `dbt build` of dbt/stocks/
  (shared/stocks/gold.py), one run at a time across replicas (an advisory lock).

Each job leaves one `job_logs` row (`stock-quotes:<tick>` / `stock-gold:<tick>`) and its metrics.
A rate limit or an outage raises (the tick is retried, then replaced by the next one).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from shared.errors import BadMessage
from shared.events import InboundEvent
from shared.observability import metrics
from shared.runtime.resources import Resources

from .gold import DbtWorker, GoldOutcome, dbt_missing, dbt_python, run_gold, work_dir
from .gold_runner import GoldRunner
from .pipeline import StockJobOutcome, run_stock_quotes
from .settings import StockSettings
from .store import record_job
from .symbols import parse_symbol_list

log = logging.getLogger(__name__)

QUOTES_SCHEDULE = "stock-quotes"
GOLD_SCHEDULE = "stock-gold"
SCHEDULES = (QUOTES_SCHEDULE, GOLD_SCHEDULE)
GOLD_LOCK_KEY = 20_020  # pg_try_advisory_lock key of the gold run (issue 20)


class DbtNotInstalled(RuntimeError):
    """The gold tick cannot run: no dbt (or no interpreter for its worker) where settings point."""


def gold_readiness(resources: Resources) -> str | None:
    """The stocks function's own readiness check: None when a gold build can run here, else why not."""
    return dbt_missing(stock_settings(resources))


def stock_settings(resources: Resources) -> StockSettings:
    return resources.once("stocks.settings", StockSettings)


def gold_runner(resources: Resources) -> GoldRunner:
    return resources.once("stocks.gold_runner", lambda: GoldRunner(stock_settings(resources).gold_min_interval_seconds))


def dbt_worker(resources: Resources) -> DbtWorker | None:
    """The process's long-lived dbt process (started on the first build), or None when
    STOCKS_DBT_WORKER=false (a fresh dbt process per build)."""
    settings = stock_settings(resources)
    if not settings.dbt_worker:
        return None
    return resources.once(
        "stocks.dbt_worker",
        lambda: DbtWorker(dbt_python(settings.dbt_command()), log_file=work_dir(settings) / "logs" / "worker.log"),
    )


def per_tick_budget(calls_per_minute: int, tick_seconds: int) -> int:
    """How many quote calls one tick may make within Finnhub's per-minute budget (at least one)."""
    return max(1, calls_per_minute * tick_seconds // 60)


def symbols_for_tick(symbols: Sequence[str], budget: int, tick_index: int) -> list[str]:
    """The symbols tick `tick_index` asks for: all of them when they fit in `budget`, else the
    next `budget` of them in a rotation, so every symbol is quoted every ceil(n / budget) ticks."""
    if len(symbols) <= budget:
        return list(symbols)
    start = (tick_index * budget) % len(symbols)
    return [symbols[(start + i) % len(symbols)] for i in range(budget)]


def job_id_of(schedule: str, tick_at: datetime) -> str:
    """`<schedule>:<tick stamp>`, the scheduler's job-id form (`make status` reads ticks from it)."""
    return f"{schedule}:{tick_at.astimezone(timezone.utc):%Y%m%dT%H%M%S.%fZ}"


def _tick(event: InboundEvent) -> tuple[dict[str, Any], datetime]:
    try:
        data = json.loads(event.data or b"{}")
    except (ValueError, RecursionError):
        raise BadMessage('ping data is not JSON: expected {"schedule": "stock-quotes"}') from None
    if not isinstance(data, dict) or data.get("schedule") not in SCHEDULES:
        schedule = data.get("schedule") if isinstance(data, dict) else None
        raise BadMessage(f"unknown stocks schedule {schedule!r}: expected one of {list(SCHEDULES)}")
    moment = datetime.now(timezone.utc)
    if event.time:
        try:
            moment = datetime.fromisoformat(event.time.replace("Z", "+00:00")).astimezone(timezone.utc)
        except ValueError:
            pass
    return data, moment


def run_stocks_tick(event: InboundEvent, resources: Resources) -> dict[str, Any]:
    """Handle one tick (module docstring); the summary says what the job did."""
    data, tick_at = _tick(event)
    if data["schedule"] == GOLD_SCHEDULE:
        return run_gold_tick(event, resources, tick_at)
    return run_quotes_tick(event, resources, data, tick_at)


def run_quotes_tick(
    event: InboundEvent, resources: Resources, data: dict[str, Any], tick_at: datetime
) -> dict[str, Any]:
    settings = stock_settings(resources)
    symbols = settings.symbol_list
    if data.get("symbols") is not None:
        if not isinstance(data["symbols"], list) or not all(isinstance(s, str) for s in data["symbols"]):
            raise BadMessage("symbols must be a list of tickers")
        symbols = parse_symbol_list(",".join(data["symbols"]))
    budget = per_tick_budget(resources.settings.finnhub.rate_limit_per_minute, settings.tick_seconds)
    chosen = symbols_for_tick(symbols, budget, int(tick_at.timestamp()) // settings.tick_seconds)
    job_id = job_id_of(QUOTES_SCHEDULE, tick_at)
    started = datetime.now(timezone.utc)
    began = time.monotonic()
    outcome = run_stock_quotes(
        chosen,
        resources.upstream.finnhub,
        resources.db.transaction,
        rules=settings.rules,
        job_id=job_id,
        publish=lambda events: resources.producer.publish(settings.quotes_topic, events),
    )
    _count_quotes(outcome)
    failures = [(r.symbol, f"{r.reason.value}: {r.detail}") for r in outcome.rejected]
    failures += [(s, "not_covered: Finnhub answered 403 for this symbol") for s in outcome.not_covered]
    with resources.db.connection() as conn:
        record_job(
            conn,
            job_id=job_id,
            job_type="stock_quotes",
            status="succeeded" if not failures else ("partial" if len(failures) < len(chosen) else "failed"),
            message=(
                f"{len(outcome.new)} new, {len(outcome.repeats)} repeats, {len(outcome.no_data)} no data, "
                f"{len(outcome.rejected)} rejected, {len(outcome.not_covered)} not covered"
            ),
            requested=len(chosen),
            succeeded=len(chosen) - len(failures),
            failures=failures,
            started_at=started,
            event_id=event.id,
        )
    metrics.observe("crawler_stock_job_duration", time.monotonic() - began, schedule=QUOTES_SCHEDULE)
    if outcome.new and settings.gold_after_new_quotes:
        gold_runner(resources).request(lambda: build_gold(resources, None))
    return {
        "schedule": QUOTES_SCHEDULE,
        "job_id": job_id,
        "symbols": chosen,
        "new": [q.symbol for q in outcome.new],
        "repeats": outcome.repeats,
        "no_data": outcome.no_data,
        "rejected": {r.symbol: r.reason.value for r in outcome.rejected},
        "not_covered": outcome.not_covered,
    }


def _count_quotes(outcome: StockJobOutcome) -> None:
    for label, n in (
        ("new", len(outcome.new)),
        ("repeat", len(outcome.repeats)),
        ("no_data", len(outcome.no_data)),
        ("not_covered", len(outcome.not_covered)),
    ):
        if n:
            metrics.count("crawler_stock_quotes", n, outcome=label, reason="")
    for rejected in outcome.rejected:
        metrics.count("crawler_stock_quotes", outcome="rejected", reason=rejected.reason.value)


def run_gold_tick(event: InboundEvent, resources: Resources, tick_at: datetime) -> dict[str, Any]:
    """The scheduled build; skipped while another build runs in this process or another replica."""
    job_id = job_id_of(GOLD_SCHEDULE, tick_at)
    missing = dbt_missing(stock_settings(resources))
    if missing is not None:
        # Loud, not a quiet "failed" row every minute: the tick is answered 500 (retried, then
        # dead-lettered with this reason) and the readiness probe says the same (gold_readiness).
        raise DbtNotInstalled(missing)
    summary = gold_runner(resources).run_now(lambda: build_gold(resources, event.id, job_id))
    if summary is None:
        return {"schedule": GOLD_SCHEDULE, "job_id": job_id, "status": "skipped", "reason": "a build is running"}
    return summary


def build_gold(resources: Resources, event_id: str | None, job_id: str | None = None) -> dict[str, Any]:
    """One `dbt build` under the cluster-wide advisory lock, recorded in job_logs and metrics."""
    settings = stock_settings(resources)
    started = datetime.now(timezone.utc)
    job_id = job_id or job_id_of(GOLD_SCHEDULE, started)
    with resources.db.connection() as lock_conn:
        if not lock_conn.run("SELECT pg_try_advisory_lock(:k)", k=GOLD_LOCK_KEY)[0][0]:
            return {"schedule": GOLD_SCHEDULE, "job_id": job_id, "status": "skipped", "reason": "another replica"}
        try:
            outcome = run_gold(settings, resources.settings.database_url, worker=dbt_worker(resources))
        finally:
            lock_conn.run("SELECT pg_advisory_unlock(:k)", k=GOLD_LOCK_KEY)
    record_gold(resources, outcome, job_id, started, event_id)
    return {"schedule": GOLD_SCHEDULE, "job_id": job_id, **outcome.to_json()}


def record_gold(
    resources: Resources, outcome: GoldOutcome, job_id: str, started: datetime, event_id: str | None
) -> None:
    """The run's job_logs row (a row per failed node) and its metrics."""
    if outcome.ok:
        log.info("gold built: %s", outcome.summary())
    else:
        log.warning("gold run %s: %s", outcome.status, outcome.summary())
    with resources.db.connection() as conn:
        record_job(
            conn,
            job_id=job_id,
            job_type="stock_gold",
            status=outcome.status,
            message=outcome.summary(),
            requested=outcome.models_built + outcome.models_failed + outcome.models_skipped,
            succeeded=outcome.models_built,
            failures=[(f"{f.kind}:{f.name}", f"{f.status}: {f.message}") for f in outcome.failures]
            or ([("dbt", outcome.error)] if outcome.error else []),
            started_at=started,
            event_id=event_id,
        )
    metrics.count("crawler_stock_gold_runs", status=outcome.status)
    metrics.observe("crawler_stock_job_duration", outcome.duration_seconds, schedule=GOLD_SCHEDULE)
    for kind, status, value in (
        ("model", "built", outcome.models_built),
        ("model", "failed", outcome.models_failed),
        ("model", "skipped", outcome.models_skipped),
        ("test", "passed", outcome.tests_passed),
        ("test", "failed", outcome.tests_failed),
        ("test", "skipped", outcome.tests_skipped),
    ):
        metrics.set_gauge("crawler_stock_gold_last_run_nodes", value, kind=kind, status=status)
    if outcome.ok:
        metrics.set_gauge("crawler_stock_gold_last_success_timestamp", time.time())
