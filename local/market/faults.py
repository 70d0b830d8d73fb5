"""Injected faults: what an upstream does on a bad day, on demand.

A fault matches requests by API and path and applies to the next `count` of them (or to
every one until cleared). Kinds:

- `403`, `429`, `418`, `451`, `500`, `502`, `503`: that HTTP status with the API's own error
  body (Binance's 403 is its WAF block, an HTML page);
  `Retry-After` on 429/418 (default 1 s) and on 503 when given; 502 is a gateway's HTML page.
  GoPlus answers a rate limit as it really does: HTTP 200 with `code` 4029.
- `timeout`: no response; the connection is held `hold_seconds` (default 30, longer than any
  sane client timeout), then closed.
- `malformed`: HTTP 200 whose body is not valid JSON.
- `truncated`: HTTP 200 announcing the full Content-Length; the connection closes after half.
- `empty`: HTTP 200 with an empty body.
- `html`: HTTP 200 with a firewall's challenge page (`text/html`), as a WAF or CDN in front of
  an API answers: not the API's answer at all (docs/resilience.md).
- `hostile`: the normal answer with every number (and numeric string) replaced by
  ``1e999999999`` and a NUL (``\\u0000``) appended to every other string: valid JSON, every
  item unusable, every text one PostgreSQL refuses (issue #22; `hostile_body`). Combine with
  a `429`/`418`/`503` fault's `retry_after` (any non-negative integer, e.g. 99999999) for a
  bogus Retry-After.
- `slow`: the normal response, `latency_ms` later (default 1000).

`path` is matched against the path after the API prefix, either literally
(`/api/v3/ticker/price`, `/api/v3/coins/bitcoin`) or as a route template
(`/api/v3/coins/{id}`); a trailing `*` matches a prefix. No `api`/`path` matches everything.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from dataclasses import asdict, dataclass
from typing import Any

_NUMBER_TEXT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")

APIS = ("binance", "coingecko", "dexscreener", "geckoterminal", "goplus", "lifi", "relay", "oneinch", "defillama")
STATUS_KINDS = ("403", "429", "418", "451", "500", "502", "503")
BODY_KINDS = ("malformed", "truncated", "empty", "hostile", "html")
HOSTILE_NUMBER = b"1e999999999"
_HOSTILE_PLACEHOLDER = "\x01hostile-number\x01"
FAULT_KINDS = (*STATUS_KINDS, "timeout", *BODY_KINDS, "slow")
UNTIL_CLEARED = ("until_cleared", "until cleared", "forever", "always")

DEFAULT_RETRY_AFTER = 1
DEFAULT_HOLD_SECONDS = 30.0
DEFAULT_SLOW_MS = 1000


@dataclass
class Fault:
    """One armed fault; `remaining` None means until cleared."""

    id: int
    kind: str
    api: str | None
    path: str | None
    remaining: int | None
    retry_after: int | None
    latency_ms: int
    hold_seconds: float
    applied: int = 0

    @property
    def status(self) -> int | None:
        """The HTTP status of a status-kind fault."""
        return int(self.kind) if self.kind in STATUS_KINDS else None

    def matches(self, api: str, path: str, route: str) -> bool:
        if self.api is not None and self.api != api:
            return False
        if self.path is None:
            return True
        if self.path.endswith("*"):
            prefix = self.path[:-1]
            return path.startswith(prefix) or route.startswith(prefix)
        return self.path in (path, route)

    def describe(self) -> dict[str, Any]:
        """JSON-ready view; `count` null means until cleared."""
        data = asdict(self)
        data["count"] = data.pop("remaining")
        return data


class FaultInjector:
    """The armed faults of one market. Thread-safe; the first matching fault wins."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(
        self,
        kind: str,
        api: str | None = None,
        path: str | None = None,
        count: int | str | None = 1,
        retry_after: int | None = None,
        latency_ms: int | None = None,
        hold_seconds: float | None = None,
    ) -> Fault:
        """Arm a fault (see the module doc). `count` None or "until_cleared" keeps it until cleared.

        Raises ValueError with the reason when an argument is invalid.
        """
        kind = str(kind)
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        if api is not None and api not in APIS:
            raise ValueError(f"unknown api {api!r}; expected one of {', '.join(APIS)}")
        if path is not None and (not isinstance(path, str) or not path.startswith("/")):
            raise ValueError(f"path must start with '/', got {path!r}")
        if count is None or (isinstance(count, str) and count.lower() in UNTIL_CLEARED):
            remaining = None
        elif isinstance(count, int) and not isinstance(count, bool) and count >= 1:
            remaining = count
        else:
            raise ValueError(f"count must be a positive integer or 'until_cleared', got {count!r}")
        if retry_after is not None and (
            not isinstance(retry_after, int) or isinstance(retry_after, bool) or retry_after < 0
        ):
            raise ValueError(f"retry_after must be a non-negative integer of seconds, got {retry_after!r}")
        if retry_after is None and kind in ("429", "418"):
            retry_after = DEFAULT_RETRY_AFTER
        latency = DEFAULT_SLOW_MS if latency_ms is None else latency_ms
        if not isinstance(latency, int) or isinstance(latency, bool) or latency < 0:
            raise ValueError(f"latency_ms must be a non-negative integer, got {latency_ms!r}")
        hold = DEFAULT_HOLD_SECONDS if hold_seconds is None else hold_seconds
        if not isinstance(hold, (int, float)) or isinstance(hold, bool) or hold < 0:
            raise ValueError(f"hold_seconds must be a non-negative number, got {hold_seconds!r}")
        fault = Fault(next(self._ids), kind, api, path, remaining, retry_after, latency, float(hold))
        with self._lock:
            self._faults.append(fault)
        return fault

    def add_from_json(self, spec: Any) -> Fault:
        """Arm a fault from the JSON body of POST /_sim/faults; ValueError names a bad field."""
        if not isinstance(spec, dict):
            raise ValueError("a fault must be a JSON object")
        allowed = {"kind", "api", "path", "count", "retry_after", "latency_ms", "hold_seconds"}
        unknown = set(spec) - allowed
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        if "kind" not in spec:
            raise ValueError("a fault needs a 'kind'")
        return self.add(**spec)

    def take(self, api: str, path: str, route: str) -> Fault | None:
        """The first fault matching this request, consuming one of its count; None if none."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(api, path, route):
                    fault.applied += 1
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining == 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def active(self) -> list[Fault]:
        """The faults still armed, oldest first."""
        with self._lock:
            return list(self._faults)

    def remove(self, fault_id: int) -> bool:
        """Disarm one fault; False when it was not armed."""
        with self._lock:
            for fault in self._faults:
                if fault.id == fault_id:
                    self._faults.remove(fault)
                    return True
        return False

    def clear(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._faults.clear()


def hostile_body(body: bytes) -> bytes:
    """The `hostile` damage of a JSON answer (module doc); a body that is no JSON is kept as is."""
    try:
        doc = json.loads(body)
    except ValueError:
        return body
    text = json.dumps(_hostile(doc))  # NUL leaves as the \u0000 escape an upstream would send
    return text.encode().replace(json.dumps(_HOSTILE_PLACEHOLDER).encode(), HOSTILE_NUMBER)


def _hostile(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER_TEXT.fullmatch(value.strip())):
        return _HOSTILE_PLACEHOLDER
    if isinstance(value, str):
        return value + "\x00"
    if isinstance(value, list):
        return [_hostile(item) for item in value]
    if isinstance(value, dict):
        return {key: _hostile(item) for key, item in value.items()}
    return value
