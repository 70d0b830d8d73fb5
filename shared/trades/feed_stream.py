"""The WebSocket feed's protocol, pure: who is asking, from which cursor, and what each message says.

`WS /ws/trades/{user_id}?cursor=<n>` (docs/trades.md, "The WebSocket feed"). The caller's
bearer token comes in the `Authorization` header (any client but a browser) or, since a
browser's WebSocket cannot set headers, as a subprotocol `bearer.<token>` offered beside
`trades.feed.v1`; the server answers with `trades.feed.v1` only, so the token is never echoed,
and it is never in the URL, whose query ends up in access logs. A connection whose path names
another user than the token's subject is refused at the handshake (HTTP 403), as is a missing,
bad or expired token (HTTP 401) and a bad cursor (HTTP 400).

Each message is one feed item as `GET /api/trades/feed` lists it, one JSON text frame:
`{"cursor": "<seq>", "kind": "trade"|"alert", "id": ..., "record": {...}}`; a client that
reconnects with the cursor of the last message it handled misses nothing and sees nothing twice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote

import jwt

from shared.trades.auth import Unauthenticated, authenticated_user, header
from shared.trades.contracts import USER_ID_TEXT
from shared.trades.feed import FeedItem
from shared.trades.settings import TradesSettings

WS_PREFIX = "/ws/trades/"
# The subprotocol a client offers and the server selects; `bearer.<token>` carries the token.
FEED_SUBPROTOCOL = "trades.feed.v1"
BEARER_SUBPROTOCOL_PREFIX = "bearer."
_USER_ID = re.compile(USER_ID_TEXT)
_CURSOR = re.compile(r"[0-9]{1,18}")


class FeedRefused(Exception):
    """The handshake is refused with `status`; `reason` is safe to show (it never quotes the token)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class FeedRequest:
    """An accepted feed connection: whose feed, after which cursor, the subprotocol to answer with."""

    user_id: str
    after: int
    subprotocol: str | None
    # the token's `exp` (epoch seconds): the server closes the stream (4401) once it passed
    expires_at: float


def offered_subprotocols(headers: Mapping[str, str]) -> list[str]:
    """The subprotocols of `Sec-WebSocket-Protocol`, in the client's order."""
    value = header(headers, "Sec-WebSocket-Protocol") or ""
    return [part.strip() for part in value.split(",") if part.strip()]


def feed_request(
    path: str, query: str, headers: Mapping[str, str], settings: TradesSettings, subprotocols: Sequence[str] = ()
) -> FeedRequest:
    """Check a feed handshake: the path's user is the token's subject and the cursor is a cursor.

    `subprotocols` are those the client offered (ASGI lists them in the scope; without them
    they are read from the header). Raises `FeedRefused` (400, 401, 403, 404) saying why.
    """
    if not path.startswith(WS_PREFIX):
        raise FeedRefused(404, "the feed is at /ws/trades/{user_id}")
    wanted = unquote(path[len(WS_PREFIX) :].rstrip("/"))
    if not _USER_ID.fullmatch(wanted):
        raise FeedRefused(404, "no such user id")
    offered = list(subprotocols) or offered_subprotocols(headers)
    tokens = [p[len(BEARER_SUBPROTOCOL_PREFIX) :] for p in offered if p.startswith(BEARER_SUBPROTOCOL_PREFIX)]
    if len(tokens) > 1:
        raise FeedRefused(401, "offer one bearer.<token> subprotocol")
    if tokens and FEED_SUBPROTOCOL not in offered:
        # A browser fails a connection whose answer selects none of its offers: it must offer ours.
        raise FeedRefused(400, f"offer the {FEED_SUBPROTOCOL} subprotocol beside bearer.<token>")
    auth_headers: Mapping[str, str] = {"Authorization": f"Bearer {tokens[0]}"} if tokens else headers
    try:
        user_id = authenticated_user(auth_headers, settings)
    except Unauthenticated as exc:
        raise FeedRefused(401, exc.reason) from None
    if user_id != wanted:
        raise FeedRefused(403, "a caller follows only its own feed")
    params = dict(parse_qsl(query, keep_blank_values=True))
    unknown = sorted(set(params) - {"cursor"})
    if unknown:
        # A token in the query would be logged by every proxy: refuse rather than ignore it.
        raise FeedRefused(400, f"unknown query parameter {unknown[0][:40]!r}; only cursor is taken")
    after = 0
    if "cursor" in params:
        if not _CURSOR.fullmatch(params["cursor"]):
            raise FeedRefused(400, "cursor must be the cursor of a message received (or a next_cursor)")
        after = int(params["cursor"])
    subprotocol = FEED_SUBPROTOCOL if FEED_SUBPROTOCOL in offered else None
    return FeedRequest(user_id, after, subprotocol, _expiry(auth_headers) + settings.token_leeway_seconds)


def _expiry(auth_headers: Mapping[str, str]) -> float:
    # Read only after authenticated_user verified the token (signature, exp required).
    token = (header(auth_headers, "Authorization") or "").strip().partition(" ")[2].strip()
    return float(jwt.decode(token, options={"verify_signature": False})["exp"])


def item_message(item: FeedItem) -> str:
    """The text frame of one feed item (the same object `GET /api/trades/feed` lists)."""
    return json.dumps(
        {"cursor": str(item.seq), "kind": item.kind, "id": item.item_id, "record": item.record},
        separators=(",", ":"),
        ensure_ascii=False,
    )
