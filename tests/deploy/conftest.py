"""Shared fixtures of the deployment checks (no cluster needed; kubectl renders kustomizations)."""

from __future__ import annotations

from typing import Any

import manifest_rules as rules
import pytest


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """Every kustomization under infra/, rendered once: {relative dir: documents}."""
    if not rules.kubectl():
        pytest.skip("kubectl not installed (Debian package kubernetes-client; make setup installs it)")
    return {str(d.relative_to(rules.ROOT)): rules.render(d) for d in rules.kustomization_dirs()}


@pytest.fixture(scope="session")
def func_yamls() -> dict[str, dict[str, Any]]:
    """functions/<name>/func.yaml by function name."""
    return {p.parent.name: rules.load_func_yaml(p) for p in rules.func_yaml_paths()}


@pytest.fixture(scope="session")
def function_services(func_yamls: dict[str, dict[str, Any]]) -> set[tuple[str, str]]:
    """(namespace, name) of the Knative Services kn func creates."""
    return {(f["namespace"], f["name"]) for f in func_yamls.values()}
