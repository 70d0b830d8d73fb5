"""`make status` (`python -m local.status`): the running system at a glance, in a terminal.

    processes   readiness of each function, the eventing plane and the simulated market
    kafka       consumer lag per KafkaSource topic and consumer group
    schedules   last tick each schedule emitted (scheduler metrics) and its last job (job_logs)
    freshness   per token set: members, priced, stale, age of the oldest latest price
    eventing    per source: delivered, retries, dead letters, lag (local eventing plane)
    stocks      the last stock quote tick and dbt gold build (job_logs): status, counts, age
    trades      each exchange sync stream (fills synced, last error) and the last CSV imports
    failures    the last failed / rejected / partial jobs with their reason
    chains      each monitored chain's health, head age and block time (chain_stats_latest)
    bridges     each route's latest quote per provider: status, estimated duration, response time

Every section is read independently with short timeouts: something that is down is
shown as down, with the reason, and never stops the others (exit code 0 when all is
well, 1 when something needs attention). `--json` prints the same as one JSON object;
`--watch N` redraws every N seconds.

Addresses come from the same environment as the rest of the system: DATABASE_URL,
KAFKA_BOOTSTRAP_SERVERS, <FUNCTION>_FUNCTION_URL (shared.config.Settings), EVENTING_PORT
(8089), MARKET_URL or MARKET_PORT (8090).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import yaml

from local.stack import replica_name
from shared.config import Settings
from shared.crawler.domain.schedule import SCHEDULES

PROJECT_ROOT = Path(__file__).resolve().parents[1]
MANIFESTS_DIR = PROJECT_ROOT / "infra" / "knative" / "base"
HTTP_TIMEOUT = 2.0
KAFKA_TIMEOUT = 3.0
FAILURES_SHOWN = 10
# A schedule is overdue when its last tick is older than this many cadences.
OVERDUE_CADENCES = 3


@dataclass
class ProcessHealth:
    name: str
    url: str
    state: str  # ready | not ready | down
    detail: str = ""


@dataclass
class TopicLag:
    topic: str
    group: str
    lag: int | None  # None: unknown (Kafka down, topic missing)
    detail: str = ""


@dataclass
class ScheduleStatus:
    schedule: str
    cadence_seconds: float
    emitted_at: str | None = None  # from the scheduler's metrics
    last_job_id: str | None = None  # from job_logs
    last_job_status: str | None = None
    last_job_at: str | None = None
    age_seconds: float | None = None  # age of the newest tick seen either way
    overdue: bool = False


@dataclass
class SetFreshness:
    token_set: str
    members: int
    priced: int
    stale: int
    oldest_age_seconds: float | None
    fresh: bool


@dataclass
class SourceCounters:
    source: str
    delivered: int = 0
    retries: int = 0
    dead_letters: int = 0
    dropped: int = 0
    lag: int | None = None


@dataclass
class JobFailure:
    at: str
    job_id: str
    job_type: str
    token_type: str | None
    status: str
    message: str


@dataclass
class ChainHealth:
    chain: str
    health: str  # healthy | degraded | down
    head_age_seconds: str | None
    block_time_seconds: str | None
    observed_age_seconds: float
    reasons: list[str]


@dataclass
class BridgeHealth:
    route: str
    provider: str
    status: str  # ok | slow | no_route | rate_limited | error | anomaly
    duration_seconds: str | None
    response_seconds: str
    observed_age_seconds: float
    detail: str


@dataclass
class Section:
    """One part of the view: its rows, or why it could not be read."""

    rows: list[Any] = field(default_factory=list)
    error: str | None = None


@dataclass
class SystemStatus:
    taken_at: str
    processes: Section
    kafka: Section
    schedules: Section
    freshness: Section
    eventing: Section
    failures: Section
    chains: Section = field(default_factory=Section)
    bridges: Section = field(default_factory=Section)
    stocks: Section = field(default_factory=Section)
    trades: Section = field(default_factory=Section)

    @property
    def healthy(self) -> bool:
        """False when anything needs attention (a process not ready, stale prices, an overdue schedule, ...).

        A chain that is down needs attention too; a degraded one is shown, not counted (it is the chain's
        state, and the platform keeps routing with it in view).
        """
        if any(s.error for s in (self.processes, self.kafka, self.schedules, self.freshness, self.failures)):
            return False
        return (
            all(p.state == "ready" for p in self.processes.rows)
            and all(f.fresh for f in self.freshness.rows)
            and not any(s.overdue for s in self.schedules.rows)
            and not any(c.health == "down" for c in self.chains.rows)
        )

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "healthy": self.healthy}


# --- collecting --------------------------------------------------------------------------------


def collect(
    settings: Settings | None = None,
    *,
    eventing_url: str | None = None,
    market_url: str | None = None,
    manifests_dir: Path = MANIFESTS_DIR,
) -> SystemStatus:
    """Read every section (concurrently, each with its own timeouts); never raises."""
    settings = settings or Settings()
    eventing_url = eventing_url or f"http://127.0.0.1:{os.environ.get('EVENTING_PORT') or 8089}"
    market_url = (
        market_url or os.environ.get("MARKET_URL") or f"http://127.0.0.1:{os.environ.get('MARKET_PORT') or 8090}"
    )
    with httpx.Client(timeout=HTTP_TIMEOUT, trust_env=False) as http, ThreadPoolExecutor(max_workers=6) as pool:
        processes = pool.submit(_section, lambda: read_processes(http, settings, eventing_url, market_url))
        kafka = pool.submit(_section, lambda: read_consumer_lag(settings.kafka_bootstrap_servers, manifests_dir))
        database = pool.submit(_database_sections, settings, http)
        eventing = pool.submit(_section, lambda: read_eventing(http, eventing_url))
        stocks = pool.submit(_section, lambda: read_stock_jobs(settings.database_url))
        trades = pool.submit(_section, lambda: read_trade_sources(settings.database_url))
        schedules, freshness, failures, chains, bridges = database.result()
        return SystemStatus(
            taken_at=_iso(datetime.now(timezone.utc)) or "",
            processes=processes.result(),
            kafka=kafka.result(),
            schedules=schedules,
            freshness=freshness,
            eventing=eventing.result(),
            failures=failures,
            chains=chains,
            bridges=bridges,
            stocks=stocks.result(),
            trades=trades.result(),
        )


def _section(read: Callable[[], list[Any]]) -> Section:
    try:
        return Section(rows=read())
    except Exception as exc:  # a status view shows what is down; it does not crash on it
        return Section(error=_reason(exc))


def read_processes(http: httpx.Client, settings: Settings, eventing_url: str, market_url: str) -> list[ProcessHealth]:
    """Readiness of every function (GET /health/readiness), the eventing plane and the market.

    The functions are the `<name>_function_url` settings, so a function added there shows up here;
    a comma-separated URL lists replicas, shown as `price`, `price-2`, ...
    """
    targets = [
        (replica_name(field.removesuffix("_function_url"), index), url.strip().rstrip("/") + "/health/readiness")
        for field in type(settings).model_fields
        if field.endswith("_function_url")
        for index, url in enumerate(str(getattr(settings, field)).split(","))  # one URL per replica
    ]
    targets += [("eventing", eventing_url.rstrip("/") + "/health"), ("market", market_url.rstrip("/") + "/_sim/health")]
    with ThreadPoolExecutor(max_workers=len(targets)) as pool:
        return list(pool.map(lambda target: _probe(http, *target), targets))


def _probe(http: httpx.Client, name: str, url: str) -> ProcessHealth:
    try:
        reply = http.get(url)
    except httpx.HTTPError as exc:
        return ProcessHealth(name, url, "down", _reason(exc))
    try:
        body = reply.json()
        detail = str(body.get("detail") or body.get("status") or "") if isinstance(body, dict) else ""
    except ValueError:
        detail = reply.text[:120]
    if reply.is_success:
        return ProcessHealth(name, url, "ready", detail)
    return ProcessHealth(name, url, "not ready", detail or f"HTTP {reply.status_code}")


def kafka_sources(manifests_dir: Path = MANIFESTS_DIR) -> list[tuple[str, str]]:
    """(topic, consumer group) of every KafkaSource in the manifests (the wiring the cluster uses)."""
    pairs: list[tuple[str, str]] = []
    for path in sorted(manifests_dir.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "KafkaSource":
                spec = doc.get("spec") or {}
                group = spec.get("consumerGroup") or (doc.get("metadata") or {}).get("name", "?")
                pairs += [(topic, group) for topic in spec.get("topics") or []]
    return pairs


def read_consumer_lag(bootstrap: str, manifests_dir: Path = MANIFESTS_DIR) -> list[TopicLag]:
    """Lag of each KafkaSource's consumer group on its topics; raises when the broker is unreachable."""
    from confluent_kafka.admin import AdminClient

    from shared.kafka import consumer_group_lag

    try:
        # log_level 0: librdkafka's connection errors would flood the terminal; the reason is shown below.
        AdminClient(
            {"bootstrap.servers": bootstrap, "socket.timeout.ms": int(KAFKA_TIMEOUT * 1000), "log_level": 0}
        ).list_topics(timeout=KAFKA_TIMEOUT)
    except Exception as exc:
        raise ConnectionError(f"Kafka at {bootstrap} unreachable: {exc}") from None
    pairs = kafka_sources(manifests_dir)
    with ThreadPoolExecutor(max_workers=max(1, len(pairs))) as pool:
        lags = list(
            pool.map(lambda pair: consumer_group_lag(bootstrap, pair[1], pair[0], timeout=KAFKA_TIMEOUT), pairs)
        )
    return [
        TopicLag(topic, group, lag, "" if lag is not None else "topic missing or unreadable")
        for (topic, group), lag in zip(pairs, lags)
    ]


