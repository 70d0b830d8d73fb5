"""`FunctionApp`'s HTTP surface: health, metrics, methods, and the verdict of each handler outcome."""

from __future__ import annotations

import json

import functions_framework
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.config import Settings
from shared.errors import BadMessage, DependencyUnavailable, RateLimited
from shared.runtime.app import FunctionApp
from shared.runtime.resources import Resources
from tests.helpers.cloudevents import ping_request
from tests.helpers.functions import FUNCTIONS_DIR


def _app(
    handler=None, *, database_url: str = "postgresql://crawler:crawler@127.0.0.1:1/none", needs_database: bool = True
) -> FunctionApp:
    settings = Settings(database_url=database_url, db_connect_timeout_seconds=2.0)
    return FunctionApp(
        name="test-fn",
        handler=handler or (lambda event, res: {"ok": True, "id": event.id}),
        needs_database=needs_database,
        resources=Resources(settings),
    )


def _json(response) -> dict:
    return json.loads(response.body)


def test_liveness_is_200():
    response = _app().handle_http("GET", "/health/liveness", {}, b"")
    assert response.status == 200
    assert _json(response)["status"] == "alive"


def test_readiness_is_503_with_the_reason_when_postgres_is_unreachable(free_port):
    app = _app(database_url=f"postgresql://crawler:crawler@127.0.0.1:{free_port}/price_crawler")
    response = app.handle_http("GET", "/health/readiness/", {}, b"")
    assert response.status == 503
    assert _json(response) == {"status": "not ready", "detail": "PostgreSQL unreachable"}


def test_readiness_is_200_when_nothing_is_needed():
    response = _app(needs_database=False).handle_http("GET", "/health/readiness", {}, b"")
    assert response.status == 200
    assert _json(response)["status"] == "ready"


def test_a_function_readiness_check_makes_it_not_ready_with_its_reason():
    app = FunctionApp(
        name="test-fn",
        handler=lambda event, res: {},
        needs_database=False,
        resources=Resources(Settings()),
        readiness=[lambda res: None, lambda res: "dbt not installed at /opt/dbt/bin/dbt"],
    )
    response = app.handle_http("GET", "/health/readiness", {}, b"")
    assert response.status == 503
    assert _json(response) == {"status": "not ready", "detail": "dbt not installed at /opt/dbt/bin/dbt"}


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_are_405_with_allow(method):
    response = _app().handle_http(method, "/", {}, b"{}")
    assert response.status == 405
    assert response.headers["Allow"] == "GET, POST"
    assert method in _json(response)["error"]


def test_unknown_get_path_is_404():
    assert _app().handle_http("GET", "/nope", {}, b"").status == 404


def test_metrics_serve_prometheus_text():
    app = _app()
    app.handle_http("POST", "/", {"Content-Type": "text/plain"}, b"not a cloudevent")  # counted
    response = app.handle_http("GET", "/metrics", {}, b"")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = list(text_string_to_metric_families(response.body.decode()))  # valid exposition format
    samples = [s for f in families if f.name.startswith("crawler_") for s in f.samples]
    assert any(s.labels.get("function") == "test-fn" and s.value >= 1 for s in samples)


def test_event_is_handed_to_the_handler_and_answered_200():
    request = ping_request("top100-price")
    response = request.to(_app())
    assert response.status == 200
    assert _json(response) == {"ok": True, "id": request.headers["ce-id"]}


def test_a_post_that_is_no_cloudevent_is_400_with_the_reason():
    response = _app().handle_http("POST", "/", {"Content-Type": "application/json"}, b'{"job_type": "price"}')
    assert response.status == 400
    assert "not a CloudEvent" in _json(response)["error"]


@pytest.mark.parametrize(
    "error, status",
    [
        (BadMessage("symbols: Input should be a valid list"), 400),
        (RateLimited("binance", "slow down", retry_after=4), 429),
        (DependencyUnavailable("PostgreSQL unreachable"), 503),
        (KeyError("boom"), 500),
    ],
)
def test_handler_errors_become_verdicts(error, status):
    def handler(event, resources):
        raise error

    response = ping_request("top100-price").to(_app(handler))
    assert response.status == status
    if status == 429:
        assert response.headers["Retry-After"] == "4"
    if status == 400:
        assert _json(response)["error"] == "symbols: Input should be a valid list"


def test_functions_framework_entry_serves_the_same_app():
    """functions/scheduler/main.py under functions-framework's own WSGI app (`--signature-type http`)."""
    flask_app = functions_framework.create_app(
        target="scheduler", source=str(FUNCTIONS_DIR / "scheduler" / "main.py"), signature_type="http"
    )
    client = flask_app.test_client()
    assert client.get("/health/liveness").status_code == 200
    put = client.put("/", data=b"{}")
    assert put.status_code == 405
    assert put.headers["Allow"] == "GET, POST"
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and metrics.content_type.startswith("text/plain")
    bad = client.post("/", data=b"{}", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400
    assert "not a CloudEvent" in bad.get_json()["error"]
    unknown = ping_request("no-such-schedule")
    answer = client.post("/", data=unknown.body, headers=unknown.headers)
    assert answer.status_code == 400
    assert "unknown schedule 'no-such-schedule'" in answer.get_json()["error"]


def test_the_request_target_keeps_a_question_mark_or_percent_inside_a_segment() -> None:
    """Servers decode the path; encoded again, `?` and `%` in a segment are neither the query nor decoded twice."""
    from urllib.parse import unquote

    from shared.runtime.app import request_target

    assert request_target("/v1/tokens/ton:a?b/kpis", "") == "/v1/tokens/ton:a%3Fb/kpis"
    assert request_target("/v1/prices/%00", "x=1") == "/v1/prices/%2500?x=1"
    assert request_target("/health/liveness", "") == "/health/liveness"
    segment = request_target("/v1/prices/a b%#€", "").rsplit("/", 1)[1]
    assert unquote(segment) == "a b%#€"
