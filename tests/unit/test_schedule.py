"""Schedules and the jobs one tick emits (shared/crawler/domain/schedule.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from shared.crawler.domain.schedule import SCHEDULES, PriceMember, price_batches, shard, tick_jobs
from shared.crawler.jobs import parse_job_message
from shared.events import OutboundEvent

TICK = datetime(2025, 6, 25, 21, 0, 5, tzinfo=timezone.utc)
SYMBOLS = [f"T{i}" for i in range(100)]


def test_the_schedules_of_design_section_4():
    price, metadata, trending = SCHEDULES["top100-price"], SCHEDULES["top100-metadata"], SCHEDULES["trending"]
    assert (price.topic_setting, price.job_type, price.token_type, price.cadence, price.batched) == (
        "price_topic",
        "price",
        "top100",
        timedelta(seconds=5),
        True,
    )
    assert (metadata.topic_setting, metadata.job_type, metadata.cadence) == (
        "metadata_topic",
        "metadata",
        timedelta(hours=24),
    )
    assert (trending.topic_setting, trending.token_type, trending.cadence) == (
        "price_topic",
        "trending",
        timedelta(minutes=1),
    )


@pytest.mark.parametrize(
    "size, batch, expected", [(100, 100, [100]), (100, 30, [30, 30, 30, 10]), (0, 10, []), (7, 10, [7])]
)
def test_shard(size, batch, expected):
    batches = shard(SYMBOLS[:size], batch)
    assert [len(b) for b in batches] == expected
    assert [s for b in batches for s in b] == SYMBOLS[:size]  # nothing lost, order kept


def test_shard_rejects_a_zero_batch():
    with pytest.raises(ValueError):
        shard(SYMBOLS, 0)


def test_a_price_tick_is_one_job_per_batch_with_a_key_each():
    jobs = tick_jobs(
        SCHEDULES["top100-price"],
        TICK,
        symbols=SYMBOLS,
        batch_size=40,
        traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01",
    )
    assert [key for key, _ in jobs] == ["top100:0", "top100:1", "top100:2"]
    assert [len(job["symbols"]) for _, job in jobs] == [40, 40, 20]
    for i, (_, job) in enumerate(jobs):
        assert job["job_id"] == f"top100-price:20250625T210005.000000Z:{i}"
        assert (job["batch"], job["batches"]) == (i, 3)
        assert job["timestamp"] == "2025-06-25T21:00:05Z"
        assert job["expires_at"] == "2025-06-25T21:00:15Z"  # two cadences: a newer tick supersedes it


def test_the_same_tick_gives_the_same_job_ids():
    """A PingSource retry of one tick must be recognisable as a redelivery in job_logs."""
    first = tick_jobs(SCHEDULES["top100-price"], TICK, symbols=SYMBOLS, batch_size=50)
    again = tick_jobs(SCHEDULES["top100-price"], TICK, symbols=SYMBOLS, batch_size=50)
    later = tick_jobs(SCHEDULES["top100-price"], TICK + timedelta(seconds=5), symbols=SYMBOLS, batch_size=50)
    assert [j["job_id"] for _, j in first] == [j["job_id"] for _, j in again]
    assert not {j["job_id"] for _, j in first} & {j["job_id"] for _, j in later}


def test_a_metadata_tick_is_one_job_without_symbols():
    [(key, job)] = tick_jobs(SCHEDULES["top100-metadata"], TICK)
    assert key == "top100"
    assert job["symbols"] == [] and job["job_id"] == "top100-metadata:20250625T210005.000000Z"
    assert job["expires_at"] == "2025-06-27T21:00:05Z"


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_every_emitted_job_satisfies_the_job_contract(name):
    for key, job in tick_jobs(SCHEDULES[name], TICK, symbols=SYMBOLS[:10], batch_size=4, traceparent=None):
        parsed = parse_job_message(OutboundEvent(type="t", source="s", data=job, key=key).body())
        assert parsed.job_id == job["job_id"]
        assert parsed.expires_at == parsed.timestamp + SCHEDULES[name].expires_after


def test_a_tick_is_routed_by_the_source_that_priced_each_token_last():
    members = (
        [PriceMember(f"B{i}", "binance", "ethereum") for i in range(400)]
        + [PriceMember(f"E{i}", "dexscreener", "ethereum") for i in range(100)]
        + [PriceMember(f"S{i}", "dexscreener", "solana") for i in range(20)]
        + [PriceMember(f"C{i}", "coingecko", None) for i in range(5)]
        + [PriceMember(f"N{i}", None, "bsc") for i in range(150)]  # never priced yet
        + [PriceMember("GT", "geckoterminal", "base"), PriceMember("ORPHAN", "dexscreener", None)]
    )
    batches = price_batches(members, discovery_size=100, dex_job_size=90, routed_job_size=5000)
    by_route = [(b.route, len(b.symbols)) for b in batches]
    assert by_route == [
        ("binance", 400),  # one job: one every-pair request
        ("dexscreener:ethereum", 90),
        ("dexscreener:ethereum", 10),  # jobs of 3 × 30 addresses
        ("dexscreener:solana", 20),
        ("coingecko", 5),
        ("discovery", 100),
        ("discovery", 52),  # rank batches walk the whole source order
    ]
    assert sorted(s for b in batches for s in b.symbols) == sorted(m.symbol for m in members)  # nothing lost
    jobs = tick_jobs(SCHEDULES["top100-price"], TICK, batches=batches)
    assert [job["route"] for _, job in jobs] == [b.route for b in batches]
    assert all(job["batches"] == len(batches) for _, job in jobs)
    for _, job in jobs:
        parse_job_message(OutboundEvent(type="t", source="s", data=job).body())  # the job contract holds


def test_routing_rejects_an_empty_job_size():
    with pytest.raises(ValueError):
        price_batches([PriceMember("BTC", "binance", None)], routed_job_size=0)
