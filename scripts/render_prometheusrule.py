"""Write infra/observability/kubernetes/prometheusrule.yaml from the promtool-checked alerts.yaml.

The alert rules live once, in infra/observability/prometheus/alerts.yaml, where the suite
checks and unit-tests them with promtool. On a cluster the Prometheus Operator reads them
from a PrometheusRule, whose `spec.groups` is that file's `groups`; this renders it, and
tests/deploy/test_observability_manifests.py fails when the committed copy differs.

    python3 scripts/render_prometheusrule.py          # rewrite the PrometheusRule
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
ALERTS = ROOT / "infra" / "observability" / "prometheus" / "alerts.yaml"
PROMETHEUS_RULE = ROOT / "infra" / "observability" / "kubernetes" / "prometheusrule.yaml"
HEADER = """\
# GENERATED from infra/observability/prometheus/alerts.yaml by scripts/render_prometheusrule.py:
# edit alerts.yaml (and alerts.test.yaml), then run the script. Applied by scripts/cluster.sh
# (kubectl apply -k infra/observability); the Prometheus of kube-prometheus-stack loads it.
"""


def render(alerts_yaml: str) -> str:
    """The PrometheusRule manifest holding the rule groups of an alerts file."""
    groups = yaml.safe_load(alerts_yaml)["groups"]
    rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "price-crawler",
            "namespace": "monitoring",
            "labels": {"app.kubernetes.io/part-of": "price-crawler", "app.kubernetes.io/component": "alerts"},
        },
        "spec": {"groups": groups},
    }
    return HEADER + yaml.safe_dump(rule, sort_keys=False, width=120, allow_unicode=True)


def main() -> int:
    """Rewrite the PrometheusRule from alerts.yaml."""
    PROMETHEUS_RULE.write_text(render(ALERTS.read_text()))
    print(f"wrote {PROMETHEUS_RULE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
