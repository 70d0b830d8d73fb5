"""One trace from a scheduler tick to the audit it caused, exported over OTLP/HTTP to a real receiver.

The trending flow of tests/e2e/test_trending_flow.py (scheduler, price and audit as
functions-framework processes, the local eventing plane's PingSource and KafkaSources, the
simulated market, real Kafka and PostgreSQL), with OTEL_EXPORTER_OTLP_ENDPOINT pointing at an
in-process OTLP/HTTP endpoint that decodes every ExportTraceServiceRequest. The test reads the
span tree the functions exported:

    tick trending (scheduler, root)
    └ send <price topic> (scheduler, producer)
      └ process <price topic> (price, consumer)
        ├ GET … (price, client: the market's DexScreener / GeckoTerminal / … endpoints)
        ├ INSERT token_prices … / COMMIT (price, client: PostgreSQL)
        └ send <audit topic> (price, producer: the completion event)
          └ process <audit topic> (audit, consumer) ─ GET (GoPlus), COMMIT
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from local.eventing import EventingPlane, EventingSettings, load_manifests, resolve_topology
from local.market.server import SimulatedMarket
from tests.helpers.e2e import function_env, isolated_manifests, serve_functions, wait_for
from tests.helpers.otlp import OtlpReceiver, ReceivedSpan

pytestmark = [pytest.mark.infra, pytest.mark.slow]

FROZEN_AT = datetime(2026, 6, 25, 21, 0, 0, tzinfo=UTC)
FUNCTIONS = ("scheduler", "price", "audit", "deadletter")
# Sent as the CoinGecko and GoPlus credentials: no span may carry them.
API_KEY = "test-secret-key-7f3a9c"


@pytest.fixture
def topics(unique_topic) -> dict[str, str]:
    return {
        "price": unique_topic("price", partitions=2),
        "audit": unique_topic("audit", partitions=1),
        "price_updated": unique_topic("price-updated", partitions=1),
        "price_dead_letter": unique_topic("price-dlq", partitions=1),
        "audit_dead_letter": unique_topic("audit-dlq", partitions=1),
    }


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


@pytest.fixture
def function_urls(
    simulated_market: SimulatedMarket,
    clean_db: str,
    kafka_bootstrap: str,
    topics: dict[str, str],
    receiver: OtlpReceiver,
) -> Iterator[dict[str, str]]:
    env = function_env(simulated_market.env(), clean_db, kafka_bootstrap, topics)
    env.update(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",  # export within a tenth of a second, not every 5 s
            "COINGECKO_API_KEY": API_KEY,
            "GOPLUS_API_KEY": API_KEY,
        }
    )
    env.pop("OTEL_SERVICE_NAME", None)
    yield from serve_functions(FUNCTIONS, env)


class Trace:
    """The spans of one trace id, navigable by parent."""

    def __init__(self, spans: list[ReceivedSpan]):
        self.spans = spans
        self.by_id = {s.span_id: s for s in spans}

    def parent(self, span: ReceivedSpan) -> ReceivedSpan | None:
        return self.by_id.get(span.parent_id) if span.parent_id else None

    def descends_from(self, span: ReceivedSpan, ancestor: ReceivedSpan) -> bool:
        current = self.parent(span)
        while current is not None:
            if current.span_id == ancestor.span_id:
                return True
            current = self.parent(current)
        return False

    def below(self, ancestor: ReceivedSpan, **match: str) -> list[ReceivedSpan]:
        """Spans under `ancestor` with the given service and kind."""
        return [
            s
            for s in self.spans
            if self.descends_from(s, ancestor) and all(getattr(s, k) == v for k, v in match.items())
        ]


def _audited_trace(receiver: OtlpReceiver, audit_topic: str) -> Trace | None:
    """A complete trace: an audit's process span whose whole chain up to the tick has arrived,
    and whose audit called GoPlus and finished (its COMMIT exported). Later ticks' audits find
    their tokens audited already and call nobody: the first tick's trace is the one wanted."""
    spans = receiver.spans()
    by_trace: dict[str, list[ReceivedSpan]] = {}
    for span in spans:
        by_trace.setdefault(span.trace_id, []).append(span)
    for trace_spans in by_trace.values():
        trace = Trace(trace_spans)
        roots = [s for s in trace_spans if s.parent_id is None and s.service == "scheduler"]
        audits = [s for s in trace_spans if s.service == "audit" and s.name == f"process {audit_topic}"]
        for audit in audits:
            below = trace.below(audit)
            committed = any(s.attributes.get("db.operation.name") == "COMMIT" for s in below)
            called = any(s.attributes.get("crawler.upstream.api") == "goplus" for s in below)
            if roots and committed and called and trace.descends_from(audit, roots[0]):
                return trace
    return None