def _database_sections(settings: Settings, http: httpx.Client) -> tuple[Section, Section, Section, Section, Section]:
    from shared.db.connection import connect

    try:
        conn = connect(settings.database_url, timeout=HTTP_TIMEOUT)
    except Exception as exc:
        reason = _reason(exc)
        reason = reason if "PostgreSQL" in reason else f"PostgreSQL unreachable: {reason}"
        emitted = _emitted_ticks(http, settings)  # the scheduler still tells when it last ticked
        schedules = Section(rows=read_schedules(None, emitted)) if emitted else Section(error=reason)
        return schedules, Section(error=reason), Section(error=reason), Section(error=reason), Section(error=reason)
    try:
        conn.run("SET statement_timeout = 5000")
        return (
            _section(lambda: read_schedules(conn, _emitted_ticks(http, settings))),
            _section(lambda: read_freshness(conn, settings.price_stale_after_seconds)),
            _section(lambda: read_failures(conn)),
            _section(lambda: read_chains(conn)),
            _section(lambda: read_bridges(conn)),
        )
    finally:
        try:
            conn.close()
        except Exception:
            pass


def _emitted_ticks(http: httpx.Client, settings: Settings) -> dict[str, float]:
    """schedule → Unix time of its last emitted tick, from the scheduler's /metrics (empty if unreachable)."""
    from shared.observability.metrics import sample_value

    try:
        text = http.get(settings.scheduler_function_url.split(",")[0].rstrip("/") + "/metrics").text
    except httpx.HTTPError:
        return {}
    found = {}
    for name in SCHEDULES:
        try:
            value = sample_value(text, "crawler_scheduler_last_tick_timestamp_seconds", schedule=name)
        except ValueError:  # not a Prometheus exposition
            return {}
        if value:
            found[name] = value
    return found


