"""Committed prices are always announced (issue #22): the price.updated event of a batch whose
first publish Kafka refused still reaches the topic, once per batch id, through the event outbox
(shared/crawler/event_outbox.py), on real PostgreSQL and Kafka."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from shared.crawler.pipelines.price_events import price_event_id
from shared.kafka import EventProducer
from shared.runtime.app import FunctionApp
from shared.runtime.resources import Resources
from tests.helpers.functions import function_app
from tests.helpers.kafka import headers_of, read_all
from tests.helpers.stack import Top100Stack, body_of, utc_now_iso

pytestmark = pytest.mark.infra

SOURCE = "/price-crawler/price"


@pytest.fixture
def refusing_price_app(seeded_stack: Top100Stack, free_port: int) -> Iterator[FunctionApp]:
    """The price function on the stack's database and market whose Kafka refuses every publish:
    its producer points at a closed port and gives a record up after 1 s."""
    closed = f"127.0.0.1:{free_port}"
    resources = Resources(seeded_stack.settings.model_copy(update={"kafka_bootstrap_servers": closed}))
    resources.once("producer", lambda: EventProducer(closed, extra={"message.timeout.ms": 1000}))
    try:
        yield function_app("price", resources)
    finally:
        resources.close()


def job(job_id: str, expires_in: float) -> dict:
    expires_at = datetime.now(timezone.utc) + timedelta(seconds=expires_in)
    return {
        "job_type": "price",
        "token_type": "top100",
        "symbols": ["BTC", "ETH", "HYPE"],
        "timestamp": utc_now_iso(),
        "job_id": job_id,
        "expires_at": expires_at.isoformat().replace("+00:00", "Z"),
    }


def committed_prices(stack: Top100Stack, job_id: str) -> list[dict]:
    rows = stack.db.rows(
        "SELECT token_key, price_usdt, observed_at FROM token_prices WHERE job_id = :j ORDER BY token_key", j=job_id
    )
    return [
        {"token_key": r["token_key"], "price_usdt": format(r["price_usdt"], "f"), "observed_at": r["observed_at"]}
        for r in rows
    ]


def announced(event) -> list[dict]:
    return sorted(
        (
            {
                "token_key": p["token_key"],
                "price_usdt": p["price_usdt"],
                "observed_at": datetime.fromisoformat(p["observed_at"].replace("Z", "+00:00")),
            }
            for p in json.loads(event.value())["prices"]
        ),
        key=lambda p: p["token_key"],
    )


def outbox_rows(stack: Top100Stack) -> int:
    return int(stack.db.value("SELECT count(*) FROM event_outbox"))


def test_a_tick_whose_event_kafka_refused_is_announced_when_its_redelivery_finds_it_expired(
    seeded_stack, refusing_price_app
):
    stack = seeded_stack
    stack.market.clock.freeze()
    message = job("top100-price:refused:0", expires_in=2.5)

    first = stack.deliver(refusing_price_app, message, topic=stack.topics["price"], offset=7, source_name="p")

    assert first.status == 503, first.body  # Kafka did not confirm: KafkaSource retries
    committed = committed_prices(stack, "top100-price:refused:0")
    assert len(committed) == 3  # the prices are committed (and served) all the same
    assert read_all(stack.bootstrap, stack.topics["price_updated"]) == []
    assert outbox_rows(stack) == 1
    asked = stack.market.stats.count("binance")

    while datetime.now(timezone.utc) <= datetime.fromisoformat(message["expires_at"].replace("Z", "+00:00")):
        time.sleep(0.1)  # the retry comes after the tick expired
    late = stack.deliver(stack.price_app, message, topic=stack.topics["price"], offset=7, source_name="p")
    [log] = stack.db.job_rows("top100-price:refused:0", kind="job")
    again = stack.deliver(stack.price_app, message, topic=stack.topics["price"], offset=7, source_name="p")

    assert late.status == again.status == 200
    assert body_of(late)["status"] == "expired"
    assert stack.market.stats.count("binance") == asked  # the expired attempts asked no API
    [event] = read_all(stack.bootstrap, stack.topics["price_updated"])  # once, though delivered three times
    assert headers_of(event)["ce_id"] == price_event_id(SOURCE, "top100", "top100-price:refused:0")
    assert announced(event) == committed  # what was committed, not a new observation
    assert log["status"] == "expired" and "1 event(s) of what an earlier attempt committed published" in log["message"]
    assert outbox_rows(stack) == 0


def test_a_redelivery_in_time_announces_the_batch_once_under_its_id(seeded_stack, refusing_price_app):
    stack = seeded_stack
    stack.market.clock.freeze()
    message = job("top100-price:refused:1", expires_in=60)

    first = stack.deliver(refusing_price_app, message, topic=stack.topics["price"], offset=8, source_name="p")
    retried = stack.deliver(stack.price_app, message, topic=stack.topics["price"], offset=8, source_name="p")

    assert (first.status, retried.status) == (503, 200)
    assert body_of(retried)["status"] == "succeeded"
    [event] = read_all(stack.bootstrap, stack.topics["price_updated"])
    assert headers_of(event)["ce_id"] == price_event_id(SOURCE, "top100", "top100-price:refused:1")
    assert announced(event) == committed_prices(stack, "top100-price:refused:1")
    assert outbox_rows(stack) == 0


def test_a_batch_whose_job_never_came_back_is_announced_by_a_later_price_job(seeded_stack, refusing_price_app):
    """A job whose retries ran out (dead-lettered) leaves its event staged: the next price job
    publishes it once it is older than EVENT_OUTBOX_DRAIN_AFTER_SECONDS."""
    stack = seeded_stack
    stack.market.clock.freeze()
    stack.configure(event_outbox_drain_after_seconds=1.0)
    lost = job("top100-price:refused:2", expires_in=60)
    assert stack.deliver(refusing_price_app, lost, topic=stack.topics["price"], offset=9, source_name="p").status == 503
    time.sleep(1.2)

    later = job("top100-price:later:3", expires_in=60)
    answer = stack.deliver(stack.price_app, later, topic=stack.topics["price"], offset=10, source_name="p")

    assert answer.status == 200, answer.body
    events = read_all(stack.bootstrap, stack.topics["price_updated"])
    by_id = {headers_of(e)["ce_id"]: e for e in events}
    assert len(events) == len(by_id) == 2  # each batch once
    refused_id = price_event_id(SOURCE, "top100", "top100-price:refused:2")
    assert announced(by_id[refused_id]) == committed_prices(stack, "top100-price:refused:2")
    assert price_event_id(SOURCE, "top100", "top100-price:later:3") in by_id
    assert outbox_rows(stack) == 0
