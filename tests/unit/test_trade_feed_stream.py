"""The WebSocket feed's handshake rules and messages (shared/trades/feed_stream.py), without infrastructure."""

from __future__ import annotations

import json
import time

import pytest
from pydantic import SecretStr

from shared.trades.auth import issue_token
from shared.trades.feed import FeedItem
from shared.trades.feed_stream import FEED_SUBPROTOCOL, FeedRefused, feed_request, item_message
from shared.trades.settings import TradesSettings

SETTINGS = TradesSettings(token_key=SecretStr("unit-key-" + "u" * 32), token_leeway_seconds=5)


def offer(user: str = "alice") -> list[str]:
    return [FEED_SUBPROTOCOL, f"bearer.{issue_token(SETTINGS, user)}"]


def refused(path: str, query: str = "", headers: dict[str, str] | None = None, subprotocols=()) -> tuple[int, str]:
    with pytest.raises(FeedRefused) as exc:
        feed_request(path, query, headers or {}, SETTINGS, subprotocols)
    return exc.value.status, exc.value.reason


def test_a_subprotocol_token_for_the_paths_user_is_accepted_from_its_cursor():
    request = feed_request("/ws/trades/alice", "cursor=42", {}, SETTINGS, offer())
    assert (request.user_id, request.after, request.subprotocol) == ("alice", 42, FEED_SUBPROTOCOL)
    assert time.time() + 3600 < request.expires_at <= time.time() + 3600 + 5 + 1  # exp + leeway


def test_the_subprotocols_are_read_from_the_header_when_the_server_does_not_list_them():
    headers = {"Sec-WebSocket-Protocol": ", ".join(offer())}
    assert feed_request("/ws/trades/alice", "", headers, SETTINGS).after == 0


def test_an_authorization_header_is_accepted_and_no_subprotocol_is_selected():
    headers = {"authorization": f"Bearer {issue_token(SETTINGS, 'alice')}"}
    request = feed_request("/ws/trades/alice/", "", headers, SETTINGS)
    assert (request.user_id, request.subprotocol) == ("alice", None)


def test_refusals_say_why_and_never_quote_the_token():
    token = issue_token(SETTINGS, "alice")
    assert refused("/ws/trades/bob", subprotocols=offer())[0] == 403
    assert refused("/ws/trades/alice")[0] == 401
    assert refused("/ws/trades/alice", subprotocols=[FEED_SUBPROTOCOL, "bearer.junk"])[0] == 401
    expired = issue_token(SETTINGS, "alice", now=time.time() - 7200)
    assert refused("/ws/trades/alice", subprotocols=[FEED_SUBPROTOCOL, f"bearer.{expired}"]) == (
        401,
        "the token has expired",
    )
    assert refused("/ws/trades/alice", subprotocols=[*offer(), f"bearer.{token}"])[0] == 401  # two tokens
    assert refused("/ws/trades/alice", subprotocols=[f"bearer.{token}"])[0] == 400  # ours not offered
    assert refused("/ws/trades/alice", "cursor=1.5", subprotocols=offer())[0] == 400
    assert refused("/ws/trades/alice", "cursor=" + "9" * 19, subprotocols=offer())[0] == 400
    status, reason = refused("/ws/trades/alice", f"token={token}", subprotocols=offer())
    assert status == 400 and token not in reason
    assert refused("/ws/other/alice", subprotocols=offer())[0] == 404
    assert refused("/ws/trades/", subprotocols=offer())[0] == 404
    for _, reason in (refused("/ws/trades/bob", subprotocols=offer()),):
        assert "eyJ" not in reason


def test_an_item_message_is_the_http_feeds_item_with_decimals_as_text():
    record = {"trade_id": "t1", "entry_price": "0.000000000012345", "pnl": "-1.50"}
    message = json.loads(item_message(FeedItem(7, "trade", "t1", record)))
    assert message == {"cursor": "7", "kind": "trade", "id": "t1", "record": record}
