"""The kn func entry: a `FunctionApp` behind func-python's instance contract (ASGI).

kn func's Python scaffolding (func-python 0.8.x) does `from function import new`
and serves the returned instance with hypercorn. func.yaml says `invoke: http`,
so func-python passes the raw ASGI request to `handle` and never decodes the
CloudEvent itself: parsing stays in `shared.runtime.cloudevent_http`, the same
code the functions-framework entry runs, and neither cloudevents 1.x nor 2.x
types reach the domain. func-python answers `/health/liveness` and
`/health/readiness` itself from `alive()` / `ready()`; every other path
(the CloudEvent POST, `/metrics`) comes to `handle`. See docs/kn-func.md.

This module imports nothing from func-python, so it is tested in the
functions-framework environment as well.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import logging
import sys
import types
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from shared.runtime.readiness import DEFAULT_MAX_AGE_SECONDS, BackgroundReadiness

if TYPE_CHECKING:
    from shared.runtime.app import FunctionApp
    from shared.runtime.verdict import HttpResponse

log = logging.getLogger(__name__)

Scope = Mapping[str, Any]
Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]


class ServedApp(Protocol):
    """What the adapter needs of an application: a `FunctionApp` is one (`close()` is optional)."""

    def handle_http(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> HttpResponse: ...

    def alive(self) -> tuple[bool, str]: ...

    def ready(self) -> tuple[bool, str]: ...


class KnFuncFunction:
    """A func-python function instance delegating to a framework-neutral `FunctionApp`."""

    def __init__(self, app: ServedApp, *, readiness_max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS) -> None:
        self._app = app
        # func-python calls ready() on its event loop: the dependency pings run off it.
        self._readiness = BackgroundReadiness(app.ready, max_age_seconds=readiness_max_age_seconds)

    @property
    def app(self) -> ServedApp:
        """The wrapped application."""
        return self._app

    def start(self, cfg: Mapping[str, str]) -> None:
        """Called by func-python at ASGI lifespan startup with a copy of the environment.

        Settings are read from the environment by `shared.config`, so `cfg` is not
        needed; the app opens its connections lazily on the first event.
        """
        log.info("kn func instance started", extra={"function": cfg.get("K_SERVICE", "")})
        self._readiness.refresh()

    def stop(self) -> None:
        """Called by func-python at ASGI lifespan shutdown: release the app's resources."""
        close = getattr(self._app, "close", None)
        if callable(close):
            close()

    def alive(self) -> tuple[bool, str]:
        """Liveness for func-python's `/health/liveness` (False → HTTP 500, pod restarted)."""
        # The app's own (ok, reason): a bare truth test of that tuple would always say alive.
        return self._app.alive()

    def ready(self) -> tuple[bool, str]:
        """Readiness for func-python's `/health/readiness` (False → HTTP 500, no traffic).

        Answered at once from the latest dependency check (`BackgroundReadiness`), which
        runs on a worker thread: a slow database must not stall the requests in flight.
        """
        return self._readiness.current()

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI HTTP request through `FunctionApp.handle_http`.

        The handler is synchronous (blocking HTTP and database clients), so it runs
        in a worker thread and the event loop keeps serving health probes.
        """
        if scope.get("type") != "http":
            raise ValueError(f"only ASGI http scopes are served, got {scope.get('type')!r}")
        body = await _read_body(receive)
        if body is None:  # the client went away before sending its body
            return
        response = await asyncio.to_thread(
            self._app.handle_http, scope["method"], _target(scope), request_headers(scope), body
        )
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": response.body})


def request_headers(scope: Scope) -> dict[str, str]:
    """The request's headers by lower-cased name (HTTP and WebSocket scopes alike)."""
    # ASGI gives lower-cased byte pairs; repeated headers are joined as HTTP allows.
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def load_function_app(module_name: str) -> FunctionApp:
    """Import a function's `main` module and return its `app` (a `FunctionApp`).

    `main.py` also carries the functions-framework entry (`@functions_framework.http`).
    functions-framework needs cloudevents 1.x and cannot be installed beside
    func-python (cloudevents 2.x), so in a kn func image the decorator is replaced by
    an inert one: the decorated function is never called there, `app` is served.
    """
    if "functions_framework" not in sys.modules and importlib.util.find_spec("functions_framework") is None:
        sys.modules["functions_framework"] = _inert_functions_framework()
    module = importlib.import_module(module_name)
    app = getattr(module, "app", None)
    if app is None or not callable(getattr(app, "handle_http", None)):
        raise TypeError(f"{module_name} must define `app`, a shared.runtime.app.FunctionApp")
    return app


def new_instance(module_name: str) -> KnFuncFunction:
    """The `new()` factory body of a prepared kn func project (see scripts/prepare_function.py)."""
    return KnFuncFunction(load_function_app(module_name))


def _inert_functions_framework() -> types.ModuleType:
    module = types.ModuleType(
        "functions_framework", "Stand-in for functions-framework in kn func images: decorators are inert."
    )

    def _identity(func: Callable[..., Any]) -> Callable[..., Any]:
        return func

    module.http = _identity  # type: ignore[attr-defined]
    module.cloud_event = _identity  # type: ignore[attr-defined]
    return module


def _target(scope: Scope) -> str:
    """Path (encoded again) plus query string, as `ff_entry` hands it on (the quotes API reads both)."""
    from shared.runtime.app import request_target  # at call time, as FunctionApp itself

    query = scope.get("query_string") or b""
    return request_target(scope["path"], query.decode("latin-1"))