def read_schedules(conn, emitted: dict[str, float]) -> list[ScheduleStatus]:
    """Per schedule: last emitted tick and the newest job of its ticks in job_logs (ids `<schedule>:<stamp>[:i]`)."""
    now = time.time()
    rows = []
    for name, schedule in SCHEDULES.items():
        status = ScheduleStatus(name, schedule.cadence.total_seconds())
        newest = emitted.get(name)
        if name in emitted:
            status.emitted_at = _iso(datetime.fromtimestamp(emitted[name], timezone.utc))
        if conn is not None:
            found = conn.run(
                "SELECT job_id, status, COALESCE(finished_at, executed_at) FROM job_logs"
                " WHERE row_kind = 'job' AND job_id LIKE :prefix ORDER BY job_id DESC LIMIT 1",
                prefix=f"{name}:%",
            )
            if found:
                status.last_job_id, status.last_job_status, at = found[0]
                status.last_job_at = _iso(at)
                tick = _tick_of(status.last_job_id)
                if tick is not None:
                    newest = max(newest or 0.0, tick.timestamp())
        if newest:
            status.age_seconds = round(now - newest, 1)
            status.overdue = status.age_seconds > OVERDUE_CADENCES * status.cadence_seconds
        rows.append(status)
    return rows


def _tick_of(job_id: str) -> datetime | None:
    try:
        stamp = job_id.split(":")[1]
        return datetime.strptime(stamp, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=timezone.utc)
    except (IndexError, ValueError):
        return None


