"""Test helpers of the eventing tests: a real HTTP sink that records requests and answers a script."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class RecordedRequest:
    """One request a sink received."""

    at: float  # time.monotonic() on arrival
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes
    status: int | None = None  # what the sink answered
    peer: tuple[str, int] | None = None  # the client's address: one per connection

    def header(self, name: str) -> str | None:
        """Last value of a header (case-insensitive)."""
        found = None
        for key, value in self.headers:
            if key.lower() == name.lower():
                found = value
        return found

    @property
    def ce(self) -> dict[str, str]:
        """The ce-* headers, prefix removed, names lower-cased."""
        return {k.lower()[3:]: v for k, v in self.headers if k.lower().startswith("ce-")}


@dataclass
class Reply:
    """A scripted answer."""

    status: int = 200
    body: bytes = b""
    headers: Sequence[tuple[str, str]] = ()
    delay: float = 0.0
    hang_up: bool = False  # read the request, then close the connection without answering


@dataclass
class RecordingSink:
    """A threaded HTTP server recording every request and answering from a script.

    `script` is a list of replies used in order (the last one repeats) or a callable
    (request index, request) -> Reply.
    """

    script: list[Reply] | Callable[[int, RecordedRequest], Reply] = field(default_factory=lambda: [Reply()])
    requests: list[RecordedRequest] = field(default_factory=list)
    max_concurrency: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Condition()
        self._active = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = RecordedRequest(
                    time.monotonic(), "POST", self.path, list(self.headers.items()), body, peer=self.client_address
                )
                reply = sink._arrive(request)
                try:
                    if reply.delay:
                        time.sleep(reply.delay)
                finally:
                    sink._leave()  # before answering: the client cannot send its next request earlier
                if reply.hang_up:  # as a server closing a keep-alive connection the request came on
                    request.status = None
                    self.close_connection = True
                    return
                self.send_response(reply.status)
                for name, value in reply.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, *args: object) -> None:
                return

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # the default backlog of 5 drops bursts of connections
            daemon_threads = True

        self._server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def _arrive(self, request: RecordedRequest) -> Reply:
        with self._lock:
            index = len(self.requests)
            self.requests.append(request)
            self._active += 1
            self.max_concurrency = max(self.max_concurrency, self._active)
            self._lock.notify_all()
        reply = self.script(index, request) if callable(self.script) else self.script[min(index, len(self.script) - 1)]
        request.status = reply.status
        return reply

    def _leave(self) -> None:
        with self._lock:
            self._active -= 1

    def wait_for(self, count: int, timeout: float = 20.0) -> list[RecordedRequest]:
        """Block until at least `count` requests arrived; fail the test otherwise."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.requests) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    pytest.fail(f"sink got {len(self.requests)} request(s), expected {count} within {timeout}s")
                self._lock.wait(remaining)
            return list(self.requests)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
