"""Request counters per API, path, route and status, so tests can assert how a client behaves
(e.g. "exactly one Binance ticker request per tick")."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class RequestStats:
    """Thread-safe counters of the upstream requests the market received (admin calls excluded)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._paths: Counter[tuple[str, str]] = Counter()
        self._routes: Counter[tuple[str, str]] = Counter()
        self._statuses: Counter[tuple[str, str]] = Counter()

    def record_request(self, api: str, path: str, route: str) -> None:
        """Count one request: `path` as sent (no query), `route` its template ('/api/v3/coins/{id}')."""
        with self._lock:
            self._paths[(api, path)] += 1
            self._routes[(api, route)] += 1

    def record_outcome(self, api: str, outcome: int | str) -> None:
        """Count how a request ended: an HTTP status, or 'timeout' / 'truncated' for dropped connections."""
        with self._lock:
            self._statuses[(api, str(outcome))] += 1

    def count(self, api: str, path: str | None = None) -> int:
        """Requests to `api`, optionally only to `path` (a literal path or a route template)."""
        with self._lock:
            if path is None:
                return sum(n for (a, _), n in self._paths.items() if a == api)
            return self._paths.get((api, path), 0) or self._routes.get((api, path), 0)

    def snapshot(self) -> dict[str, Any]:
        """{"total": n, "apis": {api: {"total", "paths", "routes", "statuses"}}}, JSON-ready."""
        with self._lock:
            apis: dict[str, dict[str, Any]] = {}
            for (api, path), n in self._paths.items():
                entry = apis.setdefault(api, {"total": 0, "paths": {}, "routes": {}, "statuses": {}})
                entry["total"] += n
                entry["paths"][path] = n
            for (api, route), n in self._routes.items():
                apis[api]["routes"][route] = n
            for (api, status), n in self._statuses.items():
                apis.setdefault(api, {"total": 0, "paths": {}, "routes": {}, "statuses": {}})["statuses"][status] = n
        return {"total": sum(a["total"] for a in apis.values()), "apis": apis}

    def reset(self) -> None:
        """Forget every count."""
        with self._lock:
            self._paths.clear()
            self._routes.clear()
            self._statuses.clear()