def read_freshness(conn, stale_after_seconds: float) -> list[SetFreshness]:
    """Per token set: current members, how many have a price, how many are stale, the oldest price's age."""
    rows = conn.run(
        "SELECT m.token_set, count(*), count(l.token_key),"
        " count(*) FILTER (WHERE l.token_key IS NULL OR l.observed_at < now() - make_interval(secs => :stale)),"
        " EXTRACT(EPOCH FROM (now() - min(l.observed_at)))::float8"
        " FROM token_set_members m JOIN tokens t USING (token_key)"
        " LEFT JOIN token_latest_prices l USING (token_key)"
        " WHERE m.left_at IS NULL AND NOT t.is_stablecoin GROUP BY m.token_set ORDER BY m.token_set",
        stale=stale_after_seconds,
    )
    return [
        SetFreshness(
            token_set,
            int(members),
            int(priced),
            int(stale),
            round(float(age), 1) if age is not None else None,
            fresh=int(stale) == 0,
        )
        for token_set, members, priced, stale, age in rows
    ]


def read_failures(conn, limit: int = FAILURES_SHOWN) -> list[JobFailure]:
    """The last failed, rejected, partial or dead-lettered jobs, newest first."""
    rows = conn.run(
        "SELECT executed_at, job_id, job_type, token_type, status, COALESCE(message, '') FROM job_logs"
        " WHERE row_kind = 'job' AND status IN ('failed', 'rejected', 'partial', 'dead_lettered')"
        " ORDER BY executed_at DESC LIMIT :limit",
        limit=limit,
    )
    return [
        JobFailure(_iso(at) or "", job_id, job_type, token_type, status, message)
        for at, job_id, job_type, token_type, status, message in rows
    ]


def read_chains(conn) -> list[ChainHealth]:
    """Each monitored chain's latest reading (the stats function writes it every minute)."""
    from shared.stats.reads import latest_chain_stats

    now = datetime.now(timezone.utc)

    def text(value: Any) -> str | None:
        return None if value is None else format(value.normalize(), "f")

    return [
        ChainHealth(
            chain=c.chain,
            health=c.health,
            head_age_seconds=text(c.head_age_seconds),
            block_time_seconds=text(c.block_time_seconds),
            observed_age_seconds=max(0.0, (now - c.observed_at).total_seconds()),
            reasons=list(c.reasons),
        )
        for c in latest_chain_stats(conn)
    ]


def read_bridges(conn) -> list[BridgeHealth]:
    """Each route's latest sample per provider (the stats function samples every 2 minutes)."""
    from shared.stats.reads import latest_bridge_stats

    now = datetime.now(timezone.utc)
    return [
        BridgeHealth(
            route=b.route,
            provider=b.provider,
            status=b.status,
            duration_seconds=None if b.duration_seconds is None else format(b.duration_seconds.normalize(), "f"),
            response_seconds=format(b.response_seconds.normalize(), "f"),
            observed_age_seconds=max(0.0, (now - b.observed_at).total_seconds()),
            detail=b.detail,
        )
        for b in latest_bridge_stats(conn)
    ]


@dataclass
class StockJob:
    """The latest job of one stock schedule (shared/stocks/handler.py) in job_logs."""

    job_type: str  # stock_quotes | stock_gold
    job_id: str
    status: str
    at: str | None
    age_seconds: float | None
    message: str


@contextmanager
def _short_connection(database_url: str) -> Iterator[Any]:
    """A connection of its own for one section, with the status view's short timeouts."""
    from shared.db.connection import connect

    conn = connect(database_url, timeout=HTTP_TIMEOUT)
    try:
        conn.run("SET statement_timeout = 5000")
        yield conn
    finally:
        conn.close()


def read_stock_jobs(database_url: str) -> list[StockJob]:
    """The newest stock quote tick and gold build (dbt: models built, tests passed/failed)."""
    with _short_connection(database_url) as conn:
        rows = conn.run(
            "SELECT DISTINCT ON (job_type) job_type, job_id, status, COALESCE(finished_at, executed_at),"
            " COALESCE(message, '') FROM job_logs WHERE row_kind = 'job' AND job_type IN ('stock_quotes', 'stock_gold')"
            " ORDER BY job_type, executed_at DESC"
        )
    now = datetime.now(timezone.utc)
    return [
        StockJob(job_type, job_id, status, _iso(at), round((now - at).total_seconds(), 1) if at else None, message)
        for job_type, job_id, status, at, message in rows
    ]


