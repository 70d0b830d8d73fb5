"""Trade ingestion end to end on real Kafka and PostgreSQL, the functions as processes:

    HTTP POST /api/trades → trades function → raw-trades → KafkaSource trade-normalizer-source
    → trade_normalizer function → PostgreSQL (trade_fills, trades) + normalized-trades
                                   (400) → KafkaSink trade-normalizer-dead-letter → dead-letter topic
    normalized-trades → trade-enricher-source → trade_enricher → trade_enrichments + enriched-trades
    enriched-trades → trade-analyser-source → trade_analyser → behavioral_alerts + behavioral-alerts

The local eventing plane runs the cluster's own trade sources and their dead-letter sinks of
`infra/knative/base` on this test's topics; the trades, trade_normalizer, trade_enricher and
trade_analyser functions run under functions-framework exactly as `make up` runs them.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pydantic import SecretStr

from local.eventing import EventingPlane, EventingSettings, load_manifests, resolve_topology
from shared.crawler import store as crawler_store
from shared.crawler.models import PriceQuote, TokenProfile
from shared.db.connection import ConnectionPool
from shared.trades.auth import issue_token
from shared.trades.contracts import millis_text
from shared.trades.settings import TradesSettings
from tests.helpers.db import Database
from tests.helpers.e2e import BASE_MANIFESTS, function_env, serve_functions, wait_for
from tests.helpers.kafka import header_pairs, produce_plain, read_all

pytestmark = [pytest.mark.infra, pytest.mark.slow]

FLOW_TIMEOUT = 30.0
BUY = {
    "symbol": "ETH/USDT",
    "side": "BUY",
    "price": "3000.5",
    "quantity": "1.25",
    "executed_at": "2026-11-20T08:00:00.5Z",
}


@pytest.fixture
def topics(unique_topic) -> dict[str, str]:
    return {
        "raw": unique_topic("raw-trades", partitions=3),
        "normalized": unique_topic("normalized-trades", partitions=3),
        "dead_letter": unique_topic("trade-dlq", partitions=1),
        "enriched": unique_topic("enriched-trades", partitions=3),
        "alerts": unique_topic("behavioral-alerts", partitions=3),
        "enricher_dead_letter": unique_topic("enricher-dlq", partitions=1),
        "analyser_dead_letter": unique_topic("analyser-dlq", partitions=1),
    }


@pytest.fixture
def token_key() -> str:
    return secrets.token_urlsafe(48)


@pytest.fixture
def function_urls(
    clean_db: str, kafka_bootstrap: str, topics: dict[str, str], token_key: str
) -> Iterator[dict[str, str]]:
    env = function_env({}, clean_db, kafka_bootstrap, {})
    env.update(
        TRADES_RAW_TOPIC=topics["raw"],
        TRADES_NORMALIZED_TOPIC=topics["normalized"],
        TRADES_ENRICHED_TOPIC=topics["enriched"],
        TRADES_ALERTS_TOPIC=topics["alerts"],
        TRADES_TOKEN_KEY=token_key,
    )
    yield from serve_functions(("trades", "trade_normalizer", "trade_enricher", "trade_analyser"), env)


def _manifests(directory: Path, topics: dict[str, str]) -> Path:
    """The cluster's trade sources and their dead-letter KafkaSinks, on this test's topics."""
    documents = [
        d
        for file in ("kafkasources.yaml", "kafkasinks.yaml")
        for d in yaml.safe_load_all((BASE_MANIFESTS / file).read_text())
        if d
    ]
    by_name = {(d["kind"], d["metadata"]["name"]): d for d in documents}
    chosen = []
    for name, topic, dead_letter in (
        ("trade-normalizer-source", "raw", "dead_letter"),
        ("trade-enricher-source", "normalized", "enricher_dead_letter"),
        ("trade-analyser-source", "enriched", "analyser_dead_letter"),
    ):
        source = by_name[("KafkaSource", name)]
        source["spec"].update(
            topics=[topics[topic]], consumerGroup=f"{source['spec']['consumerGroup']}-{uuid.uuid4().hex[:8]}"
        )
        sink = by_name[("KafkaSink", source["spec"]["delivery"]["deadLetterSink"]["ref"]["name"])]
        sink["spec"]["topic"] = topics[dead_letter]
        chosen += [source, sink]
    (directory / "eventing.yaml").write_text(yaml.safe_dump_all(chosen, sort_keys=False))
    return directory


@pytest.fixture
def plane(
    kafka_bootstrap: str, topics: dict[str, str], function_urls: dict[str, str], tmp_path: Path
) -> Iterator[None]:
    manifests = load_manifests(_manifests(tmp_path, topics))
    topology = resolve_topology(
        manifests,
        {
            "TRADE_NORMALIZER_FUNCTION_URL": function_urls["trade_normalizer"],
            "TRADE_ENRICHER_FUNCTION_URL": function_urls["trade_enricher"],
            "TRADE_ANALYSER_FUNCTION_URL": function_urls["trade_analyser"],
        },
    )
    settings = EventingSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        commit_interval_seconds=0.5,
        session_timeout_ms=6000,
        shutdown_grace_seconds=5,
        ping_jitter_ms=0,
        port=0,
    )
    running = EventingPlane(topology, settings)
    running.start()
    try:
        yield
    finally:
        running.stop()


def _post(url: str, key: str, user: str, trades: Any, idempotency_key: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {issue_token(TradesSettings(token_key=SecretStr(key)), user)}"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    return httpx.post(f"{url}/api/trades", json=trades, headers=headers, timeout=10)


def test_a_posted_trade_reaches_the_database_once_and_bad_records_are_dead_lettered(
    clean_db: str,
    kafka_bootstrap: str,
    topics: dict[str, str],
    function_urls: dict[str, str],
    token_key: str,
    plane: None,
) -> None:
    db = Database(clean_db)
    api = function_urls["trades"]
    # A manual trade, then two retries of the same request (a client that never saw the 202).
    for _ in range(3):
        response = _post(api, token_key, "trader-7", BUY, idempotency_key="order-42")
        assert response.status_code == 202, response.text
    [accepted] = response.json()["trades"]
    # A record no normaliser can read, written past the API as any Kafka client could.
    produce_plain(kafka_bootstrap, topics["raw"], json.dumps({"user_id": "trader-7", "kind": "manual"}), key="trader-7")

    wait_for(lambda: db.value("SELECT count(*) FROM trade_fills") == 1, FLOW_TIMEOUT, "the fill stored")
    dead = wait_for(lambda: read_all(kafka_bootstrap, topics["dead_letter"]), FLOW_TIMEOUT, "the dead letter")
    wait_for(lambda: db.value("SELECT count(*) FROM trade_rejections") == 1, FLOW_TIMEOUT, "the rejection noted")

    [fill] = db.rows("SELECT * FROM trade_fills")
    assert (str(fill["fill_id"]), fill["user_id"], fill["symbol"], str(fill["price"])) == (
        accepted["id"],
        "trader-7",
        "ETHUSDT",
        "3000.5",
    )
    assert db.value("SELECT count(*) FROM trades") == 1
    [record] = [json.loads(m.value() or b"{}") for m in read_all(kafka_bootstrap, topics["normalized"])]
    assert (record["status"], record["quantity"], record["entry_time"]) == ("open", "1.25", "2026-11-20T08:00:00.500Z")
    # The dead letter carries the failed event and why it failed.
    [letter] = dead
    headers = dict(header_pairs(letter))
    assert headers["ce_knativeerrorcode"] == b"400"
    reason = json.loads(base64.b64decode(headers.get("ce_knativeerrordata") or b""))["error"]
    assert "raw-trade.v1.json" in reason and "received_at" in reason
    # The trader reads it back; another trader cannot.
    token = issue_token(TradesSettings(token_key=SecretStr(token_key)), "trader-7")
    listed = httpx.get(f"{api}/api/trades", headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
    assert [t["trade_id"] for t in listed["trades"]] == [record["trade_id"]]
    other = issue_token(TradesSettings(token_key=SecretStr(token_key)), "trader-8")
    response = httpx.get(
        f"{api}/api/trades/{record['trade_id']}", headers={"Authorization": f"Bearer {other}"}, timeout=10
    )
    assert response.status_code == 404
    db.close()


def test_a_trade_reaches_enriched_trades_with_the_crawlers_price_and_raises_its_alert_once(
    clean_db: str,
    kafka_bootstrap: str,
    topics: dict[str, str],
    function_urls: dict[str, str],
    token_key: str,
    plane: None,
) -> None:
    db = Database(clean_db)
    at = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(seconds=5)
    pool = ConnectionPool(clean_db, size=1)
    with pool.transaction() as conn:  # the crawler knows SOL and priced it a second before the trade
        crawler_store.upsert_tokens(
            conn, [TokenProfile(key="native:solana", symbol="SOL", name="Solana", chain=None, address=None, source="t")]
        )
        crawler_store.set_membership(conn, "top100", ["native:solana"], complete=True)
        crawler_store.insert_prices(
            conn, [PriceQuote("native:solana", "SOL", Decimal("150"), "binance", at - timedelta(seconds=1))], "job-1"
        )
    pool.close()
    # bought 3 % above the market: (154.5 - 150) / 150 = 300 bps, an off-market fill
    trade = {"symbol": "SOLUSDT", "side": "BUY", "price": "154.5", "quantity": "2", "executed_at": millis_text(at)}
    response = _post(function_urls["trades"], token_key, "trader-9", trade, idempotency_key="sol-1")
    assert response.status_code == 202, response.text

    [enriched] = wait_for(lambda: read_all(kafka_bootstrap, topics["enriched"]), FLOW_TIMEOUT, "the enriched trade")
    record = json.loads(enriched.value() or b"{}")
    assert enriched.key() == b"trader-9"
    assert (record["status"], record["token_key"]) == ("enriched", "native:solana")
    assert (record["entry"]["market_price_usdt"], record["entry"]["slippage_bps"]) == ("150", "300.0000")
    [alert] = wait_for(lambda: read_all(kafka_bootstrap, topics["alerts"]), FLOW_TIMEOUT, "the alert")
    body = json.loads(alert.value() or b"{}")
    assert (body["rule"], body["trade_ids"]) == ("off_market_fill", [record["trade"]["trade_id"]])
    assert db.value("SELECT count(*) FROM behavioral_alerts") == 1
    assert db.value("SELECT status FROM trade_enrichments") == "enriched"
    db.close()
