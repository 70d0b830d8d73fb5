"""Test doubles for the outside world only: recorded upstream answers over `httpx.MockTransport`.

Used by this package's tests and by any function test that needs an upstream API: the
real recorded samples in `tests/fixtures/upstream/` (provenance of each in its INDEX.md;
override the folder with UPSTREAM_SAMPLES_DIR) are served for the paths a test routes, with scripted faults.
Nothing here fakes our own code.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx


def samples_dir() -> Path:
    """The folder with the recorded upstream samples."""
    configured = os.environ.get("UPSTREAM_SAMPLES_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "upstream"


def sample_bytes(name: str) -> bytes:
    """The raw bytes of one recorded sample, e.g. "binance.ticker_price.symbols.json"."""
    return (samples_dir() / name).read_bytes()


@dataclass(frozen=True)
class Reply:
    """One scripted HTTP answer; a fresh `httpx.Response` is built for every request."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def sample(cls, name: str, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
        """A recorded sample served as the body."""
        return cls(status, sample_bytes(name), {"content-type": "application/json", **(headers or {})})

    @classmethod
    def json(cls, document: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
        """A JSON document written by the test (for error envelopes the samples lack)."""
        body = json.dumps(document).encode()
        return cls(status, body, {"content-type": "application/json", **(headers or {})})

    def response(self) -> httpx.Response:
        return httpx.Response(self.status, content=self.body, headers=dict(self.headers))


Handler = Callable[[httpx.Request], Reply | httpx.Response]
Answer = Reply | BaseException | Handler
Script = Answer | Sequence[Answer]


class ReplayTransport(httpx.MockTransport):
    """Routes each request by the longest matching path prefix to a script of answers.

    A script is one answer, or a sequence served in order whose last item repeats. An
    answer is a `Reply`, an exception to raise (e.g. `httpx.ReadTimeout`), or a callable
    taking the request. Every request is kept in `requests`; unrouted paths get 404.
    """

    def __init__(self, routes: Mapping[str, Script] | None = None):
        super().__init__(self._handle)
        self.requests: list[httpx.Request] = []
        self._routes: dict[str, list[Any]] = {}
        self._served: dict[str, int] = {}
        self._lock = threading.Lock()
        for prefix, script in (routes or {}).items():
            self.route(prefix, script)

    def route(self, prefix: str, script: Script) -> ReplayTransport:
        """Answer requests whose path starts with `prefix` from `script` (replacing any earlier one)."""
        items = list(script) if isinstance(script, Sequence) else [script]
        if not items:
            raise ValueError("a script needs at least one answer")
        with self._lock:
            self._routes[prefix] = items
            self._served[prefix] = 0
        return self

    def paths(self) -> list[str]:
        """The paths requested so far, in order."""
        return [r.url.path for r in self.requests]

    def _handle(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
            matches = [p for p in self._routes if request.url.path.startswith(p)]
            if not matches:
                return httpx.Response(404, json={"error": f"no route for {request.url.path}"})
            prefix = max(matches, key=len)
            items = self._routes[prefix]
            answer = items[min(self._served[prefix], len(items) - 1)]
            self._served[prefix] += 1
        if isinstance(answer, BaseException):
            raise answer
        if callable(answer) and not isinstance(answer, Reply):
            answer = answer(request)
        return answer.response() if isinstance(answer, Reply) else answer


class FakeClock:
    """Monotonic clock, wall clock and sleep that only move when told (or when slept on)."""

    def __init__(self, wall_start: float = 1_750_000_000.0):
        self.elapsed = 0.0
        self.wall_start = wall_start
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.elapsed

    def time(self) -> float:
        return self.wall_start + self.elapsed

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.elapsed += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        self.elapsed += seconds

    def http_options(self) -> dict[str, Any]:
        """Keyword arguments that make an `UpstreamHttp` (or a client's `from_settings`) use this clock."""
        return {"clock": self.monotonic, "wall_clock": self.time, "sleep": self.sleep}
