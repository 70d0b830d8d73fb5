"""Loading the cluster's manifests and resolving sinks locally — pure logic, no Kafka."""

from __future__ import annotations

from pathlib import Path

import pytest

from local.eventing.destinations import (
    HttpEndpoint,
    KafkaSinkEndpoint,
    SinkResolutionError,
    function_url_variable,
    resolve_topology,
)
from local.eventing.manifests import (
    ManifestError,
    default_consumer_group,
    load_manifests,
)
from local.eventing.retry_policy import RetryPolicy

MANIFESTS = Path(__file__).parent / "manifests"
DEFAULTS = {
    "PRICE_FUNCTION_URL": "http://localhost:8081",
    "METADATA_FUNCTION_URL": "http://localhost:8082",
    "AUDIT_FUNCTION_URL": "http://localhost:8083",
    "SCHEDULER_FUNCTION_URL": "http://localhost:8084",
    "DEADLETTER_FUNCTION_URL": "http://localhost:8086",
    "TRADE_NORMALIZER_FUNCTION_URL": "http://localhost:8088",
    "TRADE_ENRICHER_FUNCTION_URL": "http://localhost:8093",
    "TRADE_ANALYSER_FUNCTION_URL": "http://localhost:8094",
    "STATS_FUNCTION_URL": "http://localhost:8092",
    "STOCKS_FUNCTION_URL": "http://localhost:8095",
    "TRADE_SYNC_FUNCTION_URL": "http://localhost:8096",
}


def write(tmp_path: Path, text: str, name: str = "eventing.yaml") -> Path:
    (tmp_path / name).write_text(text)
    return tmp_path


def test_the_project_manifest_set():
    manifests = load_manifests(MANIFESTS)
    sources = {s.name: s for s in manifests.kafka_sources}
    assert set(sources) == {"price-request-source", "metadata-request-source", "audit-request-source"}
    price = sources["price-request-source"]
    assert price.namespace == "price-crawler"  # from the Kustomization's namespace
    assert price.topics == ("price-crawler.price.request",)
    assert price.consumer_group == "price-crawler-price"
    assert price.retry_policy == RetryPolicy(
        retry=3, backoff_policy="exponential", backoff_delay_ms=500, timeout_ms=30_000
    )
    assert price.ordering == "ordered" and price.initial_offset == "latest" and price.consumers == 1
    metadata = sources["metadata-request-source"]
    assert metadata.consumer_group == default_consumer_group("price-crawler", "metadata-request-source")
    assert metadata.retry_policy.backoff_delay_ms == 200  # retry set, backoffDelay not
    audit = sources["audit-request-source"]
    assert audit.retry_policy.retry == 10 and audit.dead_letter_sink is None  # no delivery at all
    assert audit.ordering == "unordered" and audit.ce_overrides == {"pipeline": "audit"}

    pings = {p.name: p for p in manifests.ping_sources}
    assert pings["top100-price-tick"].schedule.six_fields == "*/5 * * * * *"
    assert pings["top100-price-tick"].data == b'{"job_type": "price", "token_type": "top100"}'
    assert (
        pings["top100-price-tick"].cloudevent_source
        == "/apis/v1/namespaces/price-crawler/pingsources/top100-price-tick"
    )
    assert pings["top100-metadata-tick"].schedule.six_fields == "0 0 3 * * *"
    assert {s.name: s.topic for s in manifests.kafka_sinks}["price-dead-letter"] == "price-crawler.price.dead-letter"


def test_sinks_resolve_to_function_urls_and_kafka_sinks():
    topology = resolve_topology(load_manifests(MANIFESTS), {"PRICE_FUNCTION_URL": "http://127.0.0.1:9999"}, DEFAULTS)
    by_name = {s.manifest.name: s for s in topology.kafka_sources}
    price = by_name["price-request-source"]
    assert price.sink == HttpEndpoint("http://127.0.0.1:9999")  # env wins over the default
    assert isinstance(price.dead_letter_sink, KafkaSinkEndpoint)
    assert price.dead_letter_sink.sink.topic == "price-crawler.price.dead-letter"
    assert price.dead_letter_sink.address == (
        "http://kafka-sink-ingress.knative-eventing.svc.cluster.local/price-crawler/price-dead-letter"
    )
    assert by_name["metadata-request-source"].sink == HttpEndpoint("http://localhost:8082")
    assert {p.sink for p in topology.ping_sources} == {HttpEndpoint("http://localhost:8084")}


