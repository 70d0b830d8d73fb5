"""infra/observability on a cluster: what kube-prometheus-stack scrapes, alerts on and shows.

The rendered kustomization passes the PodMonitor/PrometheusRule CRD schemas of
prometheus-operator v0.93.0 in test_deploy_manifests (CRD_SCHEMAS). Here: the monitors
select what the functions and Strimzi really label, the deployed rules are the
promtool-checked ones, Grafana's sidecar finds the dashboard, and the Helm values say
only what the pinned chart understands.
"""

from __future__ import annotations

import importlib.util
import json
import re
from typing import Any

import manifest_rules as rules
import pytest
import yaml

OBSERVABILITY = "infra/observability"
ALERTS = rules.ROOT / "infra" / "observability" / "prometheus" / "alerts.yaml"
DASHBOARD = rules.ROOT / "infra" / "observability" / "grafana" / "price-crawler.json"
VALUES = rules.ROOT / "infra" / "cluster" / "monitoring-values.yaml"
CHART_VALUES = rules.ROOT / "tests" / "fixtures" / "helm" / "kube-prometheus-stack-88.3.0-values.yaml"
KAFKA = rules.ROOT / "infra" / "cluster" / "kafka" / "kafka.yaml"
TOPICS = rules.ROOT / "infra" / "knative" / "base" / "kafkatopics.yaml"
SOURCES = rules.ROOT / "infra" / "knative" / "base" / "kafkasources.yaml"


def _one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


@pytest.fixture(scope="module")
def monitoring(rendered: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return rendered[OBSERVABILITY]


def test_the_monitoring_set_is_rendered_and_valid(monitoring: list[dict[str, Any]]) -> None:
    assert {(d["kind"], d["metadata"]["name"]) for d in monitoring} == {
        ("PodMonitor", "price-crawler-functions"),
        ("PodMonitor", "price-crawler-kafka-exporter"),
        ("PrometheusRule", "price-crawler"),
        ("ConfigMap", "price-crawler-dashboard"),
    }
    assert rules.validate_documents(monitoring) == []


def test_the_function_pod_monitor_selects_what_kn_func_labels(
    monitoring: list[dict[str, Any]], func_yamls: dict
) -> None:
    monitor = _one(monitoring, "PodMonitor", "price-crawler-functions")["spec"]
    for name, func in func_yamls.items():
        labels = {label["key"]: label["value"] for label in (func.get("deploy") or {}).get("labels") or []}
        assert monitor["selector"]["matchLabels"].items() <= labels.items(), f"{name}'s pods are not selected"
        assert func["namespace"] in monitor["namespaceSelector"]["matchNames"]
    (endpoint,) = monitor["podMetricsEndpoints"]
    # Knative names the user container's port user-port; /metrics is FunctionApp's route.
    assert (endpoint["port"], endpoint["path"]) == ("user-port", "/metrics")


def test_the_kafka_exporter_is_enabled_and_scraped_for_our_topics_and_groups(monitoring: list[dict[str, Any]]) -> None:
    kafka = next(d for d in rules.load_yaml_documents(KAFKA) if d["kind"] == "Kafka")
    exporter = kafka["spec"]["kafkaExporter"]
    topics = [d["spec"]["topicName"] for d in rules.load_yaml_documents(TOPICS)]
    groups = [d["spec"]["consumerGroup"] for d in rules.load_yaml_documents(SOURCES) if d["kind"] == "KafkaSource"]
    assert topics and groups
    # The exporter matches whole names (Go regexp, anchored): every topic and group we alert on.
    assert all(re.fullmatch(exporter["topicRegex"], t) for t in topics), (exporter["topicRegex"], topics)
    assert all(re.fullmatch(exporter["groupRegex"], g) for g in groups), (exporter["groupRegex"], groups)
    assert not re.fullmatch(exporter["topicRegex"], "__consumer_offsets")
    monitor = _one(monitoring, "PodMonitor", "price-crawler-kafka-exporter")["spec"]
    assert monitor["namespaceSelector"]["matchNames"] == [kafka["metadata"]["namespace"]]
    # Strimzi names the exporter's pod <cluster>-kafka-exporter and its metrics port tcp-prometheus.
    assert monitor["selector"]["matchLabels"] == {"strimzi.io/name": f"{kafka['metadata']['name']}-kafka-exporter"}
    assert [e["port"] for e in monitor["podMetricsEndpoints"]] == ["tcp-prometheus"]


def test_the_deployed_rules_are_the_promtool_checked_ones(monitoring: list[dict[str, Any]]) -> None:
    rule = _one(monitoring, "PrometheusRule", "price-crawler")
    assert rule["spec"]["groups"] == yaml.safe_load(ALERTS.read_text())["groups"]
    spec = importlib.util.spec_from_file_location(
        "render_prometheusrule", rules.ROOT / "scripts" / "render_prometheusrule.py"
    )
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    committed = (rules.ROOT / "infra" / "observability" / "kubernetes" / "prometheusrule.yaml").read_text()
    assert committed == module.render(ALERTS.read_text()), "stale: run python3 scripts/render_prometheusrule.py"


def test_grafana_s_sidecar_provisions_the_dashboard(monitoring: list[dict[str, Any]]) -> None:
    config_map = _one(monitoring, "ConfigMap", "price-crawler-dashboard")
    sidecar = yaml.safe_load(VALUES.read_text())["grafana"]["sidecar"]["dashboards"]
    assert sidecar["enabled"] and sidecar["searchNamespace"] == "ALL"
    assert config_map["metadata"]["labels"][sidecar["label"]] == sidecar["labelValue"]
    assert json.loads(config_map["data"]["price-crawler.json"]) == json.loads(DASHBOARD.read_text())
    # `kubectl apply -k` (client-side) copies the object into its last-applied annotation, and a
    # resource's annotations may total 256 KiB: beyond that the apply fails (use --server-side).
    assert len(json.dumps(config_map)) < 256 * 1024 * 0.8


def test_prometheus_selects_our_monitors_and_rules() -> None:
    spec = yaml.safe_load(VALUES.read_text())["prometheus"]["prometheusSpec"]
    # Without these the chart's Prometheus selects only objects with its release label.
    for selector in ("podMonitorSelectorNilUsesHelmValues", "ruleSelectorNilUsesHelmValues"):
        assert spec[selector] is False


def _paths(values: Any, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    if not isinstance(values, dict) or not values:
        return {prefix}
    return set().union(*(_paths(v, (*prefix, k)) for k, v in values.items()))


def test_every_helm_value_we_set_is_one_the_pinned_chart_knows() -> None:
    ours, chart = yaml.safe_load(VALUES.read_text()), yaml.safe_load(CHART_VALUES.read_text())
    unknown = []
    for path in _paths(ours):
        node = chart
        for depth, key in enumerate(path):
            if not isinstance(node, dict) or key not in node:
                # Below an empty map of the chart (resources: {}) any key is the user's.
                if node != {}:
                    unknown.append(".".join(path[: depth + 1]))
                break
            node = node[key]
    assert not unknown, f"keys kube-prometheus-stack 88.3.0 ignores: {unknown}"
    pins = dict(
        re.findall(r'^([A-Z_]+_VERSION)="([^"]+)"', (rules.ROOT / "scripts" / "cluster.sh").read_text(), re.MULTILINE)
    )
    assert pins["KUBE_PROMETHEUS_STACK_VERSION"] in CHART_VALUES.name
