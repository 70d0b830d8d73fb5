"""Bronze, Kafka and silver together: each raw Finnhub answer archived once in S3 (a moto server over
HTTP), each new quote one CloudEvent on its topic and one silver row, the API key nowhere."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest

from local.market.server import SimulatedMarket
from shared.archive.bronze import BronzeArchive
from shared.config import FinnhubSettings, Settings
from shared.db.connection import ConnectionPool
from shared.kafka import EventProducer
from shared.stocks.pipeline import run_stock_quotes
from shared.upstream.finnhub import FinnhubClient
from shared.upstream.jsonbody import decode_json
from tests.helpers.kafka import consume, headers_of

pytestmark = [pytest.mark.infra, pytest.mark.usefixtures("aws_credentials")]
IN_SESSION = datetime(2025, 7, 21, 15, 0, tzinfo=timezone.utc)
KEY = "finnhub-secret-key-123"


def test_raw_answers_to_bronze_quotes_to_kafka_and_silver(
    simulated_market: SimulatedMarket,
    clean_db: str,
    kafka_bootstrap: str,
    unique_topic: Callable[..., str],
    s3_endpoint: str,
) -> None:
    simulated_market.clock.freeze(IN_SESSION)
    topic = unique_topic("stock-quotes", partitions=1)
    settings = Settings(
        archive_enabled=True, s3_endpoint_url=s3_endpoint, s3_bucket="stock-bronze-test", archive_create_bucket=True
    )
    archive = BronzeArchive.from_settings(settings)
    client = FinnhubClient.from_settings(
        FinnhubSettings(base_url=simulated_market.base_url("finnhub"), api_key=KEY),
        on_response=archive.record_response,
    )
    pool = ConnectionPool(clean_db, size=2)
    producer = EventProducer(kafka_bootstrap)
    started = datetime.now(timezone.utc)
    try:
        outcome = run_stock_quotes(
            ["AAPL", "MSFT", "ZZZZ"],
            client,
            pool.transaction,
            clock=simulated_market.clock.now_datetime,
            publish=lambda events: producer.publish(topic, events),
        )
        assert len(outcome.new) == 2 and outcome.no_data == ["ZZZZ"]
        # Archived under the real fetch time (the market's clock alone is frozen).
        keys = list(
            archive.keys("finnhub", started - timedelta(hours=1), datetime.now(timezone.utc) + timedelta(hours=1))
        )
        assert len(keys) == 3  # every raw answer once, the no-data one included
        records = [archive.read(key) for key in keys]
        assert sorted(r.params["symbol"] for r in records) == ["AAPL", "MSFT", "ZZZZ"]
        for record in records:
            assert KEY not in json.dumps(record.envelope())
            assert isinstance(decode_json(record.body), dict)
        messages = consume(kafka_bootstrap, topic, 2)
        assert sorted(headers_of(m)["ce_subject"] for m in messages) == ["stock:AAPL", "stock:MSFT"]
        with pool.connection() as conn:
            assert conn.run("SELECT count(*) FROM stock_quotes") == [[2]]
    finally:
        producer.close()
        pool.close()
        client.http.close()
