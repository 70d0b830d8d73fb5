"""WS /ws/trades/{user_id}: the trade_feed function under uvicorn, a real WebSocket client, real PostgreSQL.

Items are appended with the writers' own `feed.append` (in a transaction, as the enricher and
the analyser do); the server is the process `make up` runs (local.stack's argv).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from local import services
from local.stack import function_argv
from shared.db.connection import connect as db_connect
from shared.trades import feed
from shared.trades.auth import issue_token
from shared.trades.feed_stream import FEED_SUBPROTOCOL
from shared.trades.settings import TradesSettings

pytestmark = pytest.mark.infra

ROOT = Path(__file__).resolve().parents[2]
KEY = "feed-test-key-" + "k" * 32
SETTINGS = TradesSettings(token_key=SecretStr(KEY), token_leeway_seconds=0)


@pytest.fixture
def feed_server(clean_db: str, tmp_path: Path) -> Iterator[str]:
    """The trade_feed function on a free port; its ws:// base URL."""
    port = services.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DATABASE_", "TRADES_"))}
    env.update(
        DATABASE_URL=clean_db,
        K_SERVICE="trade_feed",
        PYTHONPATH=str(ROOT),
        TRADES_TOKEN_KEY=KEY,
        TRADES_TOKEN_LEEWAY_SECONDS="0",
        TRADES_FEED_POLL_SECONDS="0.1",
        TRADES_FEED_BATCH_ITEMS="3",  # a backlog longer than one read
    )
    log = open(tmp_path / "trade_feed.log", "wb")
    process = subprocess.Popen(
        list(function_argv("trade_feed", port)), env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        services.wait_for_port("127.0.0.1", port, timeout=30, alive=lambda: process.poll() is None)
        deadline = time.monotonic() + 20
        while httpx.get(f"http://127.0.0.1:{port}/health/readiness").status_code != 200:
            assert time.monotonic() < deadline, (tmp_path / "trade_feed.log").read_text()
            time.sleep(0.1)
        yield f"ws://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
        # No token reaches the log (every JWT starts with the base64 of '{"': eyJ).
        assert "eyJ" not in (tmp_path / "trade_feed.log").read_text()


@pytest.fixture
def writer(clean_db: str) -> Iterator[Any]:
    """append(user, kind, item_id, record) → seq, committed, through the writers' feed.append."""
    conn = db_connect(clean_db)
    lock = threading.Lock()

    def append(user: str, kind: str, item_id: str, record: dict[str, Any]) -> int:
        with lock:
            conn.run("BEGIN")
            seq = feed.append(conn, user, kind, item_id, record)  # type: ignore[arg-type]
            conn.run("COMMIT")
            return seq

    yield append
    conn.close()


def token(user: str, lifetime: int = 600) -> str:
    return issue_token(SETTINGS, user, lifetime_seconds=lifetime)


def open_feed(base: str, user: str, *, cursor: str | None = None, tok: str | None = None) -> ClientConnection:
    """A browser-style connection: the token as the `bearer.<token>` subprotocol."""
    url = f"{base}/ws/trades/{user}" + (f"?cursor={cursor}" if cursor is not None else "")
    ws = connect(url, subprotocols=[FEED_SUBPROTOCOL, f"bearer.{tok or token(user)}"], open_timeout=10)  # type: ignore[list-item]
    assert ws.subprotocol == FEED_SUBPROTOCOL
    return ws


def receive(ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    return [json.loads(ws.recv(timeout=10)) for _ in range(count)]


def assert_quiet(ws: ClientConnection, seconds: float = 0.5) -> None:
    with pytest.raises(TimeoutError):
        ws.recv(timeout=seconds)


def trade_record(n: int) -> dict[str, Any]:
    return {"trade_id": f"t{n}", "status": "enriched", "entry_price": "0.000000000012345", "quantity": f"{n}.50"}


def refused_status(url: str, **kwargs: Any) -> int:
    with pytest.raises(InvalidStatus) as refused:
        connect(url, open_timeout=10, **kwargs)
    return refused.value.response.status_code


def test_backlog_then_live_items_in_commit_order_only_the_users_own(feed_server, writer):
    seqs = []
    for n in range(5):  # longer than one read (TRADES_FEED_BATCH_ITEMS=3)
        seqs.append(writer("alice", "trade", f"t{n}", trade_record(n)))
        writer("bob", "trade", f"b{n}", trade_record(100 + n))  # another user's items, interleaved
    with open_feed(feed_server, "alice") as ws:
        backlog = receive(ws, 5)
        assert [m["cursor"] for m in backlog] == [str(s) for s in seqs]
        assert [m["id"] for m in backlog] == [f"t{n}" for n in range(5)]
        assert backlog[2] == {"cursor": str(seqs[2]), "kind": "trade", "id": "t2", "record": trade_record(2)}
        assert_quiet(ws)

        live = [writer("alice", "alert", "a1", {"alert_id": "a1", "rule": "overtrading", "trade_ids": ["t4"]})]
        writer("bob", "alert", "b-alert", {"alert_id": "b-alert"})
        live.append(writer("alice", "trade", "t5", trade_record(5)))
        got = receive(ws, 2)
        assert [(m["cursor"], m["kind"], m["id"]) for m in got] == [
            (str(live[0]), "alert", "a1"),
            (str(live[1]), "trade", "t5"),
        ]
        assert_quiet(ws)


def test_reconnecting_with_the_last_cursor_misses_nothing_and_repeats_nothing(feed_server, writer):
    seqs = [writer("alice", "trade", f"t{n}", trade_record(n)) for n in range(4)]
    with open_feed(feed_server, "alice") as ws:
        first = receive(ws, 2)  # the client handles two, then its connection drops
    assert [m["cursor"] for m in first] == [str(s) for s in seqs[:2]]
    seqs += [writer("alice", "trade", f"t{n}", trade_record(n)) for n in range(4, 6)]  # while away
    with open_feed(feed_server, "alice", cursor=first[-1]["cursor"]) as ws:
        rest = receive(ws, 4)
        assert [m["cursor"] for m in rest] == [str(s) for s in seqs[2:]]
        assert_quiet(ws)


def test_items_written_while_streaming_arrive_once_each_in_order(feed_server, writer):
    with open_feed(feed_server, "alice") as ws:
        written: list[int] = []
        thread = threading.Thread(
            target=lambda: written.extend(writer("alice", "trade", f"t{n}", trade_record(n)) for n in range(40))
        )
        thread.start()
        got = receive(ws, 40)
        thread.join()
        assert [int(m["cursor"]) for m in got] == written
        assert_quiet(ws)


def test_the_authorization_header_works_for_clients_that_can_set_it(feed_server, writer):
    seq = writer("alice", "trade", "t0", trade_record(0))
    with connect(
        f"{feed_server}/ws/trades/alice", additional_headers={"Authorization": f"Bearer {token('alice')}"}
    ) as ws:
        assert ws.subprotocol is None
        assert receive(ws, 1)[0]["cursor"] == str(seq)


def test_another_users_feed_is_refused_403(feed_server, writer):
    writer("bob", "trade", "b0", trade_record(0))
    offer = [FEED_SUBPROTOCOL, f"bearer.{token('alice')}"]
    assert refused_status(f"{feed_server}/ws/trades/bob", subprotocols=offer) == 403
    assert (
        refused_status(f"{feed_server}/ws/trades/bob", additional_headers={"Authorization": f"Bearer {token('alice')}"})
        == 403
    )


def test_bad_expired_or_missing_tokens_are_refused_401(feed_server):
    url = f"{feed_server}/ws/trades/alice"
    forged = issue_token(TradesSettings(token_key=SecretStr("another-key-" + "x" * 32)), "alice")
    expired = issue_token(SETTINGS, "alice", now=time.time() - 3600)
    for bad in (forged, expired, "not-a-jwt"):
        assert refused_status(url, subprotocols=[FEED_SUBPROTOCOL, f"bearer.{bad}"]) == 401
    assert refused_status(url) == 401
    assert refused_status(url, additional_headers={"Authorization": f"Bearer {expired}"}) == 401


def test_bad_requests_are_refused_400_and_a_token_in_the_query_is_not_taken(feed_server):
    offer = [FEED_SUBPROTOCOL, f"bearer.{token('alice')}"]
    assert refused_status(f"{feed_server}/ws/trades/alice?cursor=-1", subprotocols=offer) == 400
    assert refused_status(f"{feed_server}/ws/trades/alice?cursor=abc", subprotocols=offer) == 400
    assert refused_status(f"{feed_server}/ws/trades/alice?cursor=0&token=x", subprotocols=offer) == 400
    # the bearer subprotocol without ours: a browser would fail the answer, so it is refused plainly
    assert refused_status(f"{feed_server}/ws/trades/alice", subprotocols=[offer[1]]) == 400
    assert refused_status(f"{feed_server}/ws/trades/alice?token={token('alice')}") == 401


def test_the_stream_closes_4401_when_the_token_expires(feed_server, writer):
    with open_feed(feed_server, "alice", tok=token("alice", lifetime=2)) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
