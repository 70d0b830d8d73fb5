"""Observability of the running system: each metric moves when its cause happens, one trace
links a scheduler tick to the audit it caused, and `make status` shows it all.

The system under test runs as in `make up`: the price, audit and scheduler functions under
functions-framework (one process each, scraped over HTTP on /metrics), the local eventing
plane with a KafkaSource per request topic (dead letters to a recording HTTP sink), real
Kafka and PostgreSQL, and the simulated market as the outside world. Metrics are asserted
as differences between two scrapes.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from local import services
from local import status as system_status
from local.eventing import EventingPlane, EventingSettings, load_manifests, resolve_topology
from local.market.server import SimulatedMarket
from local.stack import functions_framework_argv
from shared.config import Settings
from shared.crawler import store
from shared.crawler.job_runner import JobOutcome, run_job
from shared.crawler.models import TokenProfile
from shared.db.connection import connect
from shared.events import InboundEvent
from shared.observability import metrics
from shared.observability.tracing import new_traceparent, span_id_of, trace_id_of
from shared.runtime.resources import Resources
from tests.helpers.kafka import consume, headers_of, json_value, produce_plain

pytestmark = pytest.mark.infra

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ("price", "audit", "scheduler")
PRICE_SOURCE = "kafkasources/default/price-request-source"


# --- the running system ------------------------------------------------------------------------


class FunctionProcess:
    """One function under functions-framework, its JSON log lines captured in a file."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path):
        self.name = name
        self.port = services.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"{name}.log"
        argv = list(functions_framework_argv(name, self.port))
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                argv,
                env={**env, "K_SERVICE": name},
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def wait_alive(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"{self.name} exited with {self.process.returncode}:\n{self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health/liveness", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        pytest.fail(f"{self.name} did not answer /health/liveness within {timeout} s")

    def scrape(self) -> str:
        reply = httpx.get(f"{self.url}/metrics", timeout=10)
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/plain")
        return reply.text

    def post_event(
        self,
        data: Any,
        *,
        type_: str = "price-crawler.job.requested",
        traceparent: str | None = None,
        source: str = "/test/observability",
    ) -> httpx.Response:
        """A binary-mode CloudEvent, as KafkaSource delivers one."""
        headers = {
            "ce-specversion": "1.0",
            "ce-id": uuid.uuid4().hex,
            "ce-source": source,
            "ce-type": type_,
            "ce-time": now_iso(),
            "content-type": "application/json",
        }
        if traceparent:
            headers["ce-traceparent"] = traceparent
        return httpx.post(self.url, content=json.dumps(data).encode(), headers=headers, timeout=60)

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for raw in self.log_path.read_text(errors="replace").splitlines():
            try:
                line = json.loads(raw)
            except ValueError:
                continue  # functions-framework's own start-up lines
            if isinstance(line, dict):
                lines.append(line)
        return lines

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


class DeadLetterSink:
    """A recording HTTP endpoint standing in for the dead-letter sink."""

    def __init__(self) -> None:
        self.received: list[dict[str, str]] = []
        self._lock = threading.Condition()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with sink._lock:
                    sink.received.append({k.lower(): v for k, v in self.headers.items()})
                    sink._lock.notify_all()
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"

    def wait_for(self, count: int, timeout: float = 20.0) -> list[dict[str, str]]:
        with self._lock:
            if not self._lock.wait_for(lambda: len(self.received) >= count, timeout):
                pytest.fail(f"dead-letter sink got {len(self.received)} event(s), expected {count}")
            return list(self.received)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class System:
    functions: dict[str, FunctionProcess]
    plane: EventingPlane
    market: SimulatedMarket
    dead_letters: DeadLetterSink
    topics: dict[str, str]
    database_url: str
    bootstrap: str
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def eventing_url(self) -> str:
        return f"http://127.0.0.1:{self.plane.status_port}"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def top100_job(*symbols: str) -> dict[str, Any]:
    return {"job_type": "price", "token_type": "top100", "symbols": list(symbols), "timestamp": now_iso()}


def kafka_source(name: str, topic: str, sink: str, dead_letter_sink: str) -> str:
    return f"""
apiVersion: sources.knative.dev/v1
kind: KafkaSource
metadata:
  name: {name}
spec:
  consumerGroup: {topic}-group
  bootstrapServers: [unused:9092]
  topics: [{topic}]
  initialOffset: earliest
  delivery:
    retry: 1
    backoffPolicy: exponential
    backoffDelay: PT0.1S
    timeout: PT60S
    deadLetterSink:
      uri: {dead_letter_sink}
  sink:
    uri: {sink}
---
"""


def seed_top100(database_url: str) -> None:
    """BTC and ETH as the top-100 set (what the metadata job would have stored)."""
    profiles = [
        TokenProfile(
            key="native:bitcoin",
            symbol="BTC",
            name="Bitcoin",
            chain=None,
            address=None,
            coingecko_id="bitcoin",
            source="coingecko",
        ),
        TokenProfile(
            key="native:ethereum",
            symbol="ETH",
            name="Ethereum",
            chain=None,
            address=None,
            coingecko_id="ethereum",
            source="coingecko",
        ),
    ]
    conn = connect(database_url)
    try:
        conn.run("BEGIN")
        keys = store.upsert_tokens(conn, profiles)
        store.set_membership(conn, "top100", [keys[p.key] for p in profiles], complete=True)
        conn.run("COMMIT")
    finally:
        conn.close()


@pytest.fixture(scope="module")
def system(database_url: str, kafka_bootstrap: str, unique_topic, tmp_path_factory) -> Iterator[System]:
    services.empty_database(database_url)
    seed_top100(database_url)
    topics = {name: unique_topic(f"obs-{name}", partitions=1) for name in ("price", "audit", "metadata", "updated")}
    market = SimulatedMarket().start()
    dead_letters = DeadLetterSink()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PG", "DATABASE_", "KAFKA_"))},
        **market.env(),
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "PRICE_TOPIC": topics["price"],
        "AUDIT_TOPIC": topics["audit"],
        "METADATA_TOPIC": topics["metadata"],
        "PRICE_UPDATED_TOPIC": topics["updated"],
        "PRICE_CONSUMER_GROUP": f"{topics['price']}-group",
        "TRENDING_SET_SIZE": "4",
        "LOG_LEVEL": "INFO",
        # Fail fast in the fault tests: no retries, and Binance's breaker opens on one failure.
        **{f"{api}_MAX_RETRIES": "0" for api in ("BINANCE", "COINGECKO", "DEXSCREENER", "GECKOTERMINAL", "GOPLUS")},
        "BINANCE_BREAKER_FAILURE_THRESHOLD": "1",
        "BINANCE_BREAKER_RESET_SECONDS": "1",
    }
    log_dir = tmp_path_factory.mktemp("function-logs")
    functions = {name: FunctionProcess(name, env, log_dir) for name in FUNCTIONS}
    plane = None
    try:
        for function in functions.values():
            function.wait_alive()
        manifests = tmp_path_factory.mktemp("manifests")
        (manifests / "sources.yaml").write_text(
            kafka_source("price-request-source", topics["price"], functions["price"].url, dead_letters.url)
            + kafka_source("audit-request-source", topics["audit"], functions["audit"].url, dead_letters.url)
        )
        settings = EventingSettings(
            kafka_bootstrap_servers=kafka_bootstrap,
            port=0,
            commit_interval_seconds=0.2,
            session_timeout_ms=6000,
            shutdown_grace_seconds=5,
            ping_jitter_ms=0,
        )
        topology = resolve_topology(load_manifests(manifests, default_namespace="default"), {}, defaults={})
        plane = EventingPlane(topology, settings, serve_status=True)
        plane.start()
        yield System(functions, plane, market, dead_letters, topics, database_url, kafka_bootstrap)
    finally:
        if plane is not None:
            plane.stop()
        for function in functions.values():
            function.stop()
        market.stop()
        dead_letters.close()