@dataclass
class TradeSource:
    """One exchange sync stream (trade_sync_cursors) or one recent CSV import (trade_imports)."""

    kind: str  # sync | import
    name: str  # exchange/label/stream, or the import id's first 8 characters (no user ids here)
    status: str  # sync: ok | failed; import: running | done | failed
    accepted: int  # fills synced so far, or rows accepted
    rejected: int | None  # rows rejected (imports)
    age_seconds: float | None
    detail: str  # the last sync error, or where an import stopped


RECENT_IMPORTS = 3


def read_trade_sources(database_url: str) -> list[TradeSource]:
    """Every exchange sync stream, then the newest CSV imports, with their counts and age."""
    with _short_connection(database_url) as conn:
        syncs = conn.run(
            "SELECT a.exchange || '/' || a.label || '/' || c.stream, c.last_error, c.fills_synced, c.updated_at"
            " FROM trade_sync_cursors c JOIN trade_accounts a USING (account_id) ORDER BY 1"
        )
        imports = conn.run(
            "SELECT left(import_id::text, 8), status, rows_accepted, rows_rejected, updated_at,"
            " COALESCE(stopped_at, '') FROM trade_imports ORDER BY updated_at DESC LIMIT :n",
            n=RECENT_IMPORTS,
        )
    now = datetime.now(timezone.utc)

    def age(at: datetime | None) -> float | None:
        return round((now - at).total_seconds(), 1) if at else None

    return [
        TradeSource("sync", name, "failed" if error else "ok", int(fills), None, age(at), error or "")
        for name, error, fills, at in syncs
    ] + [
        TradeSource("import", name, status, int(accepted), int(rejected), age(at), stopped)
        for name, status, accepted, rejected, at, stopped in imports
    ]


def read_eventing(http: httpx.Client, eventing_url: str) -> list[SourceCounters]:
    """Per source counters of the local eventing plane, from its /metrics (Prometheus text or JSON)."""
    reply = http.get(eventing_url.rstrip("/") + "/metrics")
    reply.raise_for_status()
    if reply.headers.get("content-type", "").startswith("application/json"):
        return [
            SourceCounters(
                key,
                c.get("delivered", 0),
                c.get("retries", 0),
                c.get("dead_lettered", 0),
                c.get("dropped", 0),
                _total_lag(c.get("lag")),
            )
            for key, c in sorted((reply.json().get("sources") or {}).items())
        ]
    return _eventing_from_prometheus(reply.text)


def _total_lag(lag: dict | None) -> int | None:
    if not lag:
        return None
    return sum(int(n) for parts in lag.values() for n in parts.values())


def _eventing_from_prometheus(text: str) -> list[SourceCounters]:
    from prometheus_client.parser import text_string_to_metric_families

    fields = {
        "crawler_eventing_events_delivered_total": "delivered",
        "crawler_eventing_delivery_retries_total": "retries",
        "crawler_eventing_dead_letters_total": "dead_letters",
        "crawler_eventing_events_dropped_total": "dropped",
        "crawler_eventing_consumer_lag": "lag",
    }
    sources: dict[str, SourceCounters] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            attribute = fields.get(sample.name)
            if attribute is None or "source" not in sample.labels:
                continue
            counters = sources.setdefault(sample.labels["source"], SourceCounters(sample.labels["source"]))
            current = getattr(counters, attribute) or 0
            setattr(counters, attribute, current + int(sample.value))
    return [sources[key] for key in sorted(sources)]


def _reason(exc: BaseException) -> str:
    """One line saying why: our own errors speak for themselves, others get their type name."""
    from shared.errors import CrawlerError
    from shared.observability.logging import redact

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if not isinstance(exc, CrawlerError) or not text:
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return redact(text)[:200]


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


# --- rendering ------------------------------------------------------------------------------------


class _Paint:
    def __init__(self, enabled: bool):
        self.enabled = enabled

    def __call__(self, text: str, tone: str) -> str:
        codes = {"ok": "32", "bad": "31", "warn": "33", "dim": "2", "head": "1"}
        return f"\033[{codes[tone]}m{text}\033[0m" if self.enabled and tone in codes else text


