"""The poison corpus against the job contract alone (no infrastructure, milliseconds): every
message either fails parsing with `BadMessage`, or is one of the kinds that only the function
can refuse (a job type for another function, a trending job by symbol, tokens nobody stored).
Nothing raises anything else: an unexpected exception would be a 500, retried, then held in
an ordered partition for minutes."""

from __future__ import annotations

from collections import Counter

import pytest

from shared.crawler.jobs import parse_job_message
from shared.errors import BadMessage
from tests.resilience.poison import poison_messages

REFUSED_BY_THE_FUNCTION = {
    "unknown-job-type:wrong-function",
    "trending-by-symbol",
    "unknown-token:audit",
    "sql:token_keys",
}


def test_every_poison_message_is_a_bad_message_or_refused_by_its_function() -> None:
    outcomes: Counter[str] = Counter()
    for poison in poison_messages(1000):
        try:
            parse_job_message(poison.value)
        except BadMessage as exc:
            assert exc.reason and len(exc.reason) < 2000, poison.damage
            outcomes["bad message"] += 1
            continue
        assert poison.damage in REFUSED_BY_THE_FUNCTION, (poison.damage, (poison.value or b"")[:200])
        outcomes["refused by the function"] += 1
    assert sum(outcomes.values()) == 1000 and outcomes["bad message"] > 800


@pytest.mark.parametrize("damage", [b', "job_id": "a\\u0000b"}', b', "token_keys": ["native:bit\\u0000coin"]}'])
def test_a_nul_character_postgresql_cannot_store_is_refused_up_front(damage: bytes) -> None:
    job = b'{"job_type": "price", "token_type": "top100", "symbols": ["BTC"], "timestamp": "2025-06-25T21:00:00Z"'
    with pytest.raises(BadMessage):
        parse_job_message(job + damage)


def test_json_nested_too_deeply_is_a_bad_message_not_a_recursion_error() -> None:
    with pytest.raises(BadMessage, match="not valid JSON"):
        parse_job_message(b"[" * 100_000 + b"]" * 100_000, max_bytes=1_000_000)
