"""Enricher and analyser on real Kafka and PostgreSQL, through their edges: a manual trade goes
POST → raw-trades → normaliser → normalized-trades → enricher → enriched-trades with the market
context of the crawler's own seeded prices, candles and audit → analyser → behavioral-alerts;
a redelivered trade raises no second alert; a trade in an untracked token waits
(`pending_market`, KF-01 request) and is enriched when the crawler announces its price."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from pydantic import SecretStr

from shared.config import Settings
from shared.crawler import store as crawler_store
from shared.crawler.contracts import PRICE_UPDATED_SCHEMA
from shared.crawler.models import AuditReport, PriceQuote, TokenProfile
from shared.crawler.pipelines.price_events import PRICE_UPDATED_TYPE, price_updated_data
from shared.events import OutboundEvent
from shared.runtime.app import FunctionApp
from shared.runtime.resources import Resources
from shared.runtime.verdict import HttpResponse
from shared.trades.app import TradesApp
from shared.trades.auth import issue_token
from shared.trades.contracts import BEHAVIOURAL_ALERT_SCHEMA, ENRICHED_TRADE_SCHEMA, millis_text, validate_record
from shared.trades.settings import TradesSettings
from tests.helpers.cloudevents import kafka_source_request, request_for_message
from tests.helpers.db import Database
from tests.helpers.functions import function_app
from tests.helpers.kafka import header_pairs, json_value, read_all

SCAM = "ethereum:0x00000000000000000000000000000000000000aa"
ZED = "ethereum:0x00000000000000000000000000000000000000bb"


@dataclass
class Pipeline:
    settings: TradesSettings
    resources: Resources
    api: TradesApp
    normalizer: FunctionApp
    enricher: FunctionApp
    analyser: FunctionApp
    db: Database
    bootstrap: str
    prices_topic: str

    def post(self, trade: dict[str, Any], key: str, user: str = "alice") -> HttpResponse:
        headers = {"Authorization": f"Bearer {issue_token(self.settings, user)}", "Idempotency-Key": key}
        return self.api.handle_http("POST", "/api/trades", headers, json.dumps(trade).encode())

    def deliver(self, topic: str, group: str, source: str, app: FunctionApp) -> list[HttpResponse]:
        records = read_all(self.bootstrap, topic, group=group, commit=True)
        return [request_for_message(r, source_name=source).to(app) for r in records]

    def run_all(self) -> None:
        """Each stage delivers what it has not delivered yet, as its KafkaSource would."""
        s = self.settings
        for r in self.deliver(s.raw_topic, "normalizer", "trade-normalizer-source", self.normalizer):
            assert r.status == 200, r.body
        for r in self.deliver(s.normalized_topic, "enricher", "trade-enricher-source", self.enricher):
            assert r.status == 200, r.body
        for r in self.deliver(s.enriched_topic, "analyser", "trade-analyser-source", self.analyser):
            assert r.status == 200, r.body

    def enriched(self) -> list[dict[str, Any]]:
        return [json_value(m) for m in read_all(self.bootstrap, self.settings.enriched_topic)]

    def alerts(self) -> list[dict[str, Any]]:
        return [json_value(m) for m in read_all(self.bootstrap, self.settings.alerts_topic)]


@pytest.fixture
def pipeline(clean_db: str, kafka_bootstrap: str, unique_topic) -> Iterator[Pipeline]:
    settings = TradesSettings(
        token_key=SecretStr("test-key-" + "x" * 40),
        raw_topic=unique_topic("raw", partitions=2),
        normalized_topic=unique_topic("normalized", partitions=2),
        enriched_topic=unique_topic("enriched", partitions=2),
        alerts_topic=unique_topic("alerts", partitions=2),
    )
    resources = Resources(Settings(database_url=clean_db, kafka_bootstrap_servers=kafka_bootstrap))
    api = TradesApp(resources=resources, trades=settings)  # seeds trades_settings for the functions too
    built = Pipeline(
        settings,
        resources,
        api,
        function_app("trade_normalizer", resources),
        function_app("trade_enricher", resources),
        function_app("trade_analyser", resources),
        Database(clean_db),
        kafka_bootstrap,
        unique_topic("prices", partitions=1),
    )
    try:
        yield built
    finally:
        built.db.close()
        resources.close()


def seed_market(resources: Resources, at: datetime) -> None:
    """BTC in the top 100 with two ticks before `at`; SCAM trending with a honeypot audit."""
    profiles = [
        TokenProfile(key="native:bitcoin", symbol="BTC", name="Bitcoin", chain=None, address=None, source="t"),
        TokenProfile(key=SCAM, symbol="SCAM", name="Scam", chain="ethereum", address=SCAM.split(":")[1], source="t"),
    ]
    with resources.db.transaction() as conn:
        crawler_store.upsert_tokens(conn, profiles)
        crawler_store.set_membership(conn, "top100", ["native:bitcoin"], complete=True)
        crawler_store.set_membership(conn, "trending", [SCAM], complete=True)
        crawler_store.insert_prices(
            conn,
            [
                PriceQuote("native:bitcoin", "BTC", Decimal("59000"), "binance", at - timedelta(seconds=20)),
                PriceQuote("native:bitcoin", "BTC", Decimal("60000"), "binance", at - timedelta(seconds=2)),
                PriceQuote(SCAM, "SCAM", Decimal("0.000000000012345"), "dexscreener", at - timedelta(seconds=1)),
            ],
            "job-1",
        )
        crawler_store.upsert_audits(
            conn,
            [
                AuditReport(
                    SCAM,
                    "goplus",
                    Decimal("10"),
                    False,
                    "https://gopluslabs.io/x",
                    True,
                    Decimal("0.02"),
                    Decimal("0.9"),
                    {},
                    at,
                )
            ],
            "job-2",
        )
    with resources.db.transaction() as conn:
        crawler_store.fold_candle_ticks(conn)


def test_a_manual_trade_is_enriched_with_the_crawlers_market_and_alerted_once(pipeline: Pipeline) -> None:
    # mid-minute, so both seeded ticks (2 s and 20 s before) fall in the trade's 1-minute candle
    at = (datetime.now(timezone.utc) - timedelta(seconds=90)).replace(second=30, microsecond=500000)
    seed_market(pipeline.resources, at)
    buy = {"symbol": "BTC/USDT", "side": "BUY", "price": "60300", "quantity": "0.1", "executed_at": millis_text(at)}
    scam = {
        "symbol": "SCAMUSDT",
        "side": "BUY",
        "price": "0.000000000012345",
        "quantity": "1000000",
        "executed_at": millis_text(at),
    }
    assert pipeline.post(buy, "btc-1").status == 202
    assert pipeline.post(scam, "scam-1").status == 202
    pipeline.run_all()

    by_symbol = {r["trade"]["symbol"]: r for r in pipeline.enriched()}
    btc = by_symbol["BTCUSDT"]
    validate_record(ENRICHED_TRADE_SCHEMA, btc)
    assert (btc["status"], btc["token_key"], btc["base_asset"], btc["quote_asset"]) == (
        "enriched",
        "native:bitcoin",
        "BTC",
        "USDT",
    )
    entry = btc["entry"]
    # the nearest observation: the tick 2 s before the trade at 60000; (60300 - 60000) / 60000 = 50 bps
    assert entry["market_price_usdt"] == "60000"
    assert entry["market_observed_at"] == millis_text(at - timedelta(seconds=2))
    assert (entry["slippage_bps"], entry["price_difference"]) == ("50.0000", "300")
    candle = entry["candle_1m"]
    assert candle is not None
    assert (candle["open"], candle["close"], candle["high"], candle["low"], candle["ticks"]) == (
        "59000",
        "60000",
        "60000",
        "59000",
        2,
    )
    assert btc["kpis_24h"]["price_usdt"] == "60000" and btc["kpis_24h"]["ticks_24h"] == 2
    assert btc["volatility_24h"]["resolution"] == "1h"
    stored = pipeline.db.rows("SELECT status, entry_market_price, entry_slippage_bps FROM trade_enrichments")
    assert sorted((r["status"], str(r["entry_slippage_bps"])) for r in stored) == [
        ("enriched", "0.0000"),
        ("enriched", "50.0000"),
    ]
    [message] = [m for m in read_all(pipeline.bootstrap, pipeline.settings.enriched_topic) if m.key() == b"alice"][:1]
    assert (dict(header_pairs(message))["ce_dataschema"] or b"").endswith(b"enriched-trade.v1.json")

    assert by_symbol["SCAMUSDT"]["audit"]["is_honeypot"] is True
    [alert] = pipeline.alerts()
    validate_record(BEHAVIOURAL_ALERT_SCHEMA, alert)
    assert alert["rule"] == "risky_token"
    assert alert["trade_ids"] == [by_symbol["SCAMUSDT"]["trade"]["trade_id"]]
    assert "honeypot" in alert["message"] and "sell tax 0.9" in alert["message"]

    # KafkaSource delivers every enriched record again (a restart before its commit): nothing new
    again = [
        request_for_message(m, source_name="trade-analyser-source").to(pipeline.analyser)
        for m in read_all(pipeline.bootstrap, pipeline.settings.enriched_topic)
    ]
    assert [json.loads(r.body)["alerts_new"] for r in again] == [0, 0]
    assert len(pipeline.alerts()) == 1
    assert pipeline.db.value("SELECT count(*) FROM behavioral_alerts") == 1
    # and the enricher, given its records again, publishes nothing new either
    redone = [
        request_for_message(m, source_name="trade-enricher-source").to(pipeline.enricher)
        for m in read_all(pipeline.bootstrap, pipeline.settings.normalized_topic)
    ]
    assert all(json.loads(r.body).get("duplicate") for r in redone)
    assert len(pipeline.enriched()) == 2


def test_an_untracked_token_waits_and_is_enriched_when_its_price_arrives(pipeline: Pipeline) -> None:
    at = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(seconds=10)
    trade = {"symbol": "ZEDUSDT", "side": "BUY", "price": "2.5", "quantity": "4", "executed_at": millis_text(at)}
    assert pipeline.post(trade, "zed-1").status == 202
    pipeline.run_all()
    [pending] = pipeline.enriched()
    assert (pending["status"], pending["token_key"], pending["entry"]) == ("pending_market", None, None)
    assert "does not track ZED" in pending["reason"]
    [request] = pipeline.db.rows("SELECT base_asset, example_symbol, trades_waiting FROM trade_market_requests")
    assert (request["base_asset"], request["example_symbol"], request["trades_waiting"]) == ("ZED", "ZEDUSDT", 1)

    # the crawler starts tracking ZED and announces its price
    quote = PriceQuote(ZED, "ZED", Decimal("2.4"), "dexscreener", at + timedelta(seconds=3))
    with pipeline.resources.db.transaction() as conn:
        crawler_store.upsert_tokens(
            conn,
            [TokenProfile(key=ZED, symbol="ZED", name="Zed", chain="ethereum", address=ZED.split(":")[1], source="t")],
        )
        crawler_store.set_membership(conn, "trending", [ZED], complete=True)
        crawler_store.insert_prices(conn, [quote], "job-3")
    pipeline.resources.producer.publish(
        pipeline.prices_topic,
        [
            OutboundEvent(
                type=PRICE_UPDATED_TYPE,
                source="/price-crawler/price",
                data=price_updated_data("job-3", "trending", [quote]),
                key="trending",
                dataschema=PRICE_UPDATED_SCHEMA,
            )
        ],
    )
    [answer] = pipeline.deliver(
        pipeline.prices_topic, "enricher-prices", "trade-enricher-price-source", pipeline.enricher
    )
    assert answer.status == 200 and json.loads(answer.body)["reenriched"] == 1
    _, enriched = pipeline.enriched()
    assert (enriched["status"], enriched["token_key"]) == ("enriched", ZED)
    # bought at 2.5 against 2.4: (2.5 - 2.4) / 2.4 * 10000 = 416.6667 bps
    assert enriched["entry"]["slippage_bps"] == "416.6667"
    assert pipeline.db.value("SELECT count(*) FROM trade_market_requests") == 0
    # the analyser sees it enriched: 416 bps is off the market (threshold 200)
    pipeline.run_all()
    assert [a["rule"] for a in pipeline.alerts()] == ["off_market_fill"]


def test_records_that_are_not_trades_are_400_with_the_reason(pipeline: Pipeline) -> None:
    """What KafkaSource dead-letters: a plain record a client wrote past the pipeline."""
    for app, source, topic in (
        (pipeline.enricher, "trade-enricher-source", pipeline.settings.normalized_topic),
        (pipeline.analyser, "trade-analyser-source", pipeline.settings.enriched_topic),
    ):
        for value, fragment in ((b"not json", "not JSON"), (b'{"trade_id": "x"}', ".v1.json")):
            answer = kafka_source_request(value, topic=topic, source_name=source, key="mallory").to(app)
            assert answer.status == 400, answer.body
            assert fragment in json.loads(answer.body)["error"]
    assert pipeline.db.value("SELECT count(*) FROM trade_enrichments") == 0
    assert pipeline.db.value("SELECT count(*) FROM trade_behaviour_history") == 0
    assert pipeline.enriched() == [] and pipeline.alerts() == []


def test_a_closing_trade_supersedes_the_open_one_and_a_loss_then_a_quick_entry_is_revenge(pipeline: Pipeline) -> None:
    at = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=4)
    seed_market(pipeline.resources, datetime.now(timezone.utc))
    with pipeline.resources.db.transaction() as conn:  # the crawler's ticks a second before each leg
        crawler_store.insert_prices(
            conn,
            [
                PriceQuote("native:bitcoin", "BTC", Decimal("60000"), "binance", at - timedelta(seconds=1)),
                PriceQuote("native:bitcoin", "BTC", Decimal("59000"), "binance", at + timedelta(seconds=59)),
                PriceQuote("native:bitcoin", "BTC", Decimal("59100"), "binance", at + timedelta(seconds=179)),
            ],
            "job-4",
        )
    with pipeline.resources.db.transaction() as conn:
        crawler_store.fold_candle_ticks(conn)
    legs = [
        ({"side": "BUY", "price": "60000", "quantity": "1"}, at),
        ({"side": "SELL", "price": "59000", "quantity": "1"}, at + timedelta(minutes=1)),  # a loss of 1000
        ({"side": "BUY", "price": "59100", "quantity": "1"}, at + timedelta(minutes=3)),  # 2 min later
    ]
    for i, (leg, when) in enumerate(legs):
        trade = {"symbol": "BTCUSDT", "executed_at": millis_text(when), **leg}
        assert pipeline.post(trade, f"leg-{i}").status == 202
        pipeline.run_all()
    states = [(r["trade"]["status"], r["status"]) for r in pipeline.enriched()]
    # the first fill's open trade, then (its closing) superseded + the closed trade, then the new entry
    assert ("superseded", "superseded") in states and ("closed", "enriched") in states
    rows = pipeline.db.rows("SELECT status FROM trade_enrichments ORDER BY enriched_at")
    assert sorted(r["status"] for r in rows) == ["enriched", "enriched", "superseded"]
    [alert] = [a for a in pipeline.alerts() if a["rule"] == "revenge_trading"]
    closed = next(r for r in pipeline.enriched() if r["trade"]["status"] == "closed")
    assert alert["trade_ids"][0] == closed["trade"]["trade_id"] and closed["trade"]["pnl"] == "-1000"
    assert alert["details"]["seconds_after_loss"] == "120"
    # the superseded open trade is gone from the analyser's history
    assert pipeline.db.value("SELECT count(*) FROM trade_behaviour_history") == 2


def test_the_feed_resumes_from_its_cursor_without_gaps_or_repeats_and_only_for_its_user(pipeline: Pipeline) -> None:
    at = (datetime.now(timezone.utc) - timedelta(seconds=90)).replace(second=30, microsecond=500000)
    seed_market(pipeline.resources, at)
    scam = {
        "symbol": "SCAMUSDT",
        "side": "BUY",
        "price": "0.000000000012345",  # at the market: only the risky-token alert
        "quantity": "5",
        "executed_at": millis_text(at),
    }
    assert pipeline.post(scam, "scam-1").status == 202
    assert pipeline.post({**scam, "symbol": "BTCUSDT", "price": "60000"}, "btc-1", user="bob").status == 202
    pipeline.run_all()

    def feed(user: str, query: str = "", caller: str | None = None) -> HttpResponse:
        headers = {"Authorization": f"Bearer {issue_token(pipeline.settings, caller or user)}"}
        return pipeline.api.handle_http("GET", f"/api/trades/feed{query}", headers, b"")

    first = json.loads(feed("alice", "?limit=1").body)
    [trade] = first["items"]
    assert (trade["kind"], trade["record"]["trade"]["symbol"]) == ("trade", "SCAMUSDT")
    rest = json.loads(feed("alice", f"?cursor={first['next_cursor']}").body)
    [alert] = rest["items"]
    assert (alert["kind"], alert["record"]["rule"]) == ("alert", "risky_token")
    assert int(alert["cursor"]) > int(trade["cursor"])
    # nothing new: the same cursor back; a redelivery of everything adds nothing to the feed
    for m in read_all(pipeline.bootstrap, pipeline.settings.enriched_topic):
        request_for_message(m, source_name="trade-analyser-source").to(pipeline.analyser)
    for m in read_all(pipeline.bootstrap, pipeline.settings.normalized_topic):
        request_for_message(m, source_name="trade-enricher-source").to(pipeline.enricher)
    done = json.loads(feed("alice", f"?cursor={rest['next_cursor']}").body)
    assert done == {"items": [], "next_cursor": rest["next_cursor"]}
    # a trade that arrives later comes after the cursor
    assert pipeline.post({**scam, "quantity": "6"}, "scam-2").status == 202
    pipeline.run_all()
    later = json.loads(feed("alice", f"?cursor={rest['next_cursor']}").body)["items"]
    assert [i["kind"] for i in later][:1] == ["trade"] and later[0]["record"]["trade"]["quantity"] in ("6", "11")
    # bob sees his own trade only; alice may not follow bob's feed
    [bobs] = json.loads(feed("bob").body)["items"]
    assert bobs["record"]["trade"]["user_id"] == "bob"
    refused = feed("bob", "?user_id=bob", caller="alice")
    assert refused.status == 403 and "own feed" in json.loads(refused.body)["error"]
    assert feed("alice", "?cursor=-1").status == 400
    unauthenticated = pipeline.api.handle_http("GET", "/api/trades/feed", {}, b"")
    assert unauthenticated.status == 401