def _table(paint: _Paint, header: list[str], rows: list[list[tuple[str, str]]]) -> list[str]:
    """Rows of (text, tone) cells, aligned on the visible text width."""
    widths = [len(h) for h in header]
    for row in rows:
        for i, (text, _) in enumerate(row):
            widths[i] = max(widths[i], len(text))
    lines = ["  " + "  ".join(paint(h.ljust(widths[i]), "dim") for i, h in enumerate(header)).rstrip()]
    for row in rows:
        lines.append(
            "  " + "  ".join(paint(text.ljust(widths[i]), tone) for i, (text, tone) in enumerate(row)).rstrip()
        )
    return lines


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def render(status: SystemStatus, *, color: bool = False, width: int = 120) -> str:
    """The human view of `status`."""
    paint = _Paint(color)
    out = [
        paint(f"price-crawler status at {status.taken_at}", "head")
        + "  "
        + (paint("all good", "ok") if status.healthy else paint("needs attention", "bad"))
    ]

    def section(title: str, part: Section, build: Callable[[], list[str]], empty: str) -> None:
        out.append("")
        out.append(paint(title, "head"))
        if part.error:
            out.append("  " + paint(f"unavailable: {part.error}", "bad"))
        elif not part.rows:
            out.append("  " + paint(empty, "dim"))
        else:
            out.extend(build())

    tones = {"ready": "ok", "not ready": "warn", "down": "bad"}
    section(
        "Processes",
        status.processes,
        lambda: _table(
            paint,
            ["process", "state", "url", "detail"],
            [
                [(p.name, ""), (p.state, tones[p.state]), (p.url, "dim"), (p.detail[:60], "")]
                for p in status.processes.rows
            ],
        ),
        "none configured",
    )
    section(
        "Kafka consumer lag",
        status.kafka,
        lambda: _table(
            paint,
            ["topic", "consumer group", "lag"],
            [
                [
                    (k.topic, ""),
                    (k.group, ""),
                    (str(k.lag) if k.lag is not None else k.detail, "warn" if k.lag is None or k.lag > 0 else "ok"),
                ]
                for k in status.kafka.rows
            ],
        ),
        "no KafkaSource in the manifests",
    )
    section(
        "Schedules",
        status.schedules,
        lambda: _table(
            paint,
            ["schedule", "every", "last tick", "emitted", "last job", "status"],
            [
                [
                    (s.schedule, ""),
                    (_age(s.cadence_seconds), "dim"),
                    (
                        _age(s.age_seconds) + " ago" if s.age_seconds is not None else "never",
                        "bad" if s.overdue else "ok" if s.age_seconds is not None else "dim",
                    ),
                    (s.emitted_at or "-", ""),
                    (s.last_job_id or "-", ""),
                    (
                        s.last_job_status or "-",
                        "bad" if s.last_job_status in ("failed", "rejected", "dead_lettered") else "",
                    ),
                ]
                for s in status.schedules.rows
            ],
        ),
        "no schedules",
    )
    section(
        "Price freshness",
        status.freshness,
        lambda: _table(
            paint,
            ["token set", "members", "priced", "stale", "oldest price"],
            [
                [
                    (f.token_set, ""),
                    (str(f.members), ""),
                    (str(f.priced), "ok" if f.priced == f.members else "warn"),
                    (str(f.stale), "ok" if f.stale == 0 else "bad"),
                    (_age(f.oldest_age_seconds), "ok" if f.fresh else "bad"),
                ]
                for f in status.freshness.rows
            ],
        ),
        "no token set yet (the top-100 metadata job has not run)",
    )
    section(
        "Eventing plane",
        status.eventing,
        lambda: _table(
            paint,
            ["source", "delivered", "retries", "dead letters", "dropped", "lag"],
            [
                [
                    (e.source, ""),
                    (str(e.delivered), ""),
                    (str(e.retries), "warn" if e.retries else ""),
                    (str(e.dead_letters), "bad" if e.dead_letters else ""),
                    (str(e.dropped), "bad" if e.dropped else ""),
                    (str(e.lag) if e.lag is not None else "-", ""),
                ]
                for e in status.eventing.rows
            ],
        ),
        "no sources",
    )
    health_tones = {"healthy": "ok", "degraded": "warn", "down": "bad"}
    section(
        "Chain health (stats)",
        status.chains,
        lambda: _table(
            paint,
            ["chain", "health", "head age", "block time", "read", "reasons"],
            [
                [
                    (c.chain, ""),
                    (c.health, health_tones.get(c.health, "")),
                    (f"{c.head_age_seconds} s" if c.head_age_seconds is not None else "-", ""),
                    (f"{c.block_time_seconds} s" if c.block_time_seconds is not None else "-", ""),
                    (_age(c.observed_age_seconds) + " ago", "dim"),
                    (_clip("; ".join(c.reasons) or "-", max(30, width - 70)), ""),
                ]
                for c in status.chains.rows
            ],
        ),
        "no chain read yet (the chain-performance tick has not run)",
    )
    bridge_tones = {"ok": "ok", "slow": "warn", "rate_limited": "dim"}
    section(
        "Bridges (stats)",
        status.bridges,
        lambda: _table(
            paint,
            ["route", "provider", "status", "estimate", "answered in", "sampled", "detail"],
            [
                [
                    (b.route, ""),
                    (b.provider, ""),
                    (b.status, bridge_tones.get(b.status, "bad")),
                    (f"{b.duration_seconds} s" if b.duration_seconds is not None else "-", ""),
                    (f"{b.response_seconds} s", "dim"),
                    (_age(b.observed_age_seconds) + " ago", "dim"),
                    (_clip(b.detail or "-", max(30, width - 90)), ""),
                ]
                for b in status.bridges.rows
            ],
        ),
        "no bridge sampled yet (the bridge-latency tick has not run)",
    )
    section(
        "Stocks (job_logs)",
        status.stocks,
        lambda: _table(
            paint,
            ["job", "status", "age", "last", "outcome"],
            [
                [
                    (j.job_type, ""),
                    (j.status, {"succeeded": "ok", "partial": "warn"}.get(j.status, "bad")),
                    (_age(j.age_seconds), ""),
                    (_clip(j.job_id, 40), "dim"),
                    (_clip(" ".join(j.message.split()), max(40, width - 90)), ""),
                ]
                for j in status.stocks.rows
            ],
        ),
        "no stock jobs yet",
    )
    section(
        "Trade ingestion (exchange sync, CSV imports)",
        status.trades,
        lambda: _table(
            paint,
            ["source", "name", "status", "accepted", "rejected", "age", "detail"],
            [
                [
                    (t.kind, ""),
                    (_clip(t.name, 44), ""),
                    (t.status, {"ok": "ok", "done": "ok", "running": "warn"}.get(t.status, "bad")),
                    (str(t.accepted), ""),
                    ("-" if t.rejected is None else str(t.rejected), "warn" if t.rejected else ""),
                    (_age(t.age_seconds), "dim"),
                    (_clip(" ".join(t.detail.split()) or "-", max(30, width - 100)), ""),
                ]
                for t in status.trades.rows
            ],
        ),
        "no exchange account linked and no CSV imported yet",
    )
    section(
        "Recent failures (job_logs)",
        status.failures,
        lambda: _table(
            paint,
            ["when", "status", "job", "type", "reason"],
            [
                [
                    (f.at, "dim"),
                    (f.status, "bad" if f.status != "partial" else "warn"),
                    (_clip(f.job_id, 44), ""),
                    (f"{f.job_type}/{f.token_type or '-'}", ""),
                    (_clip(" ".join(f.message.split()), max(40, width - 100)), ""),
                ]
                for f in status.failures.rows
            ],
        ),
        "none",
    )
    return "\n".join(out)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def main(argv: list[str] | None = None) -> int:
    """Print the status once (exit 0 when healthy, 1 otherwise), or redraw it with --watch."""
    parser = argparse.ArgumentParser(prog="python -m local.status", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.add_argument("--watch", type=float, metavar="SECONDS", help="redraw every SECONDS until Ctrl-C")
    args = parser.parse_args(argv)
    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    width = _terminal_width()
    try:
        while True:
            status = collect()
            if args.json:
                print(json.dumps(status.to_json(), indent=2))
            else:
                if args.watch:
                    print("\033[H\033[2J" if color else "", end="")
                print(render(status, color=color, width=width))
            if not args.watch:
                return 0 if status.healthy else 1
            time.sleep(max(0.5, args.watch))
    except KeyboardInterrupt:
        return 0


def _terminal_width() -> int:
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 120


if __name__ == "__main__":
    sys.exit(main())
