"""infra/: every kustomization renders, and every resource passes the CRD schema and webhook rules."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import manifest_rules as rules
import pytest

from shared.config import Settings
from shared.dead_letter_replay import DEAD_LETTER_TOPICS
from shared.stats.settings import StatsSettings
from shared.stocks.settings import StockSettings
from shared.trades.settings import TradesSettings

BASE = rules.ROOT / "infra" / "knative" / "base"
OVERLAYS = ("infra/knative/overlays/k3d", "infra/knative/overlays/production")


def _by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


# --------------------------------------------------------------------------- all manifests valid


def test_every_kustomization_is_found(rendered: dict[str, list[dict[str, Any]]]) -> None:
    assert {"infra/knative/base", "infra/knative/services", "infra/knative/jobs", *OVERLAYS} <= set(rendered)


@pytest.mark.parametrize("directory", [str(d.relative_to(rules.ROOT)) for d in rules.kustomization_dirs()])
def test_rendered_resources_are_valid(directory: str, rendered: dict[str, Any], function_services: set) -> None:
    docs = rendered[directory]
    assert docs, f"{directory} renders nothing"
    # Services come from func.yaml (kn func) unless this set defines them itself.
    assert rules.validate_documents(docs, function_services) == []


KAFKA_DEV, KAFKA_PRODUCTION = "infra/cluster/kafka", "infra/cluster/kafka-production"


def test_cluster_manifests_are_valid(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for directory in (KAFKA_DEV, KAFKA_PRODUCTION):
        docs = rendered[directory]
        assert {d["kind"] for d in docs} == {"Kafka", "KafkaNodePool"}, directory
        assert rules.validate_documents(docs) == [], directory


def test_base_files_are_plain_yaml_for_the_local_eventing_plane() -> None:
    """local/eventing reads base/*.yaml directly: complete resources, no kustomize patches."""
    for path in sorted(BASE.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in rules.load_yaml_documents(path):
            assert {"apiVersion", "kind", "metadata"} <= set(doc), f"{path.name}: incomplete resource"
            assert "$patch" not in json.dumps(doc), f"{path.name}: strategic-merge directive"
            assert doc["metadata"].get("name"), f"{path.name}: resource without a name"


# --------------------------------------------------------------------------- the fixed wiring


def test_topics_partitions_and_retention() -> None:
    # kafkatopics.yaml is the one table of topics (the local services create them from it too):
    # it declares exactly what the code produces to and the sources and sinks use.
    topics = {d["spec"]["topicName"]: d for d in rules.load_yaml_documents(BASE / "kafkatopics.yaml")}
    defaults = Settings()
    produced = {defaults.price_topic, defaults.metadata_topic, defaults.audit_topic, defaults.price_updated_topic}
    trades = TradesSettings()
    produced |= {trades.raw_topic, trades.normalized_topic, trades.enriched_topic, trades.alerts_topic}
    produced.add(StatsSettings().updates_topic)
    produced.add(StockSettings().quotes_topic)
    consumed = {t for d in rules.load_yaml_documents(BASE / "kafkasources.yaml") for t in d["spec"]["topics"]}
    # Written by the deadletter function once it stored a dead letter; read by the replay CLI.
    dead_letters = {
        defaults.price_dead_letter_topic,
        defaults.metadata_dead_letter_topic,
        defaults.audit_dead_letter_topic,
    }
    assert dead_letters == set(DEAD_LETTER_TOPICS)
    dead_letters |= {d["spec"]["topic"] for d in rules.load_yaml_documents(BASE / "kafkasinks.yaml")}
    assert set(topics) == produced | consumed | dead_letters
    for name in dead_letters:  # one partition: a replay reads dead letters back in order
        assert topics[name]["spec"]["partitions"] == 1
        assert topics[name]["spec"]["config"]["retention.ms"] == str(14 * 86400 * 1000)
    # The price request topic carries a job per route every 5 s: partitions to spread them over replicas.
    assert topics[defaults.price_topic]["spec"]["partitions"] >= 3
    assert topics[defaults.price_topic]["spec"]["config"]["retention.ms"] == str(3600 * 1000)
    for doc in topics.values():
        assert doc["metadata"]["labels"]["strimzi.io/cluster"] == "price-crawler"
    # The trade topics keep the original's retention (DESIGN.md §9) and spread users over partitions.
    day = 86400 * 1000
    retention = {trades.raw_topic: 7, trades.normalized_topic: 30, trades.enriched_topic: 90, trades.alerts_topic: 7}
    for name, days in retention.items():
        assert topics[name]["spec"]["config"]["retention.ms"] == str(days * day), name
        assert topics[name]["spec"]["partitions"] >= 3


def test_kafka_sources_wire_each_topic_to_its_function() -> None:
    sources = _by_kind(rules.load_yaml_documents(BASE / "kafkasources.yaml"), "KafkaSource")
    # The crawler's request sources dead-letter to the deadletter function directly (issue #22);
    # the KafkaSinks left are the trade functions' dead-letter sinks.
    sinks = _by_kind(rules.load_yaml_documents(BASE / "kafkasinks.yaml"), "KafkaSink")
    assert set(sources) == {
        "price-request-source",
        "metadata-request-source",
        "audit-request-source",
        "trade-normalizer-source",
        "trade-enricher-source",
        "trade-enricher-price-source",
        "trade-analyser-source",
    }
    assert set(sinks) == {"trade-normalizer-dead-letter", "trade-enricher-dead-letter", "trade-analyser-dead-letter"}
    for name in ("price", "metadata", "audit"):
        spec = sources[f"{name}-request-source"]["spec"]
        assert spec["topics"] == [f"price-crawler.{name}.request"]
        assert spec["consumerGroup"] == f"price-crawler-{name}"
        assert spec["sink"]["ref"] == {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": name}
        # The dead letter is kept in PostgreSQL by the deadletter function, whatever the broker does.
        dls = spec["delivery"]["deadLetterSink"]
        assert dls == {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "deadletter"}}
        # With spec.delivery present an unset retry means 0 retries (knowledge b.2): be explicit.
        assert {"retry", "backoffPolicy", "backoffDelay", "timeout"} <= set(spec["delivery"])
    assert sources["price-request-source"]["spec"]["initialOffset"] == "latest"
    assert sources["price-request-source"]["spec"]["ordering"] == "unordered"
    for name in ("metadata", "audit"):
        assert sources[f"{name}-request-source"]["spec"]["initialOffset"] == "earliest"
    # raw-trades → the trade normaliser: every trade, in order per partition (per user), never skipped.
    trades = sources["trade-normalizer-source"]["spec"]
    assert trades["topics"] == [TradesSettings().raw_topic]
    assert (trades["initialOffset"], trades["ordering"]) == ("earliest", "ordered")
    assert trades["sink"]["ref"]["name"] == "trade-normalizer"
    dls = trades["delivery"]["deadLetterSink"]["ref"]["name"]
    assert sinks[dls]["spec"]["topic"] == "trade-normalizer.dead-letter"
    # normalized-trades → the enricher → enriched-trades → the analyser, each ordered per user and
    # never skipped; the crawler's price announcements re-enrich waiting trades (KF-01).
    settings = TradesSettings()
    for source, topic, service in (
        ("trade-enricher-source", settings.normalized_topic, "trade-enricher"),
        ("trade-analyser-source", settings.enriched_topic, "trade-analyser"),
    ):
        spec = sources[source]["spec"]
        assert spec["topics"] == [topic]
        assert (spec["initialOffset"], spec["ordering"]) == ("earliest", "ordered")
        assert spec["sink"]["ref"]["name"] == service
        dls = spec["delivery"]["deadLetterSink"]["ref"]["name"]
        assert sinks[dls]["spec"]["topic"] == f"{service}.dead-letter"
    prices = sources["trade-enricher-price-source"]["spec"]
    assert prices["topics"] == [Settings().price_updated_topic]
    assert prices["sink"]["ref"]["name"] == "trade-enricher"
    assert prices["consumerGroup"] != sources["trade-enricher-source"]["spec"]["consumerGroup"]


def test_the_dead_letter_sink_answers_within_every_sources_timeout() -> None:
    """The deadletter function waits up to DEAD_LETTER_FORWARD_TIMEOUT_SECONDS for Kafka before it
    answers; a source whose per-attempt timeout were shorter would time out every dead-letter
    attempt while the broker is down, and drop the event after its retries."""
    from local.eventing.retry_policy import policy_from_delivery_spec

    sources = _by_kind(rules.load_yaml_documents(BASE / "kafkasources.yaml"), "KafkaSource")
    forward = Settings().dead_letter_forward_timeout_seconds
    for name, source in sources.items():
        timeout = policy_from_delivery_spec(source["spec"]["delivery"]).timeout_seconds
        assert timeout is not None and forward + 10 <= timeout, (name, timeout, forward)


OUTAGE_SECONDS = 60  # issue #22: a PostgreSQL or Kafka outage this long dead-letters no job
OUTAGE_MARGIN_SECONDS = 50  # restart time, consumers rejoining, a slow last attempt


def test_every_request_source_retries_through_a_minute_long_outage() -> None:
    """The sum of the backoff waits (Knative's arithmetic, knative-eventing.md b.4) outlasts a 60-s
    outage with a margin; the price source's first retry is quick (a tick is fresh for 10 s) and
    no wait is long, so retrying jobs end soon after the outage."""
    from local.eventing.retry_policy import policy_from_delivery_spec

    sources = _by_kind(rules.load_yaml_documents(BASE / "kafkasources.yaml"), "KafkaSource")
    windows = {}
    for name in ("price", "metadata", "audit"):
        policy = policy_from_delivery_spec(sources[f"{name}-request-source"]["spec"]["delivery"])
        waits = [policy.delay_before_retry(n) for n in range(1, policy.retry + 1)]
        windows[name] = sum(waits)
        assert windows[name] >= OUTAGE_SECONDS + OUTAGE_MARGIN_SECONDS, (name, waits)
        if name == "price":
            assert waits[0] <= 1 and max(waits) <= 15, waits


def test_every_event_type_we_emit_is_registered_with_its_schema() -> None:
    """One EventType per (type, consuming KafkaSource); its dataschema is the one the event carries."""
    from shared.crawler.contracts import EVENT_DATASCHEMAS
    from shared.stats import contracts as stats
    from shared.stocks import contracts as stocks
    from shared.trades import contracts as trades

    event_types = _by_kind(rules.load_yaml_documents(BASE / "eventtypes.yaml"), "EventType")
    registered: dict[str, set[str]] = {}
    for doc in event_types.values():
        attributes = {a["name"]: a for a in doc["spec"]["attributes"]}
        registered.setdefault(attributes["type"]["value"], set()).add(attributes["dataschema"]["value"])
        assert all(attributes[n]["required"] for n in ("specversion", "id", "type", "source", "dataschema"))
    emitted = {
        **EVENT_DATASCHEMAS,
        trades.RAW_TRADE_TYPE: trades.RAW_TRADE_SCHEMA,
        trades.TRADE_NORMALIZED_TYPE: trades.TRADE_SCHEMA,
        trades.TRADE_ENRICHED_TYPE: trades.ENRICHED_TRADE_SCHEMA,
        trades.BEHAVIOURAL_ALERT_TYPE: trades.BEHAVIOURAL_ALERT_SCHEMA,
        **stats.EVENT_DATASCHEMAS,
        stocks.QUOTE_VALIDATED: stocks.QUOTE_VALIDATED_SCHEMA,
    }
    assert registered == {event_type: {uri} for event_type, uri in emitted.items()}
    consumed_by = {d["metadata"]["name"]: d["spec"].get("reference", {}).get("name") for d in event_types.values()}
    assert consumed_by == {
        "price-crawler.job.requested.price": "price-request-source",
        "price-crawler.job.requested.metadata": "metadata-request-source",
        "price-crawler.metadata.detail.requested": "metadata-request-source",
        "price-crawler.trending.committed": "audit-request-source",
        # read by the order backend straight from its topic (and by trade-enricher-price-source)
        "price-crawler.price.updated": None,
        "trades.raw.received": "trade-normalizer-source",
        "trades.trade.normalized": "trade-enricher-source",
        "trades.trade.enriched": "trade-analyser-source",
        "trades.alert.raised": None,  # read by the WebSocket feed (from trade_feed) and clients
        # the stats and stock events are read by the trading platform straight from their topics
        "stats.chain-performance-updated": None,
        "stats.bridge-latency-updated": None,
        "stats.overview-updated": None,
        "stocks.quote.validated": None,
    }


def test_ping_sources_tick_the_scheduler_and_the_dead_letter_forward() -> None:
    pings = _by_kind(rules.load_yaml_documents(BASE / "pingsources.yaml"), "PingSource")
    expected = {
        "top100-price-tick": ("*/5 * * * * *", {"schedule": "top100-price"}, "scheduler"),
        "top100-metadata-tick": ("0 0 0 * * *", {"schedule": "top100-metadata"}, "scheduler"),
        "trending-tick": ("0 * * * * *", {"schedule": "trending"}, "scheduler"),
        "dead-letter-forward-tick": ("30 * * * * *", {"forward": "pending"}, "deadletter"),
        "chain-performance-tick": ("0 * * * * *", {"schedule": "chain-performance"}, "stats"),
        "bridge-latency-tick": ("0 */2 * * * *", {"schedule": "bridge-latency"}, "stats"),
        # 30 s after the minute: the chain and bridge ticks of that minute have recorded first.
        "stats-overview-tick": ("30 */5 * * * *", {"schedule": "overview"}, "stats"),
        "stock-quotes-tick": ("*/6 * * * * *", {"schedule": "stock-quotes"}, "stocks"),
        "stock-gold-tick": ("3 * * * * *", {"schedule": "stock-gold"}, "stocks"),
        "trade-sync-tick": ("7 * * * * *", {"schedule": "trade-sync"}, "trade-sync"),
    }
    found = {
        n: (d["spec"]["schedule"], json.loads(d["spec"]["data"]), d["spec"]["sink"]["ref"]["name"])
        for n, d in pings.items()
    }
    assert found == expected
    for doc in pings.values():
        assert doc["spec"]["timezone"] == "UTC"
        assert doc["spec"]["contentType"] == "application/json"
        assert doc["spec"]["sink"]["ref"]["apiVersion"] == "serving.knative.dev/v1"
        assert doc["spec"]["sink"]["ref"]["kind"] == "Service"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_names_one_kafka_everywhere(overlay: str, rendered: dict[str, Any]) -> None:
    docs = rendered[overlay]
    config = _by_kind(docs, "ConfigMap")["price-crawler-config"]["data"]
    servers = {s for d in docs if d["kind"] in ("KafkaSource", "KafkaSink") for s in d["spec"]["bootstrapServers"]}
    assert servers == {config["KAFKA_BOOTSTRAP_SERVERS"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_provides_what_the_functions_read(overlay: str, rendered: dict[str, Any], func_yamls: dict) -> None:
    """The ConfigMap and Secret func.yaml refers to exist (production: the Secret is created by hand)."""
    docs = rendered[overlay]
    defined = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for func in func_yamls.values():
        refs = rules.func_yaml_env_refs(func)
        assert refs["configMap"] and all(("ConfigMap", n) in defined for n in refs["configMap"])
        if overlay.endswith("k3d"):
            assert all(("Secret", n) in defined for n in refs["secret"])
        else:
            assert not any(d["kind"] == "Secret" for d in docs), "production credentials must not be committed"


def test_production_topics_are_replicated(rendered: dict[str, Any]) -> None:
    topics = _by_kind(rendered["infra/knative/overlays/production"], "KafkaTopic")
    assert set(topics) == set(_by_kind(rendered["infra/knative/base"], "KafkaTopic"))
    for topic in topics.values():
        assert topic["spec"]["replicas"] == 3
        assert topic["spec"]["config"]["min.insync.replicas"] == "2"


def test_production_kafka_has_three_brokers_and_writes_on_two(rendered: dict[str, Any]) -> None:
    """RF 3 / min ISR 2 as broker defaults and for the internal topics: one broker lost loses no
    acks=all write; two lost make producers fail instead of writing one copy."""
    docs = rendered[KAFKA_PRODUCTION]
    (pool,) = _by_kind(docs, "KafkaNodePool").values()
    assert pool["spec"]["replicas"] == 3
    assert {"controller", "broker"} <= set(pool["spec"]["roles"])  # the three are the controller quorum too
    config = _by_kind(docs, "Kafka")["price-crawler"]["spec"]["kafka"]["config"]
    for key in (
        "default.replication.factor",
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
    ):
        assert config[key] == 3, key
    for key in ("min.insync.replicas", "transaction.state.log.min.isr"):
        assert config[key] == 2, key
    assert config["auto.create.topics.enable"] is False
    # The dev cluster stays one node, and production differs from it in nothing else.
    dev = rendered[KAFKA_DEV]
    assert _by_kind(dev, "KafkaNodePool")["dual-role"]["spec"]["replicas"] == 1
    dev_kafka = copy.deepcopy(_by_kind(dev, "Kafka")["price-crawler"])
    dev_kafka["spec"]["kafka"]["config"].update({k: config[k] for k in config})
    assert dev_kafka == _by_kind(docs, "Kafka")["price-crawler"]


def test_plain_services_match_func_yaml(rendered: dict[str, Any], func_yamls: dict[str, dict[str, Any]]) -> None:
    """infra/knative/services deploys what kn func would deploy from func.yaml."""
    services = _by_kind(rendered["infra/knative/services"], "Service")
    # The ASGI functions (trade_feed: WebSockets) have no func.yaml: func-python serves HTTP only.
    assert set(services) == {func["name"] for func in func_yamls.values()} | set(ASGI_SERVICES)
    for func in func_yamls.values():
        service, options = services[func["name"]], func["deploy"]["options"]
        assert service["metadata"]["namespace"] == func["namespace"]
        annotations = service["spec"]["template"]["metadata"]["annotations"]
        scale = options["scale"]
        assert annotations["autoscaling.knative.dev/min-scale"] == str(scale["min"])
        assert annotations["autoscaling.knative.dev/max-scale"] == str(scale["max"])
        assert annotations["autoscaling.knative.dev/metric"] == scale["metric"]
        assert annotations["autoscaling.knative.dev/target"] == str(scale["target"])
        spec = service["spec"]["template"]["spec"]
        assert spec["containerConcurrency"] == options["resources"]["limits"]["concurrency"]
        (container,) = spec["containers"]
        limits = {k: v for k, v in options["resources"]["limits"].items() if k != "concurrency"}
        assert container["resources"] == {"requests": options["resources"]["requests"], "limits": limits}
        assert container["readinessProbe"]["httpGet"]["path"] == func["deploy"]["healthEndpoints"]["readiness"]
        assert container["livenessProbe"]["httpGet"]["path"] == func["deploy"]["healthEndpoints"]["liveness"]
        refs = rules.func_yaml_env_refs(func)
        used = set(rules.iter_refs([service]))
        assert {(k, ns, n) for k, ns, n in used} == {
            *(("Secret", func["namespace"], s) for s in refs["secret"]),
            *(("ConfigMap", func["namespace"], c) for c in refs["configMap"]),
        }
        labels = {item["key"]: item["value"] for item in func["deploy"]["labels"]}
        assert labels.items() <= service["metadata"]["labels"].items()


VISIBILITY = "networking.knative.dev/visibility"
# Plain Services without a func.yaml (scripts/deploy.sh ASGI_FUNCTIONS): the Service name, its function.
ASGI_SERVICES = {"trade-feed": "trade_feed"}


def test_the_asgi_functions_are_deployed_from_their_image_with_a_long_timeout() -> None:
    """trade_feed: the function-asgi image, reachable from outside (browsers), authenticated, long requests."""
    services = _by_kind(
        rules.load_yaml_documents(rules.ROOT / "infra" / "knative" / "services" / "services.yaml"), "Service"
    )
    deploy = (rules.ROOT / "scripts" / "deploy.sh").read_text()
    assert re.search(r"^ASGI_FUNCTIONS=\(([^)]*)\)$", deploy, re.MULTILINE).group(1).split() == list(  # type: ignore[union-attr]
        ASGI_SERVICES.values()
    )
    for name, function in ASGI_SERVICES.items():
        service = services[name]
        assert service["metadata"]["labels"]["app.kubernetes.io/name"] == function
        assert VISIBILITY not in service["metadata"]["labels"]
        spec = service["spec"]["template"]["spec"]
        assert spec["timeoutSeconds"] == 600 and spec["containerConcurrency"] == 0
        (container,) = spec["containers"]
        assert container["image"] == f"price-crawler/{function}"
        assert {e["name"] for e in container["env"]} == {"DATABASE_URL", "TRADES_TOKEN_KEY"}
        assert (rules.ROOT / "functions" / function / "main.py").is_file()
        assert not (rules.ROOT / "functions" / function / "func.yaml").exists()


def test_only_the_read_api_is_reachable_from_outside(func_yamls: dict[str, dict[str, Any]]) -> None:
    """Event-driven functions are cluster-local; quotes (the trading UI's read API) and trades (traders'
    own trades, every route authenticated) are reached from outside the cluster."""
    services = _by_kind(
        rules.load_yaml_documents(rules.ROOT / "infra" / "knative" / "services" / "services.yaml"), "Service"
    )
    assert "quotes" in func_yamls and "trades" in func_yamls
    for name, func in func_yamls.items():
        expected = None if name in ("quotes", "trades") else "cluster-local"
        labels = {item["key"]: item["value"] for item in func["deploy"]["labels"]}
        assert labels.get(VISIBILITY) == expected, f"func.yaml {name}"
        assert services[func["name"]]["metadata"]["labels"].get(VISIBILITY) == expected, f"services.yaml {name}"


# --------------------------------------------------------------------------- the checks can fail


def _base_docs() -> list[dict[str, Any]]:
    return [
        d for p in sorted(BASE.glob("*.yaml")) if p.name != "kustomization.yaml" for d in rules.load_yaml_documents(p)
    ]


def _find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def _service_doc() -> dict[str, Any]:
    return copy.deepcopy(rules.load_yaml_documents(rules.ROOT / "infra" / "knative" / "services" / "services.yaml")[0])


BROKEN_BASE = [
    ("KafkaSource", "price-request-source", lambda d: d["spec"].update(ordering="random"), "spec.ordering"),
    ("KafkaSource", "price-request-source", lambda d: d["spec"].update(initialOffset="newest"), "initialOffset"),
    ("KafkaSource", "price-request-source", lambda d: d["spec"]["delivery"].update(backoffDelay="500ms"), "ISO-8601"),
    ("KafkaSource", "price-request-source", lambda d: d["spec"]["delivery"].update(timeout="PT"), "ISO-8601"),
    ("KafkaSource", "price-request-source", lambda d: d["spec"]["delivery"].update(retry=-1), "retry"),
    ("KafkaSource", "price-request-source", lambda d: d["spec"].update(bogus=1), "schema"),
    (
        "KafkaSource",
        "price-request-source",
        lambda d: d["metadata"]["annotations"].update({"autoscaling.knative.dev/maxScale": "6"}),
        "mixed KEDA",
    ),
    (
        "KafkaSource",
        "metadata-request-source",
        lambda d: d["metadata"].update(annotations={"keda.autoscaling.knative.dev/kafkaLagThreshold": "5"}),
        "legacy",
    ),
    (
        "KafkaSource",
        "price-request-source",
        lambda d: d["metadata"]["annotations"].update({"autoscaling.eventing.knative.dev/max-scale": "12"}),
        "exceeds the 6 partitions",
    ),
    ("KafkaSource", "audit-request-source", lambda d: d["spec"]["sink"]["ref"].update(name="auditor"), "not defined"),
    (
        "KafkaSource",
        "audit-request-source",
        lambda d: d["spec"]["delivery"]["deadLetterSink"]["ref"].update(apiVersion="eventing.knative.dev/v1"),
        "not defined",
    ),
    ("KafkaSource", "audit-request-source", lambda d: d["spec"].update(topics=["audit"]), "not declared"),
    ("KafkaTopic", "price-crawler-price-request", lambda d: d.update(apiVersion="kafka.strimzi.io/v1beta2"), "Strimzi"),
    ("KafkaTopic", "price-crawler-price-request", lambda d: d["metadata"].update(name="price_request"), "DNS-1123"),
    ("KafkaTopic", "price-crawler-price-request", lambda d: d["spec"].update(partitions=0), "schema"),
    ("PingSource", "top100-price-tick", lambda d: d["spec"].update(schedule="@every 5s"), "@every"),
    ("PingSource", "top100-price-tick", lambda d: d["spec"].update(schedule="*/5 * * * * * *"), "fields"),
    ("PingSource", "top100-price-tick", lambda d: d["spec"].update(schedule="*/5 * * * 99"), "does not parse"),
    ("PingSource", "top100-price-tick", lambda d: d["spec"].update(timezone="Mars/Olympus"), "IANA"),
    ("PingSource", "top100-price-tick", lambda d: d["spec"].update(data="[1, 2]"), "JSON object"),
    ("PingSource", "trending-tick", lambda d: d["spec"].update(dataBase64="e30="), "mutually exclusive"),
    (
        "EventType",
        "price-crawler.price.updated",
        lambda d: d["spec"].update(attributes=[a for a in d["spec"]["attributes"] if a["name"] != "id"]),
        "missing field(s): id",
    ),
    ("EventType", "price-crawler.price.updated", lambda d: d["spec"]["attributes"][0].update(nme="x"), "schema"),
    (
        "EventType",
        "price-crawler.price.updated",
        lambda d: d.update(apiVersion="eventing.knative.dev/v1beta2"),
        "v1beta3",
    ),
    (
        "EventType",
        "price-crawler.trending.committed",
        lambda d: d["spec"]["reference"].update(name="audit-source"),
        "not defined",
    ),
]


@pytest.mark.parametrize("kind,name,breakage,expected", BROKEN_BASE)
def test_each_rule_rejects_what_the_cluster_would(
    kind: str, name: str, breakage, expected: str, function_services: set
) -> None:
    docs = _base_docs()
    assert rules.validate_documents(docs, function_services) == []
    breakage(_find(docs, kind, name))
    errors = rules.validate_documents(docs, function_services)
    assert any(expected in e for e in errors), errors


BROKEN_SERVICE = [
    (
        lambda d: d["metadata"].setdefault("annotations", {}).update({"autoscaling.knative.dev/min-scale": "1"}),
        "spec.template.metadata.annotations",
    ),
    (
        lambda d: d["spec"]["template"]["metadata"]["annotations"].update({"autoscaling.knative.dev/max-scale": "x"}),
        "not a number",
    ),
    (
        lambda d: d["spec"]["template"]["metadata"]["annotations"].update({"autoscaling.knative.dev/min-scale": "9"}),
        "exceeds",
    ),
    (
        lambda d: d["spec"]["template"]["metadata"]["annotations"].update({"autoscaling.knative.dev/window": "2s"}),
        "window",
    ),
    (lambda d: d["spec"]["template"]["spec"]["containers"][0].update(bogus=True), "schema"),
    (
        lambda d: d["spec"]["template"]["spec"]["containers"][0]["ports"].append({"containerPort": 9090}),
        "single container port",
    ),
    (lambda d: d["metadata"].update(name="Price"), "RFC 1035"),
]


@pytest.mark.parametrize("breakage,expected", BROKEN_SERVICE)
def test_serving_rules_reject_what_the_webhook_would(breakage, expected: str) -> None:
    doc = _service_doc()
    assert rules.validate_documents([doc]) == []
    breakage(doc)
    errors = rules.validate_documents([doc])
    assert any(expected in e for e in errors), errors


def test_unknown_api_version_is_not_served() -> None:
    doc = {
        "apiVersion": "sources.knative.dev/v1alpha1",
        "kind": "PingSource",
        "metadata": {"name": "p", "namespace": "n"},
    }
    (error,) = rules.schema_errors(doc)
    assert "not served" in error and "sources.knative.dev/v1" in error


def test_strict_schema_accepts_int_or_string_ports() -> None:
    doc = _service_doc()
    doc["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = "http1"
    assert rules.schema_errors(doc) == []
    doc["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = 8080
    assert rules.schema_errors(doc) == []


CRD_FILES = sorted(set(rules.CRD_SCHEMAS.values()))


def test_every_mapped_schema_is_in_the_repository() -> None:
    """The schemas travel with the clone: each mapped extract and func.yaml's schema are there."""
    missing = [f for f in CRD_FILES if not (rules.SCHEMAS / "openapi" / f).is_file()]
    assert not missing, f"schemas missing from {rules.SCHEMAS}/openapi: {missing}"
    assert Path(rules.FUNC_YAML_SCHEMA).is_file()


def test_local_eventing_plane_reads_the_base() -> None:
    """The same files drive the cluster and `make up` (local/eventing)."""
    manifests = pytest.importorskip("local.eventing.manifests", reason="local eventing plane not present")
    loaded = manifests.load_manifests(BASE)
    assert (len(loaded.kafka_sources), len(loaded.ping_sources), len(loaded.kafka_sinks)) == (7, 10, 3)
    # Each source's dead-letter sink resolves locally to the deadletter function's URL, as its sink does.
    destinations = pytest.importorskip("local.eventing.destinations")
    topology = destinations.resolve_topology(
        loaded,
        {
            "DEADLETTER_FUNCTION_URL": "http://127.0.0.1:9",
            "STATS_FUNCTION_URL": "http://127.0.0.1:10",
            "STOCKS_FUNCTION_URL": "http://127.0.0.1:11",
            "TRADE_SYNC_FUNCTION_URL": "http://127.0.0.1:12",
        },
    )
    for source in topology.kafka_sources:
        if source.manifest.name.startswith("trade-"):
            continue  # its dead-letter sink is a KafkaSink
        assert source.dead_letter_sink == destinations.HttpEndpoint(url="http://127.0.0.1:9"), source.manifest.name
