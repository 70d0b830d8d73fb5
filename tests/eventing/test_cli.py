"""`python -m local.eventing`: startup errors are clear and exit with status 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "local.eventing", *args],
        cwd=REPOSITORY,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def error_lines(result: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def test_malformed_manifest_exits_2_with_the_reason(tmp_path):
    (tmp_path / "pingsources.yaml").write_text(
        "apiVersion: sources.knative.dev/v1\nkind: PingSource\nmetadata: {name: fast}\n"
        "spec: {schedule: '@every 5s', sink: {uri: 'http://x/'}}\n"
    )
    result = run("--manifests", str(tmp_path))
    assert result.returncode == 2
    [line] = [entry for entry in error_lines(result) if entry["level"] == "ERROR"]
    assert line["problems"] == [
        "pingsources.yaml#1: PingSource default/fast: spec.schedule: schedule '@every 5s': '@every' is not supported by PingSource"
    ]


def test_unresolvable_sink_exits_2(tmp_path):
    (tmp_path / "pingsources.yaml").write_text(
        "apiVersion: sources.knative.dev/v1\nkind: PingSource\nmetadata: {name: p}\n"
        "spec: {sink: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: ghost}}}\n"
    )
    result = run("--manifests", str(tmp_path), env={"EVENTING_NAMESPACE": "dev"})
    assert result.returncode == 2
    assert "Service dev/ghost: set GHOST_FUNCTION_URL" in result.stdout


def test_missing_directory_and_bad_settings_exit_2(tmp_path):
    assert run("--manifests", str(tmp_path / "absent")).returncode == 2
    result = run("--manifests", str(tmp_path), env={"EVENTING_COMMIT_INTERVAL_SECONDS": "soon"})
    assert result.returncode == 2 and "commit_interval_seconds" in result.stdout
