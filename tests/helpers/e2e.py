"""Scaffolding of the end-to-end tests: functions as real processes, the cluster's manifests isolated.

The functions run under functions-framework as separate processes, served over HTTP, exactly as
`make up` runs them; the local eventing plane runs the PingSources and KafkaSources of
`infra/knative/base` (the manifests the cluster uses) with only what isolates a test changed:
fresh topics and consumer groups, and the tick's schedule.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import yaml

from local.services import free_port
from local.stack import functions_framework_argv

ROOT = Path(__file__).resolve().parents[2]
BASE_MANIFESTS = ROOT / "infra" / "knative" / "base"


def function_env(
    market_env: Mapping[str, str], database_url: str, kafka_bootstrap: str, topics: Mapping[str, str]
) -> dict[str, str]:
    """The environment of the function processes: market, database, broker, this test's topics."""
    env = {
        **os.environ,
        **market_env,
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    for name, setting in (
        ("price", "PRICE_TOPIC"),
        ("metadata", "METADATA_TOPIC"),
        ("audit", "AUDIT_TOPIC"),
        ("price_updated", "PRICE_UPDATED_TOPIC"),
        # The deadletter function forwards each dead letter it stored to this test's topic.
        ("price_dead_letter", "PRICE_DEAD_LETTER_TOPIC"),
        ("metadata_dead_letter", "METADATA_DEAD_LETTER_TOPIC"),
        ("audit_dead_letter", "AUDIT_DEAD_LETTER_TOPIC"),
    ):
        if name in topics:
            env[setting] = topics[name]
    return env


def serve_functions(names: Iterable[str], env: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """Start each function under functions-framework; yield name → URL once every one is ready."""
    processes: dict[str, subprocess.Popen] = {}
    urls: dict[str, str] = {}
    try:
        for name in names:
            port = free_port()
            urls[name] = f"http://127.0.0.1:{port}"
            processes[name] = subprocess.Popen(
                list(functions_framework_argv(name, port)),
                env={**env, "K_SERVICE": name},
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        deadline = time.monotonic() + 30
        for name, url in urls.items():
            while True:
                if processes[name].poll() is not None:
                    stderr = processes[name].stderr
                    output = stderr.read().decode()[-3000:] if stderr else ""
                    raise AssertionError(f"function {name} exited at start:\n{output}")
                try:
                    if httpx.get(f"{url}/health/readiness", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"function {name} not ready at {url} within 30 s")
                time.sleep(0.2)
        yield urls
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


def isolated_manifests(
    directory: Path,
    topics: Mapping[str, str],
    *,
    pings: Mapping[str, str] = {},
    sources: Iterable[str] = (),
    group_suffix: str | None = None,
) -> Path:
    """Chosen PingSources (name → schedule) and KafkaSources (`price`, `metadata`, `audit`) of
    infra/knative/base, on this test's topics and consumer groups (`<the manifest's group>-<group_suffix>`).

    Their dead-letter sink stays the deadletter function (serve it, with `function_env`'s
    `<fn>_dead_letter` topics, to see dead letters in `dead_letters` and on those topics)."""
    documents = []
    for file in ("pingsources.yaml", "kafkasources.yaml"):
        documents += [d for d in yaml.safe_load_all((BASE_MANIFESTS / file).read_text()) if d]
    by_name = {(d["kind"], d["metadata"]["name"]): d for d in documents}
    suffix = group_suffix or uuid.uuid4().hex[:8]
    chosen = []
    for name, schedule in pings.items():
        ping = by_name[("PingSource", name)]
        ping["spec"]["schedule"] = schedule
        chosen.append(ping)
    for topic in sources:
        manifest = by_name[("KafkaSource", f"{topic}-request-source")]
        manifest["spec"]["topics"] = [topics[topic]]
        manifest["spec"]["consumerGroup"] = f"{manifest['spec']['consumerGroup']}-{suffix}"
        manifest["spec"]["initialOffset"] = "earliest"  # the test may write before the plane subscribed
        chosen.append(manifest)
    (directory / "eventing.yaml").write_text(yaml.safe_dump_all(chosen, sort_keys=False))
    return directory


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
