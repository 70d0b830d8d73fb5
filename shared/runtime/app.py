"""`FunctionApp`: one function's HTTP surface, independent of the server that runs it.

Routes:
  GET  /health/liveness   200 while the process can serve
  GET  /health/readiness  200 when its dependencies (PostgreSQL, Kafka) answer, else 503
  GET  /metrics           Prometheus text exposition
  POST any path           a CloudEvent: decoded, handed to the function's handler,
                          and answered with the verdict of shared.runtime.verdict

functions-framework (`ff_entry`) and kn func's func-python (`shared.runtime.asgi`)
both call `handle_http`, so a function behaves the same under either runtime.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from shared.events import InboundEvent
from shared.observability import metrics
from shared.observability.logging import configure_logging, log_context, secrets_of
from shared.observability.traces import current_traceparent, event_failed, event_span
from shared.observability.tracing import trace_id_of
from shared.runtime.cloudevent_http import event_from_http
from shared.runtime.resources import Resources
from shared.runtime.verdict import HttpResponse, verdict_for_error

log = logging.getLogger(__name__)

EventHandler = Callable[[InboundEvent, Resources], dict[str, Any]]
# Started with the app: exports values read at scrape time (e.g. the price crawler's freshness).
Probe = Callable[[Resources], object]


@dataclass
class FunctionApp:
    """A function: its name, its CloudEvent handler, the dependencies readiness checks and its probes.

    `topic_setting` names the Settings field of the topic its KafkaSource consumes
    (`price_topic`): its events are then traced as messages processed from that topic.
    """

    name: str
    handler: EventHandler
    needs_database: bool = True
    needs_kafka: bool = False
    resources: Resources = field(default_factory=Resources)
    probes: Sequence[Probe] = ()
    topic_setting: str | None = None
    # The function's own readiness checks beside PostgreSQL and Kafka: each answers None, or why
    # the function cannot do its work here (the stocks function: dbt missing from its image).
    readiness: Sequence[Callable[[Resources], str | None]] = ()

    def __post_init__(self) -> None:
        settings = self.resources.settings
        configure_logging(self.name, settings.log_level, secrets=secrets_of(settings), log_format=settings.log_format)
        for probe in self.probes:
            probe(self.resources)

    # --- HTTP ------------------------------------------------------------------------------
    def handle_http(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        """Answer one HTTP request."""
        method = method.upper()
        route = path.split("?", 1)[0].rstrip("/")
        if method == "GET":
            if route == "/health/liveness":
                ok, reason = self.alive()
                return HttpResponse.json(200 if ok else 503, {"status": "alive" if ok else "dead", "detail": reason})
            if route == "/health/readiness":
                ok, reason = self.ready()
                return HttpResponse.json(
                    200 if ok else 503, {"status": "ready" if ok else "not ready", "detail": reason}
                )
            if route == "/metrics":
                return HttpResponse(200, metrics.render_prometheus(), {"Content-Type": metrics.CONTENT_TYPE})
            return HttpResponse.json(404, {"error": f"no route for GET {path}"})
        if method != "POST":
            return HttpResponse.json(405, {"error": f"method {method} not allowed"}, {"Allow": "GET, POST"})
        return self.handle_event_request(headers, body)

    def handle_event_request(self, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        """Decode a CloudEvent, run the handler, return the verdict (counted by verdict)."""
        response = self._answer_event(headers, body)
        metrics.count("crawler_events_handled", function=self.name, verdict=_verdict_label(response.status))
        return response

    def _answer_event(self, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        try:
            event = event_from_http(headers, body)
        except Exception as exc:
            log.warning("rejected request: %s", exc)
            return verdict_for_error(exc)
        topic = getattr(self.resources.settings, self.topic_setting) if self.topic_setting else None
        with (
            event_span(self.resources.tracing.tracer, event, topic) as span,
            log_context(
                event_id=event.id,
                trace_id=trace_id_of(current_traceparent() or event.traceparent),
                event_type=event.type,
            ),
        ):
            try:
                result = self.handler(event, self.resources)
            except Exception as exc:
                response = verdict_for_error(exc)
                event_failed(span, exc, response.status)
                level = logging.ERROR if response.status >= 500 and response.status != 503 else logging.WARNING
                log.log(
                    level, "event %s answered %s: %s", event.id, response.status, exc, exc_info=response.status == 500
                )
                return response
            return HttpResponse.json(200, result)

    # --- health ---------------------------------------------------------------------------
    def alive(self) -> tuple[bool, str]:
        """Liveness: the process serves requests."""
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        """Readiness: every dependency this function needs answers."""
        checks = {}
        if self.needs_database:
            checks["postgresql"] = ("PostgreSQL", self.resources.db.ping)
        if self.needs_kafka:
            checks["kafka"] = ("Kafka", self.resources.producer.ping)
        problems = []
        for dependency, (label, ping) in checks.items():
            up = ping()
            metrics.set_gauge("crawler_dependency_up", 1 if up else 0, function=self.name, dependency=dependency)
            if not up:
                problems.append(f"{label} unreachable")
        problems += [problem for check in self.readiness if (problem := check(self.resources)) is not None]
        return (not problems, "; ".join(problems) or "ok")

    def close(self) -> None:
        """Release connections at shutdown."""
        self.resources.close()


def _verdict_label(status: int) -> str:
    """The verdict KafkaSource acts on, as a metric label (shared.runtime.verdict)."""
    if status < 300:
        return "done"
    if status == 429:
        return "throttled"
    if status < 500:
        return "rejected"  # the source dead-letters it at once
    return "retry" if status == 503 else "error"


def ff_entry(app: FunctionApp) -> Callable[[Any], tuple[bytes, int, dict[str, str]]]:
    """A functions-framework `http` target serving `app` (flask request in, flask tuple out).

    functions-framework loads the function's source inside its Flask app's context: the
    errors that app answers itself, before the function is called (a path its router refuses,
    such as one holding a newline; /favicon.ico; /robots.txt), are then answered in the
    function's JSON error format too, never as werkzeug's HTML page.
    """

    def entry(request: Any) -> tuple[bytes, int, dict[str, str]]:
        query = request.query_string.decode("latin-1") if request.query_string else ""
        target = request_target(request.path, query)
        response = app.handle_http(request.method, target, request.headers, request.get_data())
        return response.body, response.status, response.headers

    _answer_server_errors_in_json()
    entry.__name__ = app.name
    return entry


def request_target(path: str, query: str) -> str:
    """The request target `handle_http` takes: the path percent-encoded again, then `?query`.

    Servers hand the path on decoded; encoded again, a `?` or `%` inside a path segment
    (`/v1/prices/a%3Fb`) can never be taken for the query or decoded a second time, and a
    reader of the path decodes each segment exactly once (`urllib.parse.unquote`).
    """
    encoded = quote(path, safe="/:@!$&'()*+,;=")
    return f"{encoded}?{query}" if query else encoded


def http_error_response(status: int, method: str, path: str, description: str | None) -> HttpResponse:
    """The JSON error a function answers for an HTTP-level failure (no route, bad request, ...)."""
    shown = path if len(path) <= 200 else path[:199] + "…"
    if status == 404:
        reason = f"no route for {method} {shown}"
    else:
        reason = description or f"HTTP {status}"
    return HttpResponse.json(status, {"error": reason})


def _answer_server_errors_in_json() -> None:
    try:
        import flask
        from werkzeug.exceptions import HTTPException
    except ImportError:  # not under functions-framework
        return
    if not flask.has_app_context():
        return

    def as_json(exc: HTTPException) -> tuple[bytes, int, dict[str, str]]:
        request = flask.request
        response = http_error_response(exc.code or 500, request.method, request.path, exc.description)
        headers = dict(response.headers)
        allowed = getattr(exc, "valid_methods", None)
        if exc.code == 405 and allowed:
            headers["Allow"] = ", ".join(allowed)
        return response.body, response.status, headers

    # Code-specific handlers (functions-framework's own 500) still come first.
    flask.current_app.register_error_handler(HTTPException, as_json)