def test_function_url_defaults_come_from_shared_settings():
    topology = resolve_topology(load_manifests(MANIFESTS), {})  # real defaults of shared.config.Settings
    assert {s.manifest.name: s.sink.url for s in topology.kafka_sources}[
        "audit-request-source"
    ] == "http://localhost:8083"


def test_function_url_variable_names():
    assert function_url_variable("price") == "PRICE_FUNCTION_URL"
    assert function_url_variable("top-100-ticker") == "TOP_100_TICKER_FUNCTION_URL"


def test_missing_function_url_is_a_clear_startup_error(tmp_path):
    write(tmp_path, SOURCE.format(sink="ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: pricer-v2}"))
    with pytest.raises(SinkResolutionError, match="set PRICER_V2_FUNCTION_URL"):
        resolve_topology(load_manifests(tmp_path), {}, DEFAULTS)


def test_ref_with_relative_uri_and_unknown_kinds(tmp_path):
    write(
        tmp_path,
        SOURCE.format(sink="ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: price}\n    uri: /jobs"),
    )
    [source] = resolve_topology(load_manifests(tmp_path), {}, DEFAULTS).kafka_sources
    assert source.sink == HttpEndpoint("http://localhost:8081/jobs")

    write(tmp_path, SOURCE.format(sink="ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: default}"))
    with pytest.raises(SinkResolutionError, match="Broker default/default"):
        resolve_topology(load_manifests(tmp_path), {}, DEFAULTS)


def test_undeclared_kafka_sink_is_an_error(tmp_path):
    write(
        tmp_path, SOURCE.format(sink="ref: {apiVersion: eventing.knative.dev/v1alpha1, kind: KafkaSink, name: nowhere}")
    )
    with pytest.raises(SinkResolutionError, match="KafkaSink default/nowhere is referenced but not declared"):
        resolve_topology(load_manifests(tmp_path), {}, DEFAULTS)


def test_namespace_from_metadata_or_default(tmp_path):
    write(tmp_path, SOURCE.format(sink="uri: http://x/").replace("name: s\n", "name: s\n  namespace: team\n"))
    write(tmp_path, PING.replace("name: p", "name: p2"), "more.yaml")
    manifests = load_manifests(tmp_path, default_namespace="local")
    assert manifests.kafka_sources[0].namespace == "team"
    assert manifests.ping_sources[0].namespace == "local"


def test_other_kinds_and_list_documents(tmp_path):
    write(
        tmp_path,
        """
apiVersion: v1
kind: List
items:
  - apiVersion: sources.knative.dev/v1
    kind: PingSource
    metadata: {name: listed}
    spec: {schedule: "@hourly", sink: {uri: "http://x/"}}
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: price}
spec: {}
---
""",
    )
    manifests = load_manifests(tmp_path)
    assert [p.name for p in manifests.ping_sources] == ["listed"]
    assert manifests.kafka_sources == ()


SOURCE = """
apiVersion: sources.knative.dev/v1beta1
kind: KafkaSource
metadata:
  name: s
spec:
  bootstrapServers: [kafka:9092]
  topics: [t]
  sink:
    {sink}
"""

