"""The trade_feed function: `WS /ws/trades/{user_id}` pushes a user's feed as it commits (ASGI).

functions-framework serves HTTP only (Flask/gunicorn; its `--asgi` mode routes HTTP requests
too, never a WebSocket scope), so the feed is a function of its own on an ASGI server: uvicorn
under `make up`, func-python's ASGI server on the cluster. `TradeFeedFunction` is a
`KnFuncFunction` (health, readiness and metrics from `TradeFeedApp` over HTTP) that also serves
WebSocket scopes, and is itself an ASGI application (lifespan included) for uvicorn.

A connection is checked at the handshake (`feed_stream.feed_request`; refused with an HTTP
status through the ASGI denial-response extension, or a plain 403 where the server lacks it),
then reads the user's `trade_feed` rows after its cursor: the backlog in batches, then one
indexed read every `TRADES_FEED_POLL_SECONDS` while idle. The feed's writers make one user's
seqs visible in increasing order (shared/trades/feed.py), so "after the last seq sent" never
skips nor repeats an item. Polling rather than LISTEN/NOTIFY: no trigger, no migration, no
connection held per client (each read borrows one from the pool); its cost is one index probe
per open connection and interval.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared.errors import BadMessage
from shared.events import InboundEvent
from shared.observability.logging import register_secret
from shared.runtime.app import FunctionApp
from shared.runtime.asgi import KnFuncFunction, Receive, Scope, Send, request_headers
from shared.runtime.resources import Resources
from shared.trades import feed
from shared.trades.feed_stream import FeedRefused, FeedRequest, feed_request, item_message
from shared.trades.settings import TradesSettings

log = logging.getLogger(__name__)

# WebSocket close codes of the feed (4000-4999 are the application's, RFC 6455 §7.4.2).
CLOSE_TOKEN_EXPIRED = 4401
CLOSE_FEED_UNAVAILABLE = 1011  # the database failed: reconnect with the last cursor


def _no_events(event: InboundEvent, resources: Resources) -> dict[str, Any]:
    raise BadMessage("the trade_feed function serves WS /ws/trades/{user_id}; it takes no CloudEvents")


@dataclass
class TradeFeedApp(FunctionApp):
    """The feed function's application: settings, the database pool, health and metrics over HTTP."""

    name: str = "trade_feed"
    handler: Callable[[InboundEvent, Resources], dict[str, Any]] = _no_events
    needs_database: bool = True
    needs_kafka: bool = False
    resources: Resources = field(default_factory=Resources)
    trades: TradesSettings = field(default_factory=TradesSettings)

    def __post_init__(self) -> None:
        super().__post_init__()
        register_secret(self.trades.token_key.get_secret_value())

    def read_feed(self, user_id: str, after: int) -> list[feed.FeedItem]:
        """The user's next items after `after` (at most `TRADES_FEED_BATCH_ITEMS`); blocking."""
        with self.resources.db.connection() as conn:
            return feed.read(conn, user_id, after=after, limit=self.trades.feed_batch_items)


class TradeFeedFunction(KnFuncFunction):
    """HTTP through the `FunctionApp`, WebSocket feeds itself; an ASGI app for uvicorn as well."""

    def __init__(self, app: TradeFeedApp) -> None:
        super().__init__(app)
        self._feed_app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI entry under uvicorn (func-python calls `handle`, `start` and `stop` itself)."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A WebSocket scope is a feed connection; anything else goes to the HTTP adapter."""
        if scope.get("type") == "websocket":
            await self._serve_feed(scope, receive, send)
            return
        await super().handle(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.start({"K_SERVICE": self._feed_app.name})
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.to_thread(self.stop)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _serve_feed(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        try:
            request = feed_request(
                scope.get("path", ""),
                (scope.get("query_string") or b"").decode("latin-1"),
                request_headers(scope),
                self._feed_app.trades,
                scope.get("subprotocols") or (),
            )
        except FeedRefused as refused:
            log.info("feed handshake refused", extra={"status": refused.status, "reason": refused.reason})
            await _refuse(scope, send, refused)
            return
        await send({"type": "websocket.accept", "subprotocol": request.subprotocol})
        log.info("feed opened", extra={"user_id": request.user_id, "cursor": request.after})
        gone = asyncio.Event()
        watcher = asyncio.create_task(_watch_disconnect(receive, gone))
        try:
            await self._stream(request, send, gone)
        except OSError:  # the client went away while a frame was being sent
            pass
        finally:
            watcher.cancel()
        log.info("feed closed", extra={"user_id": request.user_id})

    async def _stream(self, request: FeedRequest, send: Send, gone: asyncio.Event) -> None:
        after, poll = request.after, self._feed_app.trades.feed_poll_seconds
        while not gone.is_set():
            if time.time() > request.expires_at:
                await send({"type": "websocket.close", "code": CLOSE_TOKEN_EXPIRED, "reason": "the token has expired"})
                return
            try:
                items = await asyncio.to_thread(self._feed_app.read_feed, request.user_id, after)
            except Exception:
                log.exception("feed read failed", extra={"user_id": request.user_id})
                await send({"type": "websocket.close", "code": CLOSE_FEED_UNAVAILABLE, "reason": "feed unavailable"})
                return
            for item in items:
                await send({"type": "websocket.send", "text": item_message(item)})
                after = item.seq
            if len(items) < self._feed_app.trades.feed_batch_items:
                try:  # caught up: wait for the next poll, or the client leaving
                    await asyncio.wait_for(gone.wait(), poll)
                except TimeoutError:
                    pass


async def _watch_disconnect(receive: Receive, gone: asyncio.Event) -> None:
    # Client frames carry nothing the feed needs; only their end matters.
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            gone.set()
            return


async def _refuse(scope: Scope, send: Send, refused: FeedRefused) -> None:
    """An HTTP answer to the handshake when the server offers it, else a close before accept (403)."""
    if "websocket.http.response" in (scope.get("extensions") or {}):
        body = json.dumps({"error": refused.reason}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "websocket.http.response.start", "status": refused.status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
        return
    await send({"type": "websocket.close", "code": 1008})
