"""A tiny HTTP endpoint of the plane: GET /health, GET /status (JSON counters), GET /metrics (Prometheus)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)


class StatusServer:
    """Serves `health()` on /health (200 ok, 503 degraded), `metrics()` as JSON on /status and
    the process's Prometheus exposition on /metrics."""

    def __init__(
        self, host: str, port: int, *, health: Callable[[], dict[str, Any]], metrics: Callable[[], dict[str, Any]]
    ):
        routes = {"/health": health, "/status": metrics}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0].rstrip("/") or "/"
                if path == "/metrics":
                    self._prometheus()
                    return
                route = routes.get(path)
                if route is None:
                    self._reply(404, {"error": "not found", "paths": sorted(routes)})
                    return
                try:
                    payload = route()
                except Exception as exc:  # a status page must not take the plane down
                    log.exception("status endpoint %s failed", self.path)
                    self._reply(500, {"error": str(exc)})
                    return
                status = 503 if payload.get("status") == "degraded" else 200
                self._reply(status, payload)

            def _prometheus(self) -> None:
                from shared.observability.metrics import CONTENT_TYPE, render_prometheus

                body = render_prometheus()
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _reply(self, status: int, payload: dict[str, Any]) -> None:
                body = json.dumps(payload, sort_keys=True).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.5}, name="eventing-status", daemon=True
        )

    @property
    def port(self) -> int:
        """The bound port (useful when configured as 0)."""
        return self._server.server_address[1]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
