"""The offline stand-in for `kn func build`: install a prepared function directory alone into a
fresh virtual environment, then serve CloudEvents (or, for the quotes read API, plain GETs)
through func-python exactly as the image does.

kn func's pack build moves the directory into the image and pip/poetry-installs it next to
its scaffolding, which runs `from function import new` and `func_python.http.serve(new)`.
Here the same directory is installed from a local wheelhouse (filled from PyPI once), and the
scaffolding's serve step is replaced by driving func-python's ASGIApplication with hand-built
ASGI messages, so no socket or container is needed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

from manifest_rules import ROOT

_spec = importlib.util.spec_from_file_location("prepare_function", ROOT / "scripts" / "prepare_function.py")
prepare_function = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
sys.modules["prepare_function"] = prepare_function
_spec.loader.exec_module(prepare_function)  # type: ignore[union-attr]

BUILD_BACKEND = "hatchling>=1.21"
DEFAULT_WHEELHOUSE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "price-crawler" / "kn-func-wheels"

# Runs inside the function's virtual environment with `python -I` (the checkout is not on
# sys.path): everything it imports comes from what the prepared directory installed.
DRIVER = r"""
import asyncio, json, sys

import func_python.http
from function import new

# The scaffolding dispatches on the factory's name (func_python.http.serve).
assert new.__name__ == "new", new.__name__
application = func_python.http.ASGIApplication(new())
# The ce-type the function receives; absent for a function that takes no CloudEvents (quotes).
ce_type = sys.argv[1] if len(sys.argv) > 1 else None


def scope(method, path, headers=(), query=""):
    return {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": query.encode(),
            "headers": [(k.encode(), v.encode()) for k, v in headers], "http_version": "1.1", "scheme": "http"}


async def call(request_scope, body=b""):
    incoming = [{"type": "http.request", "body": body, "more_body": False}]
    sent = []

    async def receive():
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    await application(request_scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    payload = b"".join(m.get("body", b"") if isinstance(m.get("body", b""), bytes) else m["body"].encode()
                       for m in sent if m["type"] == "http.response.body")
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in start.get("headers", [])}
    return {"status": start["status"], "headers": headers, "body": payload.decode("utf-8", "replace")[:500]}


async def main():
    lifespan_in, lifespan_out = asyncio.Queue(), []

    async def lifespan_send(message):
        lifespan_out.append(message["type"])

    lifespan = asyncio.create_task(application({"type": "lifespan"}, lifespan_in.get, lifespan_send))
    await lifespan_in.put({"type": "lifespan.startup"})
    while "lifespan.startup.complete" not in lifespan_out:
        await asyncio.sleep(0.01)
    results = {
        "liveness": await call(scope("GET", "/health/liveness")),
        "metrics": await call(scope("GET", "/metrics")),
    }
    if ce_type == "trades-api":
        # The trades API: every route behind a bearer token; it takes no CloudEvents.
        results["no_token"] = await call(scope("GET", "/api/trades"))
        results["not_api"] = await call(scope("POST", "/", [("content-type", "text/plain")]), b"hello")
    elif ce_type is None:
        # The read API: routes under /v1 with their query string, GET only.
        results["unknown_route"] = await call(scope("GET", "/v1/no-such-route"))
        results["database_down"] = await call(scope("GET", "/v1/prices", query="tokens=BTC"))
        results["not_get"] = await call(scope("POST", "/", [("content-type", "text/plain")]), b"hello")
    else:
        binary = [("ce-specversion", "1.0"), ("ce-id", "offline-build-check-1"), ("ce-source", "/offline/build-check"),
                  ("ce-type", ce_type), ("content-type", "application/json")]
        results["not_a_cloudevent"] = await call(scope("POST", "/", [("content-type", "text/plain")]), b"hello")
        results["undecodable_data"] = await call(scope("POST", "/", binary), b"{not json")
    await lifespan_in.put({"type": "lifespan.shutdown"})
    await lifespan
    results["lifespan"] = lifespan_out
    results["functions_framework"] = getattr(sys.modules.get("functions_framework"), "__file__", "absent")
    results["cloudevents"] = __import__("importlib.metadata").metadata.version("cloudevents")
    print(json.dumps(results))


asyncio.run(main())
"""


@dataclass
class BuildResult:
    """One function's prepared directory, its virtual environment and the install outcome."""

    name: str
    directory: Path
    python: Path
    install: subprocess.CompletedProcess[str]


def fill_wheelhouse(wheelhouse: Path = DEFAULT_WHEELHOUSE) -> Path:
    """Make `wheelhouse` hold every distribution a prepared function installs.

    Tries the wheelhouse alone first, so a warm cache needs no network; otherwise
    downloads from the package index.
    """
    wheelhouse.mkdir(parents=True, exist_ok=True)
    # Every function's requirements: the common ones, and the extras some images add (stocks: dbt).
    requirements = [BUILD_BACKEND, *prepare_function.kn_func_dependencies()]
    for function in prepare_function.FUNCTION_EXTRAS:
        requirements += [r for r in prepare_function.kn_func_dependencies(function=function) if r not in requirements]
    base = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--disable-pip-version-check",
        "--dest",
        str(wheelhouse),
    ]
    offline = subprocess.run(
        [*base, "--no-index", "--find-links", str(wheelhouse), *requirements], capture_output=True, text=True
    )
    if offline.returncode != 0:
        online = subprocess.run([*base, *requirements], capture_output=True, text=True, timeout=600)
        if online.returncode != 0:
            raise RuntimeError(f"cannot fill the wheelhouse {wheelhouse}:\n{online.stderr[-3000:]}")
    return wheelhouse


def build(name: str, workdir: Path, wheelhouse: Path) -> BuildResult:
    """Prepare functions/<name> into `workdir` and pip-install that directory alone into a new venv."""
    directory = prepare_function.prepare(name, workdir / "kn-func" / name)
    env_dir = workdir / "venv" / name
    # No pip inside the venv: the outer pip installs into it (`pip --python`), which is much faster.
    venv.EnvBuilder(with_pip=False, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-index",
            "--find-links",
            str(wheelhouse),
            str(directory),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    return BuildResult(name, directory, python, install)


def serve_offline(result: BuildResult, ce_type: str | None) -> dict:
    """Run DRIVER in the function's venv, away from the checkout; return its JSON report.

    `ce_type` is the CloudEvent type the function receives, or None for a function that
    takes no CloudEvents (the quotes read API), which is sent GET requests instead.
    """
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "K_SERVICE": result.name,
        # Nothing listens here: the checks must not need PostgreSQL or Kafka.
        "DATABASE_URL": "postgresql://crawler:crawler@127.0.0.1:9/price_crawler",
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
    }
    proc = subprocess.run(
        [str(result.python), "-I", "-c", DRIVER, *([ce_type] if ce_type else [])],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=result.directory.parent,
        env=env,
    )
    if proc.returncode != 0:
        raise AssertionError(f"{result.name}: the kn func entry point failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
