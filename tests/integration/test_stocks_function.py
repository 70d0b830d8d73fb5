"""The stocks function's handler on real Kafka, PostgreSQL and the moto S3 server, against the
simulated Finnhub: a quote tick archives every raw answer to bronze, stores new quotes in silver,
publishes them on stock-quotes with their dataschema, and leaves a job_logs row; the symbols
beyond the per-tick budget wait for the next ticks; an unknown schedule is refused."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest

from local.market.server import SimulatedMarket
from shared.config import FinnhubSettings, Settings
from shared.errors import BadMessage
from shared.events import InboundEvent
from shared.runtime.resources import Resources
from shared.stocks.contracts import QUOTE_VALIDATED_SCHEMA, StockQuoteValidated
from shared.stocks.handler import per_tick_budget, run_stocks_tick, symbols_for_tick
from shared.stocks.settings import StockSettings
from tests.helpers.kafka import consume, headers_of

pytestmark = [pytest.mark.infra, pytest.mark.usefixtures("aws_credentials")]
IN_SESSION = datetime(2025, 7, 21, 15, 0, tzinfo=timezone.utc)  # Monday, 11:00 EDT


def tick(schedule: str, at: datetime, **extra: object) -> InboundEvent:
    return InboundEvent(
        id=f"ping-{at.timestamp():.0f}",
        source="/apis/v1/namespaces/price-crawler/pingsources/stock-quotes-tick",
        type="dev.knative.sources.ping",
        data=json.dumps({"schedule": schedule, **extra}).encode(),
        time=at.isoformat().replace("+00:00", "Z"),
    )


def make_resources(
    db: str, kafka: str, market: SimulatedMarket, s3: str, topic: str, symbols: str, per_minute: int = 60
) -> Resources:
    settings = Settings(
        database_url=db,
        kafka_bootstrap_servers=kafka,
        archive_enabled=True,
        s3_endpoint_url=s3,
        s3_bucket="stocks-function-test",
        archive_create_bucket=True,
        finnhub=FinnhubSettings(
            base_url=market.base_url("finnhub"), api_key="test-key", rate_limit_per_minute=per_minute
        ),
    )
    resources = Resources(settings)
    # No background gold build here (tests/integration/test_stock_gold.py builds gold).
    settings_ = StockSettings(symbols=symbols, quotes_topic=topic, gold_after_new_quotes=False)
    resources.once("stocks.settings", lambda: settings_)
    return resources


def test_a_quote_tick_runs_bronze_silver_and_kafka_and_logs_the_job(
    simulated_market: SimulatedMarket,
    clean_db: str,
    kafka_bootstrap: str,
    unique_topic: Callable[..., str],
    s3_endpoint: str,
) -> None:
    simulated_market.clock.freeze(IN_SESSION)
    topic = unique_topic("stock-quotes", partitions=1)
    resources = make_resources(clean_db, kafka_bootstrap, simulated_market, s3_endpoint, topic, "AAPL,MSFT,ZZZZ")
    started = datetime.now(timezone.utc)
    try:
        began = time.monotonic()
        summary = run_stocks_tick(tick("stock-quotes", IN_SESSION), resources)
        tick_seconds = time.monotonic() - began
        assert summary["symbols"] == ["AAPL", "MSFT", "ZZZZ"]
        assert summary["new"] == ["AAPL", "MSFT"] and summary["no_data"] == ["ZZZZ"]
        records = consume(kafka_bootstrap, topic, 2)
        for record in records:
            headers = headers_of(record)
            assert headers["ce_type"] == "stocks.quote.validated"
            assert headers["ce_dataschema"] == QUOTE_VALIDATED_SCHEMA
            StockQuoteValidated.model_validate(json.loads(record.value() or b""))
        archive = resources.archive
        assert archive is not None
        keys = list(
            archive.keys("finnhub", started - timedelta(hours=1), datetime.now(timezone.utc) + timedelta(hours=1))
        )
        assert len(keys) == 3  # every raw answer, the no-data one too
        with resources.db.connection() as conn:
            assert conn.run("SELECT count(*) FROM stock_quotes") == [[2]]
            assert conn.run(
                "SELECT job_type, status, tokens_requested, tokens_succeeded FROM job_logs WHERE row_kind = 'job'"
            ) == [["stock_quotes", "succeeded", 3, 3]]
        # The same tick again (a redelivery): the frozen t is a repeat, nothing new is published.
        again = run_stocks_tick(tick("stock-quotes", IN_SESSION), resources)
        assert again["new"] == [] and sorted(again["repeats"]) == ["AAPL", "MSFT"]
        print(f"quote tick (3 symbols: Finnhub, bronze, silver, Kafka): {tick_seconds * 1000:.0f} ms")
    finally:
        resources.close()


def test_symbols_beyond_the_budget_rotate_over_ticks() -> None:
    assert per_tick_budget(60, 6) == 6 and per_tick_budget(5, 6) == 1
    symbols = ["A", "B", "C", "D", "E", "F", "G", "H"]
    asked = [symbols_for_tick(symbols, 3, i) for i in range(8)]
    assert asked[0] == ["A", "B", "C"] and asked[1] == ["D", "E", "F"] and asked[2] == ["G", "H", "A"]
    assert {s for batch in asked[:3] for s in batch} == set(symbols)
    assert symbols_for_tick(symbols[:2], 3, 7) == ["A", "B"]


def test_an_unknown_schedule_is_refused() -> None:
    resources = Resources(Settings())
    with pytest.raises(BadMessage):
        run_stocks_tick(tick("nope", IN_SESSION), resources)
    with pytest.raises(BadMessage):
        run_stocks_tick(InboundEvent(id="x", source="/p", type="t", data=b"not json"), resources)
