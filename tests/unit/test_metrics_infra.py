"""infra/observability: alert rules, Prometheus configuration and the Grafana dashboard.

promtool checks the rules, unit-tests the alerts and parses every dashboard query; every
metric they name must be one the system exports (shared.observability.catalogue.CATALOGUE) or one of the
few cluster metrics named below, so a renamed metric cannot silently empty a panel.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from shared.observability.catalogue import CATALOGUE

ROOT = Path(__file__).resolve().parents[2]
OBSERVABILITY = ROOT / "infra" / "observability"
PROMETHEUS = OBSERVABILITY / "prometheus"
DASHBOARD = OBSERVABILITY / "grafana" / "price-crawler.json"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian package `prometheus`; `make setup` installs it)"
)
# Cluster metrics of Strimzi's Kafka Exporter, used next to ours.
EXTERNAL = {"kafka_consumergroup_lag", "kafka_topic_partition_current_offset"}
METRIC = re.compile(r"\b((?:crawler|kafka)_[a-z0-9_]+)\b")


def promtool(*args: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess:
    assert PROMTOOL is not None  # the tests that call it skip without it
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def exported_families() -> set[str]:
    return {spec.exported_name for spec in CATALOGUE.values()}


def names_in(expression: str) -> set[str]:
    found = set()
    for name in METRIC.findall(expression):
        for suffix in ("_bucket", "_count", "_sum"):
            if name.endswith(suffix) and name.removesuffix(suffix) in exported_families():
                name = name.removesuffix(suffix)
        found.add(name)
    return found


def alert_rules() -> list[dict]:
    document = yaml.safe_load((PROMETHEUS / "alerts.yaml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


@needs_promtool
def test_alert_rules_pass_promtool_check_rules():
    result = promtool("check", "rules", "alerts.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@needs_promtool
def test_alerts_fire_as_their_unit_tests_expect():
    result = promtool("test", "rules", "alerts.test.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_the_local_prometheus_configuration_passes_promtool_check_config():
    result = promtool("check", "config", "prometheus.local.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_issue_s_alerts_are_there():
    names = {rule["alert"] for rule in alert_rules()}
    assert {
        "PriceCrawlerTop100PricesStale",
        "PriceCrawlerDeadLetters",
        "PriceCrawlerCircuitBreakerOpen",
        "PriceCrawlerConsumerLagGrowing",
    } <= names
    for rule in alert_rules():
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_alerts_use_only_exported_metrics():
    for rule in alert_rules():
        unknown = names_in(rule["expr"]) - exported_families() - EXTERNAL
        assert not unknown, f"{rule['alert']} uses unknown metrics {unknown}"


def test_kubernetes_scrape_configs_select_the_function_pods():
    jobs = yaml.safe_load((PROMETHEUS / "scrape-configs.kubernetes.yaml").read_text())
    functions = next(job for job in jobs if job["job_name"] == "price-crawler-functions")
    assert functions["metrics_path"] == "/metrics"
    keeps = {tuple(r["source_labels"]): r["regex"] for r in functions["relabel_configs"] if r.get("action") == "keep"}
    assert keeps[("__meta_kubernetes_pod_container_port_name",)] == "user-port"


def test_dashboard_panels_use_only_exported_metrics_and_cover_the_issue():
    queries = dashboard_queries()
    used = set().union(*(names_in(q) for q in queries))
    assert not used - exported_families() - EXTERNAL, used - exported_families() - EXTERNAL
    wanted = {
        "crawler_jobs_received_total",
        "crawler_jobs_completed_total",
        "crawler_jobs_failed_total",
        "crawler_jobs_rejected_total",
        "crawler_job_duration_seconds",
        "crawler_upstream_requests_total",
        "crawler_upstream_request_duration_seconds",
        "crawler_upstream_rate_limit_wait_seconds_total",
        "crawler_upstream_breaker_state",
        "crawler_upstream_used_weight",
        "crawler_db_rows_upserted_total",
        "crawler_price_oldest_age_seconds",
        "crawler_scheduler_ticks_total",
        "crawler_jobs_skipped_total",
        "crawler_eventing_delivery_attempts_total",
        "crawler_eventing_delivery_retries_total",
        "crawler_eventing_dead_letters_total",
        "crawler_eventing_consumer_lag",
    }
    assert not wanted - used, wanted - used


def test_dashboard_is_importable_grafana_json():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "price-crawler" and dashboard["schemaVersion"] >= 36
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["datasource"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}"


@needs_promtool
def test_every_dashboard_query_is_valid_promql(tmp_path):
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": query} for i, query in enumerate(dashboard_queries())
                ],
            }
        ]
    }
    (tmp_path / "dashboard-queries.yaml").write_text(yaml.safe_dump(rules))
    result = promtool("check", "rules", "dashboard-queries.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


# Catalogued metrics no panel shows, each with the reason a person need not watch it.
NOT_ON_A_PANEL: dict[str, str] = {}


def test_every_catalogued_metric_is_on_a_panel_or_exempted_with_a_reason():
    on_panels = set().union(*(names_in(q) for q in dashboard_queries()))
    missing = exported_families() - on_panels - set(NOT_ON_A_PANEL)
    assert not missing, (
        f"on no Grafana panel (add one, or exempt it in NOT_ON_A_PANEL with a reason): {sorted(missing)}"
    )
    assert all(reason.strip() for reason in NOT_ON_A_PANEL.values())
    assert not set(NOT_ON_A_PANEL) & on_panels, "exempted but on a panel: drop the exemption"


def test_the_public_quotes_api_has_error_and_latency_alerts():
    rules = {rule["alert"]: rule for rule in alert_rules()}
    assert "crawler_quotes_requests_total" in rules["PriceCrawlerQuotesErrors"]["expr"]
    assert 'status=~"5.."' in rules["PriceCrawlerQuotesErrors"]["expr"]
    assert "crawler_quotes_request_duration_seconds_bucket" in rules["PriceCrawlerQuotesSlow"]["expr"]