@pytest.fixture
def market(system: System) -> Iterator[SimulatedMarket]:
    system.market.faults.clear()
    yield system.market
    system.market.faults.clear()


def sample(text: str | bytes, name: str, **labels: str) -> float:
    return metrics.sample_value(text, name, **labels) or 0.0


def wait_until(condition: Callable[[], Any], timeout: float = 30.0, message: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {message}")
        time.sleep(0.2)


JOB = {"function": "price", "job_type": "price", "token_type": "top100"}


# --- each metric moves when its cause happens -----------------------------------------------------


def test_a_job_moves_the_job_upstream_and_freshness_metrics(system: System, market):
    price = system.functions["price"]
    # The used-weight gauge is per wall-clock minute: a job straddling a minute boundary reads 0 honestly.
    seconds_into_minute = time.time() % 60
    if seconds_into_minute > 50:
        time.sleep(60.5 - seconds_into_minute)
    before = price.scrape()

    reply = price.post_event(top100_job("BTC", "ETH"))

    assert reply.status_code == 200, reply.text
    assert reply.json()["status"] == "succeeded"
    after = price.scrape()
    assert (
        sample(after, "crawler_jobs_received_total", **JOB) == sample(before, "crawler_jobs_received_total", **JOB) + 1
    )
    done = {**JOB, "status": "succeeded"}
    assert (
        sample(after, "crawler_jobs_completed_total", **done)
        == sample(before, "crawler_jobs_completed_total", **done) + 1
    )
    assert (
        sample(after, "crawler_job_duration_seconds_count", **JOB)
        == sample(before, "crawler_job_duration_seconds_count", **JOB) + 1
    )
    assert (
        sample(after, "crawler_events_handled_total", function="price", verdict="done")
        == sample(before, "crawler_events_handled_total", function="price", verdict="done") + 1
    )
    assert sample(after, "crawler_upstream_requests_total", api="binance", status="200") > sample(
        before, "crawler_upstream_requests_total", api="binance", status="200"
    )
    assert sample(after, "crawler_upstream_request_duration_seconds_count", api="binance") > 0
    assert sample(after, "crawler_upstream_used_weight", api="binance") > 0  # from X-MBX-USED-WEIGHT-1M
    assert sample(after, "crawler_upstream_breaker_state", api="binance", state="closed") == 1
    # Freshness is read from the database at scrape time (cached a few seconds).
    age = wait_until(
        lambda: metrics.sample_value(price.scrape(), "crawler_price_oldest_age_seconds", token_set="top100"),
        timeout=10,
        message="top-100 freshness on /metrics",
    )
    assert 0 <= age < 30


def test_a_rate_limit_wait_moves_the_wait_metrics(system: System, market):
    price = system.functions["price"]
    before = price.scrape()
    wait = {"api": "binance", "reason": "retry_after"}
    # Binance answers the next ticker request 429 with Retry-After: 3. That job falls back to the
    # other sources; the next job waits out the Retry-After before asking Binance again.
    market.faults.add("429", api="binance", path="/api/v3/ticker/price", count=1, retry_after=3)

    first = price.post_event(top100_job("BTC", "ETH"))
    second = price.post_event(top100_job("BTC", "ETH"))

    assert first.status_code == 200 and second.status_code == 200, (first.text, second.text)
    assert second.json()["sources"] == {"binance": 2}
    after = price.scrape()
    assert (
        sample(after, "crawler_upstream_requests_total", api="binance", status="429")
        == sample(before, "crawler_upstream_requests_total", api="binance", status="429") + 1
    )
    assert (
        sample(after, "crawler_upstream_rate_limit_waits_total", **wait)
        == sample(before, "crawler_upstream_rate_limit_waits_total", **wait) + 1
    )
    waited = sample(after, "crawler_upstream_rate_limit_wait_seconds_total", **wait) - sample(
        before, "crawler_upstream_rate_limit_wait_seconds_total", **wait
    )
    assert 0 < waited <= 3


def test_a_failure_moves_the_failure_and_breaker_metrics(system: System, market):
    price = system.functions["price"]
    before = price.scrape()
    for api in ("binance", "dexscreener", "coingecko"):
        market.faults.add("500", api=api, count="until_cleared")

    reply = price.post_event(top100_job("BTC", "ETH"))

    assert reply.status_code == 503, reply.text  # retryable: KafkaSource retries, then dead-letters
    after = price.scrape()
    assert sample(after, "crawler_jobs_failed_total", **JOB) == sample(before, "crawler_jobs_failed_total", **JOB) + 1
    assert (
        sample(after, "crawler_events_handled_total", function="price", verdict="retry")
        == sample(before, "crawler_events_handled_total", function="price", verdict="retry") + 1
    )
    assert sample(after, "crawler_upstream_requests_total", api="binance", status="500") > sample(
        before, "crawler_upstream_requests_total", api="binance", status="500"
    )
    # One failure opens Binance's breaker here (BINANCE_BREAKER_FAILURE_THRESHOLD=1).
    assert sample(after, "crawler_upstream_breaker_state", api="binance", state="open") == 1
    assert sample(after, "crawler_upstream_breaker_state", api="binance", state="closed") == 0
    assert (
        sample(after, "crawler_upstream_breaker_transitions_total", api="binance", state="open")
        == sample(before, "crawler_upstream_breaker_transitions_total", api="binance", state="open") + 1
    )
    market.faults.clear()
    # After BINANCE_BREAKER_RESET_SECONDS the breaker lets a trial call through, and closes on success.
    wait_until(
        lambda: sample(price.scrape(), "crawler_upstream_breaker_state", api="binance", state="half_open") == 1,
        timeout=5,
        message="half-open breaker",
    )
    assert price.post_event(top100_job("BTC")).status_code == 200
    assert sample(price.scrape(), "crawler_upstream_breaker_state", api="binance", state="closed") == 1


def test_a_dead_letter_moves_the_rejection_and_eventing_metrics(system: System, market):
    price = system.functions["price"]
    before_function, before_plane = price.scrape(), metrics.render_prometheus().decode()
    dead_before = len(system.dead_letters.received)

    # A message that can never succeed, written by a plain Kafka client.
    produce_plain(
        system.bootstrap,
        system.topics["price"],
        json.dumps({"job_type": "liquidate", "token_type": "top100", "symbols": ["BTC"], "timestamp": now_iso()}),
    )

    [*_, dead] = system.dead_letters.wait_for(dead_before + 1)
    assert dead["ce-knativeerrorcode"] == "400"
    after_function = price.scrape()
    rejected = {"function": "price", "job_type": "invalid", "token_type": "top100"}
    assert (
        sample(after_function, "crawler_jobs_rejected_total", **rejected)
        == sample(before_function, "crawler_jobs_rejected_total", **rejected) + 1
    )
    assert (
        sample(after_function, "crawler_events_handled_total", function="price", verdict="rejected")
        == sample(before_function, "crawler_events_handled_total", function="price", verdict="rejected") + 1
    )
    after_plane = wait_until(
        lambda: (
            (text := metrics.render_prometheus().decode())
            and sample(text, "crawler_eventing_dead_letters_total", source=PRICE_SOURCE)
            > sample(before_plane, "crawler_eventing_dead_letters_total", source=PRICE_SOURCE)
            and text
        ),
        timeout=5,
        message="the plane's dead-letter counter",
    )
    assert (
        sample(after_plane, "crawler_eventing_dead_letters_total", source=PRICE_SOURCE)
        == sample(before_plane, "crawler_eventing_dead_letters_total", source=PRICE_SOURCE) + 1
    )
    assert (
        sample(after_plane, "crawler_eventing_delivery_responses_total", source=PRICE_SOURCE, status="400")
        == sample(before_plane, "crawler_eventing_delivery_responses_total", source=PRICE_SOURCE, status="400") + 1
    )
    assert sample(after_plane, "crawler_eventing_events_received_total", source=PRICE_SOURCE) >= 1


def test_rows_a_job_writes_are_counted_per_table(database_url: str):
    """The job runner counts what a pipeline reports in JobOutcome.rows_upserted (in this process)."""
    resources = Resources(Settings(database_url=database_url))
    event = InboundEvent(
        id=uuid.uuid4().hex,
        source="/test/observability",
        type="price-crawler.job.requested",
        data=json.dumps(top100_job("BTC", "ETH")).encode(),
    )
    labels = {**JOB, "table": "token_prices"}
    before = metrics.render_prometheus()
    try:
        body = run_job(
            event,
            resources,
            function="price",
            accepts={"price"},
            pipeline=lambda ctx: JobOutcome(requested=2, succeeded=2, rows_upserted={"token_prices": 2}),
        )
    finally:
        resources.close()
    assert body["status"] == "succeeded"
    after = metrics.render_prometheus()
    assert (
        sample(after, "crawler_db_rows_upserted_total", **labels)
        == sample(before, "crawler_db_rows_upserted_total", **labels) + 2
    )


# --- one trace from tick to audit --------------------------------------------------------------------


def test_one_trace_id_links_a_scheduler_tick_to_the_audit_it_caused(system: System, market):
    scheduler, price, audit = (system.functions[n] for n in ("scheduler", "price", "audit"))
    tick_traceparent = new_traceparent()
    trace_id = trace_id_of(tick_traceparent)
    before = scheduler.scrape()

    tick = scheduler.post_event(
        {"schedule": "trending"},
        type_="dev.knative.sources.ping",
        source="/apis/v1/namespaces/default/pingsources/trending-tick",
        traceparent=tick_traceparent,
    )

    assert tick.status_code == 200, tick.text
    assert tick.json()["emitted"] == 1
    after = scheduler.scrape()
    emitted = {"schedule": "trending", "outcome": "emitted"}
    assert (
        sample(after, "crawler_scheduler_ticks_total", **emitted)
        == sample(before, "crawler_scheduler_ticks_total", **emitted) + 1
    )
    assert time.time() - sample(after, "crawler_scheduler_last_tick_timestamp_seconds", schedule="trending") < 60

    # The job on Kafka carries a child span of the tick, in the tick's trace.
    [job_record] = consume(system.bootstrap, system.topics["price"], 1, settle=0.5, group=f"reader-{uuid.uuid4().hex}")[
        -1:
    ]
    job_headers = headers_of(job_record)
    assert trace_id_of(job_headers["ce_traceparent"]) == trace_id
    assert span_id_of(job_headers["ce_traceparent"]) != span_id_of(tick_traceparent)
    job_id = json_value(job_record)["job_id"]
    assert job_id.startswith("trending:")

    # The plane delivers it to price; price's completion event asks audit, in the same trace.
    [completion] = consume(system.bootstrap, system.topics["audit"], 1, timeout=60)
    assert trace_id_of(headers_of(completion)["ce_traceparent"]) == trace_id

    def audit_done() -> dict[str, Any] | None:
        return next(
            (
                line
                for line in audit.log_lines()
                if line.get("job_id", "")
                and line["job_id"].startswith("audit:")
                and line["message"].startswith("job ")
                and " succeeded" in line["message"]
            ),
            None,
        )

    audit_line = wait_until(audit_done, timeout=60, message="the audit job's completion log line")
    assert audit_line["trace_id"] == trace_id
    assert audit_line["function"] == "audit"
    price_lines = [line for line in price.log_lines() if line.get("job_id") == job_id]
    assert price_lines and all(line["trace_id"] == trace_id for line in price_lines)
    system.notes["trending_job_id"] = job_id


# --- make status ------------------------------------------------------------------------------------


def test_status_shows_the_running_system(system: System, market):
    functions = system.functions
    assert functions["price"].post_event(top100_job("BTC", "ETH")).status_code == 200
    assert functions["price"].post_event({"job_type": "price", "token_type": "top100"}).status_code == 400
    settings = Settings(
        database_url=system.database_url,
        kafka_bootstrap_servers=system.bootstrap,
        price_function_url=functions["price"].url,
        audit_function_url=functions["audit"].url,
        scheduler_function_url=functions["scheduler"].url,
        metadata_function_url=f"http://127.0.0.1:{services.free_port()}",  # not running in this test
        deadletter_function_url=f"http://127.0.0.1:{services.free_port()}",  # nor this one
        trade_normalizer_function_url=f"http://127.0.0.1:{services.free_port()}",  # nor trade ingestion's
        trade_enricher_function_url=f"http://127.0.0.1:{services.free_port()}",
        trade_analyser_function_url=f"http://127.0.0.1:{services.free_port()}",
        stats_function_url=f"http://127.0.0.1:{services.free_port()}",
        stocks_function_url=f"http://127.0.0.1:{services.free_port()}",
        trade_sync_function_url=f"http://127.0.0.1:{services.free_port()}",
    )

    status = system_status.collect(settings, eventing_url=system.eventing_url, market_url=system.market.url)

    states = {p.name: p.state for p in status.processes.rows}
    assert states == {
        "price": "ready",
        "audit": "ready",
        "scheduler": "ready",
        "metadata": "down",
        "deadletter": "down",
        "trade_normalizer": "down",
        "trade_enricher": "down",
        "trade_analyser": "down",
        "stats": "down",
        "stocks": "down",
        "trade_sync": "down",
        "eventing": "ready",
        "market": "ready",
    }
    assert status.kafka.error is None and {k.topic for k in status.kafka.rows} >= {"price-crawler.price.request"}
    schedules = {s.schedule: s for s in status.schedules.rows}
    if "trending_job_id" in system.notes:
        assert schedules["trending"].last_job_id == system.notes["trending_job_id"]
        assert schedules["trending"].emitted_at is not None and not schedules["trending"].overdue
    freshness = {f.token_set: f for f in status.freshness.rows}
    assert freshness["top100"].members == 2 and freshness["top100"].priced == 2
    rejected = next(f for f in status.failures.rows if f.status == "rejected")
    assert "timestamp" in rejected.message  # the reason the job was rejected
    sources = {e.source for e in status.eventing.rows}
    assert {PRICE_SOURCE, "kafkasources/default/audit-request-source"} <= sources
    assert not status.healthy  # metadata is down
    text = system_status.render(status)
    assert "metadata" in text and "down" in text and "top100" in text
    json.dumps(status.to_json())  # --json works
