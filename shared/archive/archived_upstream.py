"""The live upstream clients, answered from bronze: how replay re-runs a pipeline's fetches.

Replaying a trending or audit job runs the live code — the same clients (batching, merging
of batches, in-body error codes, retries), normalizers and source order — against an httpx
transport that answers each request with the response archived for that very request
(source, path, parameters) in the job's attempt, in the order the live job received them:
a 503 then a 200 replays as a retry that succeeds. Nothing goes over the network and
nothing waits: sleeping moves a virtual clock.

- A request the attempt has no response for is one the live request got no answer to (a
  timeout, a refused connection; or the replay asked something the live job did not): it
  fails like a connection error and is counted in `unanswered`.
- Responses the live clients cache across jobs (the coin list, the stablecoin category,
  the USDT/USD rate, Binance's listing) are answered from earlier archived ones through
  `earlier`, as the live cache would have.
- Archived responses nobody asked for are in `unused()`: with `unanswered`, a sign that the
  replay did not follow the live job's path.
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone

import httpx

from shared.archive.bronze import ArchivedResponse
from shared.config import Settings
from shared.upstream import UpstreamClients

APIS = ("binance", "coingecko", "dexscreener", "geckoterminal", "goplus")

EarlierResponse = Callable[[str], "ArchivedResponse | None"]
"""Request key -> the archived response a live cache would have served for it, if any."""


def request_key(source: str, path: str, params: Iterable[tuple[str, str]]) -> str:
    """Identity of a request: API, path and the query parameters as sent (order-insensitive)."""
    return json.dumps([source, path, sorted(params)])


def archived_request_key(record: ArchivedResponse) -> str:
    """The request key of an archived response (list parameters were sent repeated)."""
    items = [
        (name, str(v)) for name, value in record.params.items() for v in (value if isinstance(value, list) else [value])
    ]
    return request_key(record.source, record.path, items)


class _VirtualTime:
    """Monotonic and wall clocks for the replayed clients: sleeping advances them, never waits."""

    def __init__(self, wall_start: datetime):
        self.elapsed = 0.0
        self.wall_start = wall_start.timestamp()

    def monotonic(self) -> float:
        return self.elapsed

    def wall(self) -> float:
        # Retry-After as an HTTP date is read against the time the live job had.
        return self.wall_start + self.elapsed

    def sleep(self, seconds: float) -> None:
        self.elapsed += max(0.0, seconds)


class ArchivedUpstream:
    """`UpstreamClients` (in `clients`) whose every request is answered from one job attempt's archive."""

    def __init__(
        self, settings: Settings, responses: Sequence[ArchivedResponse], earlier: EarlierResponse = lambda key: None
    ):
        self._answers: dict[str, deque[ArchivedResponse]] = defaultdict(deque)
        for record in responses:
            self._answers[archived_request_key(record)].append(record)
        self._earlier = earlier
        # An API is recognised by the base URL the request went to (longest first).
        bases = [(httpx.URL(getattr(settings, api).base_url), api) for api in APIS]
        self._bases = sorted(
            ((u.scheme, u.host, u.port, u.path.rstrip("/"), api) for u, api in bases), key=lambda base: -len(base[3])
        )
        self.unanswered: list[str] = []
        start = min((r.fetched_at for r in responses), default=datetime.now(timezone.utc))
        time = _VirtualTime(start)
        self.clients = UpstreamClients(
            settings,
            transport=httpx.MockTransport(self._answer),
            clock=time.monotonic,
            wall_clock=time.wall,
            sleep=time.sleep,
        )

    def _answer(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        params = list(url.params.multi_items())
        candidates = [
            (api, url.path[len(path) :] or "/")
            for scheme, host, port, path, api in self._bases
            if (url.scheme, url.host, url.port) == (scheme, host, port) and url.path.startswith(path + "/")
        ]
        for api, path in candidates:  # one base URL for two APIs (a proxy): whichever has the answer
            queue = self._answers.get(request_key(api, path, params))
            if queue:
                return _response(queue.popleft(), request)
        for api, path in candidates:
            record = self._earlier(request_key(api, path, params))
            if record is not None:
                return _response(record, request)
        self.unanswered.append(f"GET {url}")
        raise httpx.ConnectError("no archived response for this request: the live request got none", request=request)

    def unused(self) -> list[ArchivedResponse]:
        """Archived responses of the attempt that no replayed request asked for."""
        return [record for queue in self._answers.values() for record in queue]

    def close(self) -> None:
        """Close the clients (nothing is open but their pools)."""
        self.clients.close()


def _response(record: ArchivedResponse, request: httpx.Request) -> httpx.Response:
    return httpx.Response(record.status, headers=record.headers, content=record.body, request=request)
