"""Validated quotes on real Kafka: binary-mode CloudEvents keyed by instrument, exact decimal strings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

import pytest

from shared.kafka import EventProducer
from shared.stocks.events import EVENT_TYPE, quote_event
from shared.stocks.models import StockQuote
from shared.stocks.normalize_finnhub import normalise_quote
from shared.upstream.jsonbody import decode_json
from tests.helpers.kafka import consume, headers_of, json_value
from tests.helpers.upstream_doubles import sample_bytes

pytestmark = pytest.mark.infra


def test_a_quote_is_one_cloudevent_keyed_by_its_instrument(
    kafka_bootstrap: str, unique_topic: Callable[..., str]
) -> None:
    topic = unique_topic("stock-quotes", partitions=1)
    fetched = datetime(2025, 7, 21, 18, 0, tzinfo=timezone.utc)
    quote = normalise_quote("AAPL", decode_json(sample_bytes("finnhub.quote.aapl_2025.json")), fetched)
    assert isinstance(quote, StockQuote)
    producer = EventProducer(kafka_bootstrap)
    try:
        producer.publish(topic, [quote_event(quote)])
    finally:
        producer.close()
    (message,) = consume(kafka_bootstrap, topic, 1)
    headers = headers_of(message)
    assert headers["ce_type"] == EVENT_TYPE and headers["ce_id"] == "stock:AAPL@2025-07-20T20:00:00Z"
    assert message.key() == b"stock:AAPL"
    body = json_value(message)
    assert body["current_price"] == "211.18" and body["day_low"] == "209.7045" and body["currency"] == "USD"