PING = """
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata:
  name: p
spec:
  schedule: "* * * * *"
  sink: {uri: "http://x/"}
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (SOURCE.format(sink="uri: http://x/").replace("  topics: [t]\n", ""), "spec.topics is required"),
        (
            SOURCE.format(sink="uri: http://x/").replace("  bootstrapServers: [kafka:9092]\n", ""),
            "spec.bootstrapServers is required",
        ),
        (SOURCE.format(sink="uri: http://x/") + "  ordering: random\n", "spec.ordering must be ordered or unordered"),
        (SOURCE.format(sink="uri: http://x/") + "  initialOffset: middle\n", "spec.initialOffset"),
        (SOURCE.format(sink="uri: http://x/") + "  consumers: 0\n", "spec.consumers"),
        (SOURCE.format(sink="uri: http://x/") + "  delivery: {retry: -1}\n", "spec.delivery.retry"),
        (SOURCE.format(sink="uri: http://x/") + "  delivery: {backoffDelay: 5s}\n", "backoffDelay"),
        (SOURCE.format(sink="uri: http://x/") + "  delivery: {retryAfterMax: PT1S}\n", "retryAfterMax"),
        (
            SOURCE.format(sink="uri: http://x/") + "  ceOverrides: {extensions: {Bad-Name: x}}\n",
            "not a valid CloudEvents",
        ),
        (SOURCE.format(sink="uri: http://x/") + "  ceOverrides: {extensions: {type: x}}\n", "reserved"),
        (SOURCE.format(sink="uri: relative/path"), "must be absolute"),
        (SOURCE.format(sink="ref: {kind: Service, name: price}"), "ref is missing apiVersion"),
        (SOURCE.format(sink="{}").replace("  sink:\n    {}\n", ""), "spec.sink is required"),
        (
            SOURCE.format(sink="uri: http://x/")
            .replace("kind: KafkaSource", "kind: KafkaSource\n")
            .replace("sources.knative.dev/v1beta1", "sources.knative.dev/v1alpha1"),
            "not served",
        ),
        (
            SOURCE.format(sink="uri: http://x/").replace(
                "  name: s\n", "  labels: {kafkasources.sources.knative.dev/key-type: uuid}\n  name: s\n"
            ),
            "key-type",
        ),
        (PING.replace('"* * * * *"', '"@every 10s"'), "'@every' is not supported"),
        (PING.replace('"* * * * *"', '"* * *"'), "3 fields"),
        (PING + "  timezone: Nowhere/Land\n", "Nowhere/Land"),
        (PING + "  data: x\n  dataBase64: eA==\n", "mutually exclusive"),
        (PING + "  contentType: application/json\n  data: '[1, 2]'\n", "must be a JSON object"),
        (PING + "  dataBase64: '%%%'\n", "not valid base64"),
        (PING.replace("metadata:\n  name: p\n", "metadata: {}\n"), "no metadata.name"),
        (PING + "---\n" + PING, "duplicate"),
        (
            "apiVersion: eventing.knative.dev/v1alpha1\nkind: KafkaSink\nmetadata: {name: k}\nspec: {bootstrapServers: [k:1]}\n",
            "spec.topic is required",
        ),
        (
            "apiVersion: eventing.knative.dev/v1alpha1\nkind: KafkaSink\nmetadata: {name: k}\n"
            "spec: {topic: t, bootstrapServers: [k:1], contentMode: xml}\n",
            "contentMode",
        ),
        (
            "kind: PingSource\napiVersion: sources.knative.dev/v1\nmetadata: {name: p}\nspec: [1]\n",
            "spec is missing or not a mapping",
        ),
        ("- just\n- a list\n", "document is not a mapping"),
        ("key: [unclosed\n", "cannot read YAML"),
    ],
)
def test_malformed_manifests_are_rejected_with_a_clear_error(tmp_path, text, message):
    write(tmp_path, text)
    with pytest.raises(ManifestError) as caught:
        load_manifests(tmp_path)
    assert message in str(caught.value)
    assert "eventing.yaml" in str(caught.value)  # says where


def test_all_problems_are_reported_together(tmp_path):
    write(tmp_path, PING.replace('"* * * * *"', '"@every 1m"') + "---\n" + SOURCE.format(sink="uri: x"))
    with pytest.raises(ManifestError) as caught:
        load_manifests(tmp_path)
    assert len(caught.value.problems) == 2


def test_missing_directory(tmp_path):
    with pytest.raises(ManifestError, match="does not exist"):
        load_manifests(tmp_path / "nope")


def test_default_consumer_group_is_stable_and_per_source():
    first = default_consumer_group("default", "price-request-source")
    assert first == default_consumer_group("default", "price-request-source")
    assert first.startswith("knative-kafka-source-") and len(first) == len("knative-kafka-source-") + 36
    assert first != default_consumer_group("other", "price-request-source")


def test_the_repository_manifests_run_on_the_local_plane():
    """infra/knative/base (the cluster's own manifests) loads and wires every source locally."""
    from local.eventing.config import DEFAULT_MANIFESTS_DIR

    topology = resolve_topology(load_manifests(DEFAULT_MANIFESTS_DIR), {}, DEFAULTS)
    wiring = {
        s.manifest.name: (
            s.manifest.topics,
            s.sink,
            s.dead_letter_sink.sink.topic
            if isinstance(s.dead_letter_sink, KafkaSinkEndpoint)
            else s.dead_letter_sink,  # a KafkaSink by its topic
        )
        for s in topology.kafka_sources
    }
    # Every crawler source dead-letters to the deadletter function (a Knative Service ref, resolved like a
    # sink), which keeps the dead letter in PostgreSQL and forwards it to the dead-letter topic.
    deadletter = HttpEndpoint("http://localhost:8086")
    assert wiring == {
        "price-request-source": (("price-crawler.price.request",), HttpEndpoint("http://localhost:8081"), deadletter),
        "metadata-request-source": (
            ("price-crawler.metadata.request",),
            HttpEndpoint("http://localhost:8082"),
            deadletter,
        ),
        "audit-request-source": (("price-crawler.audit.request",), HttpEndpoint("http://localhost:8083"), deadletter),
        # Trade ingestion (docs/trades.md): raw-trades → the trade normaliser.
        "trade-normalizer-source": (
            ("raw-trades",),
            HttpEndpoint("http://localhost:8088"),
            "trade-normalizer.dead-letter",
        ),
        # normalized-trades → the enricher (and the crawler's prices, for trades waiting for one);
        # enriched-trades → the analyser.
        "trade-enricher-source": (
            ("normalized-trades",),
            HttpEndpoint("http://localhost:8093"),
            "trade-enricher.dead-letter",
        ),
        "trade-enricher-price-source": (
            ("price-crawler.price.updated",),
            HttpEndpoint("http://localhost:8093"),
            "trade-enricher.dead-letter",
        ),
        "trade-analyser-source": (
            ("enriched-trades",),
            HttpEndpoint("http://localhost:8094"),
            "trade-analyser.dead-letter",
        ),
    }
    pings = {p.manifest.name: p for p in topology.ping_sources}
    assert set(pings) == {
        "top100-price-tick",
        "top100-metadata-tick",
        "trending-tick",
        "dead-letter-forward-tick",
        "chain-performance-tick",
        "bridge-latency-tick",
        "stats-overview-tick",
        "stock-quotes-tick",
        "stock-gold-tick",
        "trade-sync-tick",
    }
    assert pings["chain-performance-tick"].sink == HttpEndpoint("http://localhost:8092")
    assert pings["bridge-latency-tick"].sink == HttpEndpoint("http://localhost:8092")
    assert pings["bridge-latency-tick"].manifest.schedule.six_fields == "0 */2 * * * *"
    assert pings["stats-overview-tick"].sink == HttpEndpoint("http://localhost:8092")
    # Stock quotes every 6 s (a seconds field) and the gold build every minute, both to stocks.
    assert pings["stock-quotes-tick"].manifest.schedule.six_fields == "*/6 * * * * *"
    assert {pings[n].sink for n in ("stock-quotes-tick", "stock-gold-tick")} == {HttpEndpoint("http://localhost:8095")}
    assert pings["trade-sync-tick"].sink == HttpEndpoint("http://localhost:8096")
    assert pings["top100-price-tick"].manifest.schedule.six_fields == "*/5 * * * * *"
    assert {n: p.sink for n, p in pings.items() if n.startswith(("top100", "trending"))} == dict.fromkeys(
        ("top100-price-tick", "top100-metadata-tick", "trending-tick"), HttpEndpoint("http://localhost:8084")
    )
    assert pings["dead-letter-forward-tick"].sink == deadletter
