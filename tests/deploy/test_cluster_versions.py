"""The k3s image of scripts/cluster.sh runs a Kubernetes every pinned component supports.

Ranges and where each is documented: infra/cluster/versions.yaml. Knative 1.23's controllers
exit at start on a Kubernetes below 1.34 (knative.dev/pkg version.CheckMinimumVersion), so a
pin outside a range is a broken `make cluster`, found here instead of on a laptop.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from manifest_rules import ROOT

CLUSTER_SCRIPT = ROOT / "scripts" / "cluster.sh"
VERSIONS = ROOT / "infra" / "cluster" / "versions.yaml"
# NAME="value" or NAME="${NAME:-value}" (an overridable default), at the start of a line.
PIN = re.compile(r'^([A-Z][A-Z0-9_]*)="(?:\$\{\1:-)?([^"}]+)\}?"', re.MULTILINE)
K3S_TAG = re.compile(r"^rancher/k3s:v(\d+)\.(\d+)\.(\d+)-k3s\d+$")


def script_pins(path: Path) -> dict[str, str]:
    """Every NAME="value" assignment at the top level of a shell script, defaults resolved."""
    return dict(PIN.findall(path.read_text()))


def minor(version: str) -> tuple[int, int]:
    """'1.34' -> (1, 34)."""
    major, minor_part = version.split(".")[:2]
    return int(major), int(minor_part)


def kubernetes_of(k3s_image: str) -> tuple[int, int]:
    """The Kubernetes minor a rancher/k3s image runs."""
    match = K3S_TAG.match(k3s_image)
    assert match, f"K3S_IMAGE {k3s_image!r} is not rancher/k3s:vX.Y.Z-k3sN"
    return int(match.group(1)), int(match.group(2))


def range_problems(pins: dict[str, str], versions: dict) -> list[str]:
    """Why the pinned k3s image does not suit every pinned component (empty: it does)."""
    kubernetes = kubernetes_of(pins[versions["kubernetes"]["pin"]])
    problems = []
    for name, component in versions["components"].items():
        pinned = pins.get(component["pin"])
        if pinned != component["release"]:
            problems.append(
                f"{name}: cluster.sh pins {component['pin']}={pinned!r} but versions.yaml documents "
                f"{component['release']!r}; re-read its supported Kubernetes range ({component['source'][:60]}...)"
            )
        low = minor(component["min"])
        high = minor(component["max"]) if component.get("max") else None
        if kubernetes < low or (high is not None and kubernetes > high):
            problems.append(
                f"{name} {component['release']} supports Kubernetes {component['min']}..{component.get('max') or ''}, "
                f"K3S_IMAGE runs {kubernetes[0]}.{kubernetes[1]}"
            )
    return problems


@pytest.fixture(scope="module")
def versions() -> dict:
    return yaml.safe_load(VERSIONS.read_text())


def test_the_k3s_image_suits_every_pinned_component(versions: dict) -> None:
    problems = range_problems(script_pins(CLUSTER_SCRIPT), versions)
    assert not problems, "\n".join(problems)


def test_every_version_pin_of_the_cluster_script_has_a_documented_range(versions: dict) -> None:
    pinned = {name for name in script_pins(CLUSTER_SCRIPT) if name.endswith("_VERSION")}
    documented = {component["pin"] for component in versions["components"].values()}
    assert pinned == documented, f"without a range: {sorted(pinned - documented)}; stale: {sorted(documented - pinned)}"
    for name, component in versions["components"].items():
        assert component["source"].strip(), f"{name}: say where its range comes from"


def test_the_check_rejects_the_kubernetes_knative_1_23_refuses(versions: dict) -> None:
    # The pin before this check existed: Kubernetes 1.33, below Knative 1.23's floor of 1.34.
    pins = script_pins(CLUSTER_SCRIPT) | {"K3S_IMAGE": "rancher/k3s:v1.33.4-k3s1"}
    problems = range_problems(pins, versions)
    assert any(p.startswith("knative-serving ") and "runs 1.33" in p for p in problems), problems
    # And one above KEDA 2.20's tested ceiling.
    pins["K3S_IMAGE"] = "rancher/k3s:v1.36.1-k3s1"
    assert any(p.startswith("keda ") for p in range_problems(pins, versions))


def test_pins_are_read_as_the_script_assigns_them() -> None:
    text = 'K3S_IMAGE="${K3S_IMAGE:-rancher/k3s:v1.35.5-k3s1}"\nKEDA_VERSION="2.20.2"\n  LOCAL="x"\n'
    assert PIN.findall(text) == [("K3S_IMAGE", "rancher/k3s:v1.35.5-k3s1"), ("KEDA_VERSION", "2.20.2")]
