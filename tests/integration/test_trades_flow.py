"""The trades API and the trade normaliser on real Kafka and PostgreSQL, through their edges:
a POST reaches raw-trades, KafkaSource's request of that record makes a normalised row and a
normalized-trades record; a retry stores nothing new; bad input is 400 with its field and reason;
a caller sees and writes only its own trades."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import SecretStr

from shared.config import Settings
from shared.runtime.app import FunctionApp
from shared.runtime.resources import Resources
from shared.runtime.verdict import HttpResponse
from shared.trades.app import TradesApp
from shared.trades.auth import issue_token
from shared.trades.contracts import TRADE_SCHEMA, validate_record
from shared.trades.settings import TradesSettings
from tests.helpers.cloudevents import request_for_message
from tests.helpers.db import Database
from tests.helpers.functions import function_app
from tests.helpers.kafka import header_pairs, json_value, produce_plain, read_all

SOURCE = "trade-normalizer-source"
BUY = {
    "symbol": "BTC/USDT",
    "side": "BUY",
    "price": "60000.10",
    "quantity": "0.5",
    "executed_at": "2026-11-01T10:00:00.250Z",
}
SELL = {
    "symbol": "BTCUSDT",
    "side": "SELL",
    "price": "61000",
    "quantity": "0.2",
    "executed_at": "2026-11-01T11:00:00Z",
    "fee": "1.22",
    "fee_asset": "USDT",
}


@dataclass
class TradesStack:
    settings: TradesSettings
    resources: Resources
    api: TradesApp
    normalizer: FunctionApp
    db: Database
    bootstrap: str

    def token(self, user: str) -> str:
        return issue_token(self.settings, user)

    def call(
        self, method: str, path: str, user: str | None = "alice", body: Any = None, **headers: str
    ) -> HttpResponse:
        sent = {k.replace("_", "-"): v for k, v in headers.items()}
        if user is not None:
            sent["Authorization"] = f"Bearer {self.token(user)}"
        raw = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
        return self.api.handle_http(method, path, sent, raw)

    def deliver_raw(self) -> list[HttpResponse]:
        """What KafkaSource does with every raw-trades record not delivered yet."""
        records = read_all(self.bootstrap, self.settings.raw_topic, group="normalizer", commit=True)
        return [request_for_message(r, source_name=SOURCE).to(self.normalizer) for r in records]

    def normalized(self) -> list[dict[str, Any]]:
        return [json_value(m) for m in read_all(self.bootstrap, self.settings.normalized_topic)]


def body(response: HttpResponse) -> Any:
    return json.loads(response.body)


@pytest.fixture
def stack(clean_db: str, kafka_bootstrap: str, unique_topic) -> Iterator[TradesStack]:
    settings = TradesSettings(
        token_key=SecretStr("test-key-" + "x" * 40),
        raw_topic=unique_topic("raw", partitions=3),
        normalized_topic=unique_topic("normalized", partitions=3),
    )
    resources = Resources(Settings(database_url=clean_db, kafka_bootstrap_servers=kafka_bootstrap))
    api = TradesApp(resources=resources, trades=settings)  # seeds trades_settings for the normaliser too
    built = TradesStack(
        settings, resources, api, function_app("trade_normalizer", resources), Database(clean_db), kafka_bootstrap
    )
    try:
        yield built
    finally:
        built.db.close()
        resources.close()


def test_a_posted_trade_becomes_one_normalised_row_and_record(stack: TradesStack) -> None:
    response = stack.call("POST", "/api/trades", body=BUY, Idempotency_Key="buy-1")
    assert response.status == 202, response.body
    [accepted] = body(response)["trades"]
    [raw] = read_all(stack.bootstrap, stack.settings.raw_topic)
    assert raw.key() == b"alice"  # keyed by user: one user's trades stay in order
    assert (dict(header_pairs(raw))["ce_dataschema"] or b"").endswith(b"raw-trade.v1.json")

    [delivered] = stack.deliver_raw()
    assert delivered.status == 200, delivered.body
    assert body(delivered)["fills_new"] == 1
    [fill] = stack.db.rows("SELECT * FROM trade_fills")
    assert str(fill["fill_id"]) == accepted["id"]
    assert (fill["user_id"], fill["symbol"], str(fill["price"]), fill["external_id"]) == (
        "alice",
        "BTCUSDT",
        "60000.10",
        "buy-1",
    )
    [record] = stack.normalized()
    validate_record(TRADE_SCHEMA, record)
    assert (record["status"], record["entry_price"], record["entry_time"]) == (
        "open",
        "60000.10",
        "2026-11-01T10:00:00.250Z",
    )

    listed = stack.call("GET", "/api/trades")
    assert listed.status == 200 and body(listed)["trades"] == [record]


def test_a_retry_with_the_same_key_creates_nothing_new(stack: TradesStack) -> None:
    for _ in range(3):
        assert stack.call("POST", "/api/trades", body=BUY, Idempotency_Key="same").status == 202
    results = [body(r) for r in stack.deliver_raw()]
    assert [r["fills_new"] for r in results] == [1, 0, 0]
    assert [r["fills_duplicate"] for r in results] == [0, 1, 1]
    assert stack.db.value("SELECT count(*) FROM trade_fills") == 1
    assert stack.db.value("SELECT count(*) FROM trades") == 1
    assert len(stack.normalized()) == 1  # nothing changed, nothing re-published
    # Redelivering the same record (KafkaSource after a crash) is as harmless.
    [raw, *_] = read_all(stack.bootstrap, stack.settings.raw_topic)
    assert body(request_for_message(raw, source_name=SOURCE).to(stack.normalizer))["fills_new"] == 0


def test_a_reused_key_with_another_trade_keeps_the_first_and_says_so(stack: TradesStack) -> None:
    stack.call("POST", "/api/trades", body=BUY, Idempotency_Key="k")
    stack.call("POST", "/api/trades", body={**BUY, "price": "1"}, Idempotency_Key="k")
    results = [body(r) for r in stack.deliver_raw()]
    assert results[1]["fills_conflicting"] == 1
    assert str(stack.db.value("SELECT price FROM trade_fills")) == "60000.10"
    [rejection] = stack.db.rows("SELECT * FROM trade_rejections")
    assert "already names a different trade" in rejection["reason"]


def test_a_batch_pairs_fifo_into_closed_and_open_trades(stack: TradesStack) -> None:
    response = stack.call("POST", "/api/trades", body=[BUY, SELL], Idempotency_Key="batch")
    assert response.status == 202, response.body
    assert [t["client_trade_id"] for t in body(response)["trades"]] == ["batch:0", "batch:1"]
    assert all(r.status == 200 for r in stack.deliver_raw())
    trades = {t["status"]: t for t in body(stack.call("GET", "/api/trades"))["trades"]}
    assert set(trades) == {"open", "closed"}
    assert (trades["closed"]["quantity"], trades["closed"]["pnl"]) == ("0.2", "198.760")  # 0.2 * 999.90 - 1.22
    assert trades["open"]["quantity"] == "0.3"
    # normalized-trades carried the open lot of 0.5, then the closed part and the lot's new state (0.3).
    first, closed, rest = stack.normalized()
    assert [first["status"], closed["status"], rest["status"]] == ["open", "closed", "open"]
    assert first["trade_id"] == rest["trade_id"] and (first["quantity"], rest["quantity"]) == ("0.5", "0.3")


def test_malformed_trades_are_400_with_index_field_and_reason_and_nothing_is_published(stack: TradesStack) -> None:
    response = stack.call("POST", "/api/trades", body=[BUY, {**BUY, "price": "1e400"}, {**BUY, "side": "hold"}])
    assert response.status == 400
    errors = body(response)["errors"]
    assert [(e["index"], e["field"]) for e in errors] == [(1, "price"), (2, "side")]
    assert all(e["error"] for e in errors)
    assert read_all(stack.bootstrap, stack.settings.raw_topic) == []
    for bad in (b"{", b"[]", b"\x00", b'"text"', json.dumps([BUY] * 1001).encode()):
        assert stack.call("POST", "/api/trades", body=bad).status == 400


def test_a_raw_record_that_can_never_be_normalised_is_400_with_its_reason(stack: TradesStack) -> None:
    # Written by any Kafka client (kcat) past the API: KafkaSource wraps it as dev.knative.kafka.event.
    bad = {
        "user_id": "alice",
        "kind": "binance.myTrades",
        "received_at": "2026-12-01T00:00:00.000Z",
        "account": "main",
        "idempotency_key": None,
        "payload": [{"symbol": "BNBBTC", "id": 1, "price": "NaN", "qty": "1", "time": 1700000000000, "isBuyer": True}],
    }
    for value in (json.dumps(bad), "not json", json.dumps({**bad, "kind": "ftx"})):
        produce_plain(stack.bootstrap, stack.settings.raw_topic, value, key="alice")
    responses = stack.deliver_raw()
    assert [r.status for r in responses] == [400, 400, 400]
    reasons = [body(r)["error"] for r in responses]
    assert "price" in reasons[0] and "not a finite number" in reasons[0]
    assert "not JSON" in reasons[1] and "kind" in reasons[2]
    assert stack.db.value("SELECT count(*) FROM trade_fills") == 0
    rows = stack.db.rows("SELECT field, reason FROM trade_rejections ORDER BY id")
    assert [r["field"] for r in rows] == ["price", "", ""]
    # A redelivery of the same dead letter is noted once.
    responses = [
        request_for_message(r, source_name=SOURCE).to(stack.normalizer)
        for r in read_all(stack.bootstrap, stack.settings.raw_topic)
    ]
    assert stack.db.value("SELECT count(*) FROM trade_rejections") == 3


def test_a_caller_reads_and_writes_only_its_own_trades(stack: TradesStack) -> None:
    stack.call("POST", "/api/trades", body=BUY, Idempotency_Key="a1")
    stack.deliver_raw()
    [alice_trade] = body(stack.call("GET", "/api/trades"))["trades"]
    trade_path = f"/api/trades/{alice_trade['trade_id']}"
    assert stack.call("GET", trade_path).status == 200
    # Bob: another user's trade is not found, another user's list is forbidden, his own is empty.
    assert stack.call("GET", trade_path, user="bob").status == 404
    assert stack.call("GET", "/api/trades?user_id=alice", user="bob").status == 403
    assert body(stack.call("GET", "/api/trades", user="bob"))["trades"] == []
    assert stack.call("POST", "/api/trades", user="bob", body={**BUY, "user_id": "alice"}).status == 403
    # Without a token, or with one signed by another key: 401 on every route.
    for method, path in (("GET", "/api/trades"), ("POST", "/api/trades"), ("GET", trade_path)):
        response = stack.call(method, path, user=None, body=BUY)
        assert response.status == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
    forged = issue_token(TradesSettings(token_key=SecretStr("f" * 40)), "alice")
    assert stack.api.handle_http("GET", "/api/trades", {"Authorization": f"Bearer {forged}"}, b"").status == 401


def test_trades_are_paged_by_cursor_without_gaps_or_repeats(stack: TradesStack) -> None:
    trades = [{**BUY, "executed_at": f"2026-11-01T10:{m:02d}:00Z", "client_trade_id": f"t{m}"} for m in range(7)]
    assert stack.call("POST", "/api/trades", body=trades).status == 202
    stack.deliver_raw()
    seen, cursor = [], None
    while True:
        page = body(stack.call("GET", "/api/trades?limit=3" + (f"&cursor={cursor}" if cursor else "")))
        seen += [t["entry_time"] for t in page["trades"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"2026-11-01T10:{m:02d}:00.000Z" for m in reversed(range(7))]
    assert stack.call("GET", "/api/trades?cursor=bogus").status == 400
    assert stack.call("GET", "/api/trades?limit=0").status == 400


def test_a_lot_closed_in_full_is_published_superseded_then_closed(stack: TradesStack) -> None:
    stack.call("POST", "/api/trades", body=[BUY, {**SELL, "quantity": "0.5"}], Idempotency_Key="full")
    stack.deliver_raw()
    opened, superseded, closed = stack.normalized()
    assert [opened["status"], superseded["status"], closed["status"]] == ["open", "superseded", "closed"]
    assert superseded["trade_id"] == opened["trade_id"] != closed["trade_id"]
    assert [t["status"] for t in body(stack.call("GET", "/api/trades"))["trades"]] == ["closed"]


def test_the_token_key_and_bearer_tokens_never_reach_a_log_line(stack: TradesStack) -> None:
    from shared.observability.logging import redact

    key = stack.settings.token_key.get_secret_value()
    token = stack.token("alice")
    line = redact(f"key={key} raw {key} Authorization: Bearer {token}")
    assert key not in line and token not in line


def test_kafka_away_is_503_and_nothing_is_accepted(clean_db: str, unique_topic) -> None:
    from shared.kafka import EventProducer

    settings = TradesSettings(token_key=SecretStr("k" * 40), raw_topic=unique_topic("raw-down", partitions=1))
    resources = Resources(Settings(database_url=clean_db, kafka_bootstrap_servers="127.0.0.1:9"))
    # A broker nobody answers for: deliveries fail after 1.5 s instead of 30.
    resources.once("producer", lambda: EventProducer("127.0.0.1:9", extra={"message.timeout.ms": 1500}))
    api = TradesApp(resources=resources, trades=settings)
    try:
        token = issue_token(settings, "alice")
        response = api.handle_http(
            "POST", "/api/trades", {"Authorization": f"Bearer {token}"}, json.dumps(BUY).encode()
        )
        assert response.status == 503 and response.headers["Retry-After"] == "1"
    finally:
        resources.close()


def test_postgresql_away_is_retried_never_dead_lettered(stack: TradesStack, kafka_bootstrap: str) -> None:
    stack.call("POST", "/api/trades", body=BUY, Idempotency_Key="db-down")
    [raw] = read_all(kafka_bootstrap, stack.settings.raw_topic)
    down = Resources(
        Settings(database_url="postgresql://crawler:crawler@127.0.0.1:9/none", kafka_bootstrap_servers=kafka_bootstrap)
    )
    down.once("trades_settings", lambda: stack.settings)
    try:
        response = request_for_message(raw, source_name=SOURCE).to(function_app("trade_normalizer", down))
        assert response.status == 503, response.body  # KafkaSource retries it; the record is not lost
    finally:
        down.close()
    assert body(request_for_message(raw, source_name=SOURCE).to(stack.normalizer))["fills_new"] == 1


def test_concurrent_fills_of_one_position_pair_as_if_one_after_another(stack: TradesStack) -> None:
    from concurrent.futures import ThreadPoolExecutor

    trades = [
        {
            **BUY,
            "side": "BUY" if i % 2 == 0 else "SELL",
            "quantity": "0.1",
            "executed_at": f"2026-11-01T10:{i:02d}:00Z",
            "client_trade_id": f"c{i}",
        }
        for i in range(12)
    ]
    assert stack.call("POST", "/api/trades", body=trades).status == 202
    records = read_all(stack.bootstrap, stack.settings.raw_topic)
    with ThreadPoolExecutor(max_workers=6) as pool:  # replicas racing on one user's position
        statuses = list(
            pool.map(lambda r: request_for_message(r, source_name=SOURCE).to(stack.normalizer).status, records)
        )
    assert statuses == [200] * 12
    stored = body(stack.call("GET", "/api/trades?limit=100"))["trades"]
    # Six buys and six sells of 0.1, alternating: six closed round trips, nothing open, whatever the race.
    assert sorted(t["status"] for t in stored) == ["closed"] * 6
    assert sorted(t["entry_time"][11:16] for t in stored) == [f"10:{i:02d}" for i in range(0, 12, 2)]
