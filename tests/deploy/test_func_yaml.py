"""functions/*/func.yaml: valid for `kn func deploy` 1.23 (published schema plus the CLI's own rules)."""

from __future__ import annotations

import copy
from typing import Any

import manifest_rules as rules
import pytest

FUNCTIONS = (
    "price",
    "metadata",
    "audit",
    "deadletter",
    "scheduler",
    "stats",
    "stocks",
    "quotes",
    "trades",
    "trade_normalizer",
    "trade_enricher",
    "trade_analyser",
    "trade_sync",
)
# Secrets a function reads beside the database's: the trades API's bearer-token key.
EXTRA_SECRETS = {
    "trades": {"trades-auth"},
    "stocks": {"finnhub"},
    "trade_sync": {"trades-exchange-credentials"},
}


def test_every_function_has_a_func_yaml(func_yamls: dict[str, dict[str, Any]]) -> None:
    assert set(func_yamls) == set(FUNCTIONS)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_func_yaml_is_valid(name: str, func_yamls: dict[str, dict[str, Any]]) -> None:
    assert rules.func_yaml_errors(func_yamls[name], directory_name=name) == []


@pytest.mark.parametrize("name", FUNCTIONS)
def test_func_yaml_reads_settings_from_the_documented_objects(name: str, func_yamls: dict[str, dict[str, Any]]) -> None:
    func = func_yamls[name]
    assert rules.func_yaml_env_refs(func) == {
        "secret": {"price-crawler-postgres", *EXTRA_SECRETS.get(name, ())},
        "configMap": {"price-crawler-config"},
    }
    envs = {e.get("name"): e["value"] for e in func["run"]["envs"]}
    assert envs["DATABASE_URL"] == "{{ secret:price-crawler-postgres:DATABASE_URL }}"
    assert func["namespace"] == "price-crawler"
    assert func["deploy"]["healthEndpoints"] == {"liveness": "/health/liveness", "readiness": "/health/readiness"}


BROKEN = [
    (lambda f: f.pop("created"), "'created' is a required property"),
    (lambda f: f.update(specVersion="0.35.0"), "specVersion must be 0.36.0"),
    (lambda f: f.update(created="yesterday"), "RFC 3339"),
    (lambda f: f["build"].update(builder="host"), "host"),
    (lambda f: f["deploy"].update(annotations={"autoscaling.knative.dev/min-scale": "1"}), "deploy.options.scale"),
    (lambda f: f["deploy"]["options"]["scale"].update(metric="cpu"), "schema"),
    (lambda f: f["deploy"]["options"]["scale"].update(min=5), "min exceeds max"),
    (lambda f: f.update(invoke="cloudevent"), "invoke must be http"),
    (lambda f: f.update(name="Price"), "schema"),
    (lambda f: f["run"]["envs"].append({"name": "BAD NAME", "value": "x"}), "schema"),
    (lambda f: f.update(unknown=True), "schema"),
]


@pytest.mark.parametrize("breakage,expected", BROKEN)
def test_func_yaml_rules_reject_what_kn_func_would(
    breakage, expected: str, func_yamls: dict[str, dict[str, Any]]
) -> None:
    func = copy.deepcopy(func_yamls["price"])
    breakage(func)
    errors = rules.func_yaml_errors(func, directory_name="price")
    assert any(expected in e for e in errors), errors


def test_yaml_timestamps_are_read_as_the_cli_writes_them(func_yamls: dict[str, dict[str, Any]]) -> None:
    # An unquoted `created:` is a YAML timestamp; the schema wants the RFC 3339 string.
    assert isinstance(func_yamls["price"]["created"], str)
    assert func_yamls["price"]["created"].endswith("Z")
