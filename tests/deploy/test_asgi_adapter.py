"""shared.runtime.asgi: the func-python instance contract around a FunctionApp, driven by raw ASGI."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from shared.runtime.asgi import KnFuncFunction, load_function_app
from shared.runtime.verdict import HttpResponse


@dataclass
class RecordingApp:
    """Stands in for a FunctionApp: records what the adapter hands it."""

    response: HttpResponse = field(
        default_factory=lambda: HttpResponse(202, b"accepted", {"Content-Type": "text/plain"})
    )
    calls: list[tuple[str, str, dict[str, str], bytes, str]] = field(default_factory=list)
    closed: bool = False
    healthy: bool = True

    def handle_http(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        self.calls.append((method, path, dict(headers), body, threading.current_thread().name))
        return self.response

    def alive(self) -> tuple[bool, str]:
        return self.healthy, "serving" if self.healthy else "event loop wedged"

    def ready(self) -> tuple[bool, str]:
        return self.healthy, "database reachable" if self.healthy else "database unreachable"

    def close(self) -> None:
        self.closed = True


def drive(instance: KnFuncFunction, scope: dict[str, Any], chunks: list[dict[str, Any]]) -> list[Mapping[str, Any]]:
    """Run one ASGI request through `instance.handle`; return the messages it sent."""
    sent: list[Mapping[str, Any]] = []
    incoming = list(chunks)

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: Mapping[str, Any]) -> None:
        sent.append(message)

    asyncio.run(instance.handle(scope, receive, send))
    return sent


def http_scope(
    method: str = "POST", path: str = "/", headers: list[tuple[bytes, bytes]] | None = None
) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "headers": headers or [], "query_string": b""}


def test_binary_cloudevent_reaches_the_app_and_its_verdict_is_returned() -> None:
    app = RecordingApp()
    headers = [
        (b"ce-specversion", b"1.0"),
        (b"ce-id", b"partition:0/offset:7"),
        (
            b"ce-source",
            b"/apis/v1/namespaces/price-crawler/kafkasources/price-request-source#price-crawler.price.request",
        ),
        (b"ce-type", b"dev.knative.kafka.event"),
        (b"content-type", b"application/json"),
    ]
    sent = drive(
        KnFuncFunction(app),
        http_scope(headers=headers),
        [
            {"type": "http.request", "body": b'{"job_type":', "more_body": True},
            {"type": "http.request", "body": b' "price"}'},
        ],
    )
    ((method, path, seen_headers, body, thread),) = app.calls
    assert (method, path, body) == ("POST", "/", b'{"job_type": "price"}')
    assert seen_headers["ce-id"] == "partition:0/offset:7" and seen_headers["content-type"] == "application/json"
    assert thread != threading.main_thread().name, "the blocking handler must not run on the event loop"
    assert sent[0] == {"type": "http.response.start", "status": 202, "headers": [(b"content-type", b"text/plain")]}
    assert sent[1] == {"type": "http.response.body", "body": b"accepted"}


def test_repeated_headers_are_joined() -> None:
    app = RecordingApp()
    drive(
        KnFuncFunction(app),
        http_scope(headers=[(b"x-a", b"1"), (b"x-a", b"2")]),
        [{"type": "http.request", "body": b""}],
    )
    assert app.calls[0][2]["x-a"] == "1,2"


def test_metrics_path_goes_to_the_app() -> None:
    app = RecordingApp(response=HttpResponse(200, b"# HELP", {"Content-Type": "text/plain; version=0.0.4"}))
    sent = drive(KnFuncFunction(app), http_scope("GET", "/metrics"), [{"type": "http.request", "body": b""}])
    assert app.calls[0][:2] == ("GET", "/metrics")
    assert sent[0]["status"] == 200


def test_client_gone_before_body_sends_nothing() -> None:
    app = RecordingApp()
    sent = drive(KnFuncFunction(app), http_scope(), [{"type": "http.disconnect"}])
    assert sent == [] and app.calls == []


def test_non_http_scope_is_refused() -> None:
    with pytest.raises(ValueError, match="websocket"):
        drive(KnFuncFunction(RecordingApp()), {"type": "websocket"}, [])


def test_health_and_lifecycle_delegate_to_the_app() -> None:
    app = RecordingApp(healthy=False)
    instance = KnFuncFunction(app)
    instance.start({"K_SERVICE": "price"})
    assert instance.alive() == (False, "event loop wedged")
    # Readiness is the app's, checked off the event loop: the answer follows shortly after start.
    deadline = time.monotonic() + 5
    while instance.ready() != (False, "database unreachable") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert instance.ready() == (False, "database unreachable")
    instance.stop()
    assert app.closed


def test_load_function_app_requires_an_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "fn_without_app.py").write_text(
        "import functions_framework\n\n@functions_framework.http\ndef price(request):\n    return 'ok'\n"
    )
    (tmp_path / "fn_with_app.py").write_text(
        "import functions_framework\n"
        "class App:\n    def handle_http(self, method, path, headers, body):\n        return None\n"
        "app = App()\n\n@functions_framework.http\ndef price(request):\n    return 'ok'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(TypeError, match="must define `app`"):
        load_function_app("fn_without_app")
    assert type(load_function_app("fn_with_app")).__name__ == "App"
    for name in ("fn_without_app", "fn_with_app"):
        sys.modules.pop(name, None)
