"""Each function directory, prepared for kn func, installs alone and serves via func-python:
a CloudEvent, or for the quotes read API a GET.

This is `kn func build` minus the container: see kn_func_build.py. The venvs are built
in parallel from one wheelhouse (filled from PyPI on the first run, then reused).
"""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import kn_func_build as kfb
import pytest
from manifest_rules import ROOT

# ce-type each function receives in the cluster (knowledge a.3/e): KafkaSource wraps plain
# records as dev.knative.kafka.event; PingSource ticks are dev.knative.sources.ping.
# None: the function takes no CloudEvents (quotes, the read API).
FUNCTIONS: dict[str, str | None] = {
    "price": "dev.knative.kafka.event",
    "metadata": "dev.knative.kafka.event",
    "audit": "dev.knative.kafka.event",
    # A dead-letter record is the failed event itself (binary mode): a wrapped plain record here.
    "deadletter": "dev.knative.kafka.event",
    "scheduler": "dev.knative.sources.ping",
    "quotes": None,
    "trade_normalizer": "dev.knative.kafka.event",
    "trade_enricher": "dev.knative.kafka.event",
    "trade_analyser": "dev.knative.kafka.event",
    # Not a CloudEvent type: the driver's checks of the trades API (kn_func_build.DRIVER).
    "trades": "trades-api",
    # Its image also holds dbt and the dbt project (scripts/prepare_function.py FUNCTION_EXTRAS).
    "stocks": "dev.knative.sources.ping",
}
TEST_NAME = "test_prepared_function_installs_alone_and_serves_its_requests"


def _has_entry(name: str) -> bool:
    return (ROOT / "functions" / name / "main.py").is_file()


@pytest.fixture(scope="module")
def builds(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, kfb.BuildResult]:
    """Prepare and install every selected function that has its main.py, in parallel."""
    # Only the functions whose test runs (`-k stocks` builds one venv, not all of them).
    selected = {
        item.callspec.params["name"]
        for item in request.session.items
        if getattr(item, "originalname", None) == TEST_NAME and hasattr(item, "callspec")
    }
    names = [n for n in FUNCTIONS if _has_entry(n) and n in selected]
    if not names:
        return {}
    wheelhouse = kfb.fill_wheelhouse()
    workdir = tmp_path_factory.mktemp("kn-func-build")
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        results = pool.map(lambda n: kfb.build(n, workdir, wheelhouse), names)
    return {r.name: r for r in results}


@pytest.mark.parametrize("name", FUNCTIONS)
def test_prepared_function_installs_alone_and_serves_its_requests(
    name: str, builds: dict[str, kfb.BuildResult]
) -> None:
    if not _has_entry(name):
        pytest.skip(f"functions/{name}/main.py does not exist yet: nothing to package")
    result = builds[name]
    assert result.install.returncode == 0, f"pip install {result.directory} failed:\n{result.install.stderr[-4000:]}"

    report = kfb.serve_offline(result, FUNCTIONS[name])

    # The image environment: func-python's cloudevents 2.x, no functions-framework.
    assert report["cloudevents"].startswith("2."), report["cloudevents"]
    assert report["functions_framework"] == "absent"
    assert report["lifespan"] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert report["liveness"]["status"] == 200, report["liveness"]
    assert report["metrics"]["status"] == 200, report["metrics"]
    if FUNCTIONS[name] == "trades-api":
        # Its dependencies (PyJWT, jsonschema) are in the image, and no route answers without a token.
        assert report["no_token"]["status"] == 401, report["no_token"]
        assert report["no_token"]["headers"].get("www-authenticate", "").startswith("Bearer"), report["no_token"]
        assert report["not_api"]["status"] == 404, report["not_api"]
        return
    if FUNCTIONS[name] is None:
        # The read API routes GETs under /v1 itself (query string included), says 503 with
        # Retry-After while PostgreSQL is away, and refuses anything but GET.
        assert report["unknown_route"]["status"] == 404, report["unknown_route"]
        assert "no route for GET /v1/no-such-route" in report["unknown_route"]["body"], report["unknown_route"]
        assert report["database_down"]["status"] == 503, report["database_down"]
        assert report["database_down"]["headers"].get("retry-after"), report["database_down"]
        assert report["not_get"]["status"] == 405, report["not_get"]
        assert report["not_get"]["headers"].get("allow") == "GET", report["not_get"]
        return
    # A request that is no CloudEvent, and a CloudEvent whose data can never be read, are
    # answered 400 with a reason (dead-letter sink at once), never 500 (retried) or a crash.
    # The deadletter function records every dead letter, unreadable data included: with
    # PostgreSQL away that is a 503 (its KafkaSource retries), never a 400 that would lose it.
    if name == "deadletter":
        assert report["undecodable_data"]["status"] == 503, report["undecodable_data"]
        assert "PostgreSQL unreachable" in report["undecodable_data"]["body"], report["undecodable_data"]
    for case in ("not_a_cloudevent",) if name == "deadletter" else ("not_a_cloudevent", "undecodable_data"):
        assert report[case]["status"] == 400, (case, report[case])
        assert report[case]["body"].strip(), (case, "400 without a reason")
    if name == "stocks":
        # The gold tick can run in the image: dbt beside the function's interpreter, the project
        # in the package, the worker's interpreter present (shared.stocks.gold.dbt_missing).
        probe = subprocess.run(
            [str(result.python), "-I", "-c", STOCKS_PROBE], capture_output=True, text=True, cwd=result.python.parent
        )
        assert probe.returncode == 0, probe.stderr[-3000:]
        found = json.loads(probe.stdout)
        assert found["missing"] is None, found
        assert Path(found["dbt"]).parent == result.python.parent and found["dbt_core"].startswith("1.11."), found


STOCKS_PROBE = """
import json
from importlib.metadata import version
from shared.stocks.gold import dbt_missing
from shared.stocks.settings import StockSettings
settings = StockSettings()
print(json.dumps({"missing": dbt_missing(settings), "dbt": settings.dbt_command(),
                  "project": settings.dbt_project_dir, "dbt_core": version("dbt-core")}))
"""


def test_prepared_directory_is_self_contained(tmp_path: Path) -> None:
    name = next((n for n in FUNCTIONS if _has_entry(n)), None)
    if name is None:
        pytest.skip("no functions/<name>/main.py exists yet: nothing to package")
    out = kfb.prepare_function.prepare(name, tmp_path / name)
    assert (out / "func.yaml").read_text() == (ROOT / "functions" / name / "func.yaml").read_text()
    assert (out / "function" / "main.py").read_text() == (ROOT / "functions" / name / "main.py").read_text()
    assert (out / "shared" / "runtime" / "asgi.py").is_file()
    assert not list(out.rglob("__pycache__"))
