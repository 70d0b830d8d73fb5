"""scripts/cluster.sh, scripts/deploy.sh, infra/docker/Dockerfile and docker-compose.yml, checked offline."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from manifest_rules import ROOT, SCHEMAS

# Every shell script of the repository: make cluster, make deploy, make setup.
SCRIPTS = sorted((ROOT / "scripts").glob("*.sh"))
DOCKERFILE = ROOT / "infra" / "docker" / "Dockerfile"
# Functions the eventing plane delivers to; quotes, the read API, takes no events.
EVENT_DRIVEN = (
    "price",
    "metadata",
    "audit",
    "deadletter",
    "scheduler",
    "stats",
    "stocks",
    "trade_normalizer",
    "trade_enricher",
    "trade_analyser",
    "trade_sync",
)
FUNCTIONS = (*EVENT_DRIVEN, "quotes", "trades")


def compose_name(function: str) -> str:
    """The compose service (a host name) of a function: trade_normalizer runs as trade-normalizer."""
    return function.replace("_", "-")


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shell_scripts_parse(script: Path) -> None:
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed (apt-get install shellcheck)")
def test_shell_scripts_are_shellcheck_clean() -> None:
    assert {p.name for p in SCRIPTS} >= {"cluster.sh", "deploy.sh", "setup.sh"}
    result = subprocess.run(["shellcheck", *map(str, SCRIPTS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_cluster_pins_the_versions_the_manifests_are_validated_against() -> None:
    text = (ROOT / "scripts" / "cluster.sh").read_text()
    pins = dict(re.findall(r'^([A-Z_]+_VERSION)="([^"]+)"', text, re.MULTILINE))
    readme = (SCHEMAS / "README.md").read_text()
    assert (
        pins["KNATIVE_SERVING_VERSION"] == "knative-v1.23.0"
        and "knative/serving | `config/core/300-resources/service.yaml` | `knative-v1.23.0`" in readme
    )
    assert (
        pins["KNATIVE_KAFKA_VERSION"] == "knative-v1.23.0"
        and "eventing-kafka-broker | `control-plane/config/eventing-kafka-broker/100-source/100-kafka-source.yaml`"
        in readme
    )
    assert pins["STRIMZI_VERSION"] == "1.2.0" and "`1.2.0` (" in readme
    assert pins["KEDA_VERSION"] == "2.20.2" and "`v2.20.2` (" in readme
    # Eventing and Serving are released together; the Kafka extension needs the same minor.
    assert pins["KNATIVE_EVENTING_VERSION"] == pins["KNATIVE_KAFKA_VERSION"] == pins["KOURIER_VERSION"]
    assert "controller-autoscaler-keda" in text


def test_deploy_script_rejects_bad_usage_before_touching_a_cluster() -> None:
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "deploy.sh"), "--env", "staging"], capture_output=True, text=True
    )
    assert result.returncode == 1 and "no overlay 'staging'" in result.stderr
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "deploy.sh"), "--only", "pricer"], capture_output=True, text=True
    )
    assert result.returncode == 1 and "no function 'pricer'" in result.stderr
    result = subprocess.run(["bash", str(ROOT / "scripts" / "deploy.sh"), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--without-func" in result.stdout


def test_deploy_script_deploys_every_function() -> None:
    text = (ROOT / "scripts" / "deploy.sh").read_text()
    listed = re.search(r"^FUNCTIONS=\(([^)]*)\)$", text, re.MULTILINE)
    assert listed, "no FUNCTIONS=(...) in deploy.sh"
    assert sorted(listed.group(1).split()) == sorted(FUNCTIONS)
    assert sorted(FUNCTIONS) == sorted(p.parent.name for p in (ROOT / "functions").glob("*/func.yaml"))


def test_dockerfile_copies_what_exists_and_what_the_context_keeps() -> None:
    text = DOCKERFILE.read_text()
    sources = [s for line in re.findall(r"^COPY (?!--from)(.+)$", text, re.MULTILINE) for s in line.split()[:-1]]
    assert sources, "no COPY found"
    kept = [
        line[1:].rstrip("/")
        for line in (DOCKERFILE.parent / "Dockerfile.dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: missing in the repository"
        assert source.rstrip("/") in kept, f"COPY {source}: excluded by Dockerfile.dockerignore"
    assert set(re.findall(r"^FROM .* AS (\w+)$", text, re.MULTILINE)) >= {"deps", "runtime", "function", "tools"}


def test_compose_runs_every_function_on_the_dockerfile() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    for name in FUNCTIONS:
        build = services[compose_name(name)]["build"]
        assert (build["dockerfile"], build["target"], build["args"]["FUNCTION"]) == (
            "infra/docker/Dockerfile",
            "function-dbt" if name == "stocks" else "function",  # stocks carries dbt (the gold layer)
            name,
        )
        assert services[compose_name(name)]["environment"]["DATABASE_URL"].startswith("postgresql://")
    # trade_feed (WebSockets) runs under uvicorn: the function-asgi target, no func.yaml
    feed = services["trade-feed"]["build"]
    assert (feed["dockerfile"], feed["target"], feed["args"]["FUNCTION"]) == (
        "infra/docker/Dockerfile",
        "function-asgi",
        "trade_feed",
    )
    assert re.search(r"^FROM function AS function-asgi$", DOCKERFILE.read_text(), re.MULTILINE)
    for name in EVENT_DRIVEN:
        assert services[compose_name(name)]["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        url = services["eventing"]["environment"][f"{name.upper()}_FUNCTION_URL"]
        assert url == f"http://{compose_name(name)}:8080"
    assert "QUOTES_FUNCTION_URL" not in services["eventing"]["environment"]
    assert services["quotes"]["ports"] == ["8085:8080"]  # docs/api.md runs it on 8085
    assert {"kafka", "postgres", "topics", "migrate", "eventing"} <= set(services)


@pytest.mark.skipif(
    shutil.which("docker-compose") is None, reason="docker-compose not installed (apt-get install docker-compose)"
)
def test_compose_file_is_valid() -> None:
    result = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr


def test_compose_topic_creation_reads_the_cluster_declaration() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("kafka_topics", ROOT / "infra" / "docker" / "kafka_topics.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    topics = {t.topic: t for t in module.declared_topics()}
    assert topics["price-crawler.price.request"].num_partitions == 6
    assert topics["price-crawler.price.request"].config["retention.ms"] == "3600000"
    assert len(topics) == 16
