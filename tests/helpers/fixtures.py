"""pytest fixtures for the top-100 pipeline tests: the functions on real PostgreSQL and Kafka
against the simulated market.

Registered for the whole suite by tests/conftest.py.

    top100_topics   dict         unique price / metadata / price.updated topics          (function)
    stack           Top100Stack  resources + the price, metadata and scheduler apps       (function)
    seeded_stack    Top100Stack  `stack` after a metadata refresh built the top-100 set    (function)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.market.server import SimulatedMarket
from tests.helpers.db import Database
from tests.helpers.market import market_resources
from tests.helpers.stack import Top100Stack


@pytest.fixture
def top100_topics(unique_topic) -> dict[str, str]:
    """Fresh topics for every topic the top-100 functions write, so tests never interfere."""
    return {
        "price": unique_topic("price", partitions=3),
        "metadata": unique_topic("metadata", partitions=1),
        "price_updated": unique_topic("price-updated", partitions=1),
    }


@pytest.fixture
def stack(
    simulated_market: SimulatedMarket, clean_db: str, kafka_bootstrap: str, top100_topics: dict[str, str]
) -> Iterator[Top100Stack]:
    """The functions on the clean test database, the test topics and the simulated market."""
    resources = market_resources(
        simulated_market,
        database_url=clean_db,
        kafka_bootstrap_servers=kafka_bootstrap,
        price_topic=top100_topics["price"],
        metadata_topic=top100_topics["metadata"],
        price_updated_topic=top100_topics["price_updated"],
        price_consumer_group=f"test-group-{top100_topics['price'].rsplit('.', 1)[-1]}",
    )
    db = Database(clean_db)
    try:
        yield Top100Stack(simulated_market, resources, db, top100_topics, kafka_bootstrap)
    finally:
        db.close()
        resources.close()


@pytest.fixture
def seeded_stack(stack: Top100Stack) -> Top100Stack:
    """`stack` with the top-100 set stored by a real metadata refresh against the market."""
    response = stack.refresh_top100()
    assert response.status == 200, response.body
    stack.market.stats.reset()
    return stack