def test_one_trace_from_the_tick_through_kafka_and_the_price_function_to_the_audit(
    simulated_market: SimulatedMarket,
    clean_db: str,
    kafka_bootstrap: str,
    topics: dict[str, str],
    function_urls: dict[str, str],
    receiver: OtlpReceiver,
    tmp_path: Path,
) -> None:
    simulated_market.clock.freeze(FROZEN_AT)
    manifests = load_manifests(
        isolated_manifests(tmp_path, topics, pings={"trending-tick": "*/2 * * * * *"}, sources=("price", "audit"))
    )
    topology = resolve_topology(manifests, {f"{n.upper()}_FUNCTION_URL": u for n, u in function_urls.items()})
    settings = EventingSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        commit_interval_seconds=0.5,
        session_timeout_ms=6000,
        shutdown_grace_seconds=5,
        ping_jitter_ms=0,
        port=0,
    )
    plane = EventingPlane(topology, settings)
    plane.start()
    try:
        trace = wait_for(lambda: _audited_trace(receiver, topics["audit"]), 25, "a trace from a tick to its audit")
    finally:
        plane.stop()

    # The scheduler's tick is the root; its jobs were sent to the price topic under it.
    root = next(s for s in trace.spans if s.parent_id is None)
    assert (root.service, root.name, root.kind) == ("scheduler", "tick trending", "internal")
    assert root.attributes["crawler.schedule"] == "trending"
    send = next(s for s in trace.spans if s.parent_id == root.span_id and s.kind == "producer")
    assert send.name == f"send {topics['price']}"
    assert (
        send.attributes
        | {
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.destination.name": topics["price"],
        }
        == send.attributes
    )

    # The price function processed that very message: its span's parent is the send span (through Kafka headers).
    process = next(s for s in trace.spans if s.service == "price" and s.kind == "consumer")
    assert process.parent_id == send.span_id
    assert process.name == f"process {topics['price']}"
    assert process.attributes["messaging.system"] == "kafka"
    assert process.attributes["messaging.operation.type"] == "process"
    assert process.attributes["messaging.destination.name"] == topics["price"]
    assert process.attributes["messaging.kafka.message.key"] == "trending"
    assert process.attributes["cloudevents.event_type"] == "price-crawler.job.requested"

    # Each upstream call is an HTTP client span under it, with the method, server and a clean URL.
    calls = trace.below(process, service="price", kind="client")
    http_calls = [s for s in calls if "http.request.method" in s.attributes]
    assert http_calls
    market = simulated_market.base_url("dexscreener").split("://", 1)[1].split("/", 1)[0]
    for call in http_calls:
        assert call.name == "GET" and call.attributes["http.request.method"] == "GET"
        assert f"{call.attributes['server.address']}:{call.attributes['server.port']}" == market
        assert call.attributes["url.full"].startswith("http://" + market + "/")
        status = call.attributes["http.response.status_code"]
        # The market answers 404 for a token an API does not list: an error of a client span.
        assert status == 200 or (status >= 400 and call.error and call.attributes["error.type"] == str(status)), call
    assert {
        s.attributes["crawler.upstream.api"] for s in http_calls if s.attributes["http.response.status_code"] == 200
    } >= {"dexscreener"}

    # The job's writes are database client spans: the prices inserted, and the transaction's COMMIT.
    db = [s for s in calls if s.attributes.get("db.system.name") == "postgresql"]
    assert any("INSERT token_prices" in s.attributes.get("db.query.summary", "") for s in db)
    commits = [s for s in db if s.attributes.get("db.operation.name") == "COMMIT"]
    assert commits and all(s.attributes["db.namespace"] == clean_db.rsplit("/", 1)[1] for s in commits)
    assert any(s.attributes.get("db.collection.name") == "job_logs" for s in db)

    # The completion event was sent under the price job, and the audit it triggered is in the same trace.
    completion = next(
        s
        for s in trace.below(process, kind="producer")
        if s.attributes["messaging.destination.name"] == topics["audit"]
    )
    audit = next(s for s in trace.spans if s.service == "audit" and s.kind == "consumer")
    assert audit.parent_id == completion.span_id and audit.trace_id == root.trace_id
    audit_calls = trace.below(audit, service="audit", kind="client")
    assert any(s.attributes.get("crawler.upstream.api") == "goplus" for s in audit_calls)
    assert any(s.attributes.get("db.collection.name") == "token_audits" for s in audit_calls)

    # No secret in any attribute of any span exported.
    assert not [(s.name, k) for s in receiver.spans() for k, v in s.attributes.items() if API_KEY in str(v)]
