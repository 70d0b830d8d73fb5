"""Bronze archive and replay, end to end: the real metadata, price (top-100 and trending) and
audit functions against the simulated market over HTTP, archiving every raw response and
every job message to S3 (a moto server over HTTP), committing to real PostgreSQL and
announcing on real Kafka; then silver is wiped and rebuilt from bronze, and must equal what
the live path wrote, row for row.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import time_machine

from local import services
from shared.archive.bronze import JOB_SOURCE, ArchivedResponse, BronzeArchive, hour_prefixes, object_key
from shared.crawler import store
from shared.crawler.__main__ import main as archive_cli
from shared.crawler.candle_fold import candle_fold
from shared.crawler.models import PriceQuote
from shared.crawler.pipelines.price_events import PRICE_UPDATED_TYPE
from shared.crawler.replay import SOURCES, attempts_of, replay
from shared.observability.metrics import render_prometheus, sample_value
from shared.upstream import binance
from tests.helpers.db import Database
from tests.helpers.functions import function_app
from tests.helpers.kafka import consume, headers_of
from tests.helpers.market import market_resources
from tests.helpers.stack import Top100Stack, body_of, utc_now_iso

pytestmark = [pytest.mark.infra, pytest.mark.usefixtures("aws_credentials")]

SILVER = {
    "tokens": "SELECT token_key, symbol, name, chain, contract, decimals, logo_url, contracts::text, websites::text,"
    " socials::text, tags, coingecko_id, market_cap_usd::text, market_cap_rank, main_pool::text,"
    " markets::text, is_stablecoin, source FROM tokens ORDER BY token_key",
    "token_contracts": "SELECT chain, address, token_key, decimals FROM token_contracts ORDER BY 1, 2",
    "token_set_members": "SELECT token_set, token_key, rank, left_at IS NULL FROM token_set_members ORDER BY 1, 2",
    "token_prices": "SELECT token_key, price_usdt::text, source, observed_at, job_id FROM token_prices ORDER BY 1, 4",
    "token_latest_prices": "SELECT token_key, price_usdt::text, source, observed_at, job_id FROM token_latest_prices"
    " ORDER BY 1",
    "token_candles": "SELECT token_key, resolution, bucket_start, open::text, high::text, low::text, close::text,"
    " open_at, close_at, ticks FROM token_candles ORDER BY 1, 2, 3",
    "token_audits": "SELECT token_key, audit_provider, audit_score::text, is_verified, is_honeypot, buy_tax::text,"
    " sell_tax::text, report_url, flags::text, audited_at, job_id FROM token_audits ORDER BY 1, 2",
}


def archived_stack(market, database_url, kafka_bootstrap, topics, **archive) -> Top100Stack:
    resources = market_resources(
        market,
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        price_topic=topics["price"],
        metadata_topic=topics["metadata"],
        price_updated_topic=topics["price_updated"],
        archive_enabled=True,
        **archive,
    )
    return Top100Stack(market, resources, Database(database_url), topics, kafka_bootstrap)


@pytest.fixture
def stack(simulated_market, clean_db, kafka_bootstrap, top100_topics, s3_endpoint):
    built = archived_stack(
        simulated_market,
        clean_db,
        kafka_bootstrap,
        top100_topics,
        s3_endpoint_url=s3_endpoint,
        s3_bucket=f"bronze-{uuid.uuid4().hex[:12]}",
    )
    yield built
    built.db.close()
    built.resources.close()


def silver(db: Database) -> dict[str, list[dict]]:
    return {table: db.rows(sql) for table, sql in SILVER.items()}


def live_silver(stack: Top100Stack) -> dict[str, list[dict]]:
    """The silver rows once the live jobs' ticks are folded into candles (shortly after each job)."""
    assert candle_fold(stack.resources).flush()
    return silver(stack.db)


def wipe_silver(db: Database) -> None:
    db.rows(
        "TRUNCATE tokens, token_contracts, token_set_members, token_prices, token_latest_prices,"
        " token_candles, token_audits CASCADE"
    )


def all_keys(archive: BronzeArchive) -> list[str]:
    pages = archive.s3.get_paginator("list_objects_v2").paginate(Bucket=archive.bucket)
    return [item["Key"] for page in pages for item in page.get("Contents", ())]


def archived_records(archive: BronzeArchive) -> dict[str, ArchivedResponse]:
    return {key: archive.read(key) for key in all_keys(archive)}


def top100_price_job() -> dict:
    return {
        "job_type": "price",
        "token_type": "top100",
        "symbols": [],
        "timestamp": utc_now_iso(),
        "job_id": f"top100-price:{uuid.uuid4().hex[:8]}",
    }


def test_replay_from_bronze_reproduces_the_live_silver_rows(stack):
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=5)
    # Metadata first, prices a second later; the first two jobs on a clock that stands still.
    with time_machine.travel(start, tick=False):
        assert stack.refresh_top100().status == 200
    with time_machine.travel(start + timedelta(seconds=1), tick=False):
        answer = stack.price(top100_price_job())
        assert answer.status == 200, answer.body
    # The second job on a running clock: its prices are observed before the first fetch, so
    # only the observation time the job published to bronze gives the replay the live rows.
    with time_machine.travel(start + timedelta(seconds=6), tick=True):
        assert stack.price(top100_price_job()).status == 200
    live = live_silver(stack)
    assert len(live["token_prices"]) >= 2 * 90 and len(live["tokens"]) == 100
    assert {row["source"] for row in live["token_prices"]} >= {"binance", "coingecko"}  # fallbacks were used

    archive = stack.resources.archive
    keys = all_keys(archive)
    responses = [k for k in keys if not k.startswith(f"bronze/{JOB_SOURCE}/")]
    # One object per response the market served (every request of the three jobs), and one per job message.
    assert len(responses) == sum(stack.market.stats.count(api) for api in SOURCES)
    assert len(keys) - len(responses) == 3
    assert all(k.startswith(f"bronze/{k.split('/')[1]}/{start:%Y-%m-%d}/") for k in keys)

    wipe_silver(stack.db)
    assert silver(stack.db)["token_prices"] == []
    report = replay(
        stack.resources.db, archive, stack.settings, start - timedelta(minutes=1), start + timedelta(minutes=1)
    )
    assert report.jobs == 3 and not report.skipped and not report.diverged
    assert silver(stack.db) == live

    # Replaying again changes nothing: prices are not duplicated, tokens are overwritten alike.
    again = replay(
        stack.resources.db, archive, stack.settings, start - timedelta(minutes=1), start + timedelta(minutes=1)
    )
    assert again.prices_inserted == 0
    assert silver(stack.db) == live


def test_a_replayed_implausible_price_is_held_back_as_suspect_like_a_live_one(stack, caplog):
    """Replay screens every price as the live path does, against the prices of its observation's
    own time: a bad price stored before it holds it back; a price stored after it does not."""
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=5)
    stack.market.clock.freeze()
    with time_machine.travel(start, tick=False):
        assert stack.refresh_top100().status == 200
    with time_machine.travel(start + timedelta(seconds=10), tick=False):
        answer = stack.price(
            {"job_type": "price", "token_type": "top100", "symbols": ["BTC", "ETH", "HYPE"], "timestamp": utc_now_iso()}
        )
        assert answer.status == 200 and body_of(answer)["succeeded"] == 3, answer.body
    live = {r["token_key"]: r for r in stack.db.rows("SELECT token_key, price_usdt, observed_at FROM token_prices")}
    btc, eth = "native:bitcoin", "native:ethereum"
    observed = live[btc]["observed_at"]

    stack.db.rows("TRUNCATE token_prices, token_latest_prices, token_candles, token_candle_ticks")
    # BTC: a thousand times off, 5 s before the job observed it (what the live screen would have
    # had as reference). ETH: a thousand times off, stored *after* the observation (today's latest).
    with stack.resources.db.transaction() as conn:
        store.write_prices(
            conn,
            [
                PriceQuote(btc, "BTC", live[btc]["price_usdt"] * 1000, "binance", observed - timedelta(seconds=5)),
                PriceQuote(eth, "ETH", live[eth]["price_usdt"] * 1000, "binance", observed + timedelta(minutes=3)),
            ],
            "seed",
        )
    before = sample_value(render_prometheus(), "crawler_prices_suspect_total", token_set="top100") or 0

    with caplog.at_level("WARNING", logger="shared.crawler.pipelines.plausibility"):
        report = replay(
            stack.resources.db,
            stack.resources.archive,
            stack.settings,
            start - timedelta(minutes=1),
            start + timedelta(minutes=1),
        )

    assert report.prices_suspect == 1 and [(k, r[:14]) for _, k, r in report.suspect] == [(btc, "suspect price:")]
    assert sample_value(render_prometheus(), "crawler_prices_suspect_total", token_set="top100") == before + 1
    assert any(m.startswith(f"{btc} held back: suspect price:") for m in caplog.messages)
    replayed = {
        r["token_key"]: r["price_usdt"]
        for r in stack.db.rows("SELECT token_key, price_usdt FROM token_prices WHERE job_id IS DISTINCT FROM 'seed'")
    }
    assert replayed == {k: live[k]["price_usdt"] for k in live if k != btc}  # BTC held back, ETH and HYPE stored


def trending_job(job_id: str, **fields) -> dict:
    return {
        "job_type": "price",
        "token_type": "trending",
        "symbols": [],
        "timestamp": utc_now_iso(),
        "job_id": job_id,
        **fields,
    }


def test_trending_and_audit_jobs_replay_to_the_live_rows(stack):
    # Real clocks: the replayed times can only come from what the jobs published to bronze.
    start = datetime.now(timezone.utc)
    discovery = stack.price(trending_job(f"trending:{uuid.uuid4().hex[:8]}"))
    assert discovery.status == 200, discovery.body
    assert body_of(discovery)["discovery"] == "dexscreener" and body_of(discovery)["succeeded"] >= 10
    members = [
        r["token_key"]
        for r in stack.db.rows("SELECT token_key FROM token_set_members WHERE token_set = 'trending' ORDER BY rank")
    ]
    # A job naming tokens (a Solana mint among them) prices them again without touching the set.
    named = stack.price(
        trending_job(
            f"trending:{uuid.uuid4().hex[:8]}",
            token_keys=members[:3] + ["solana:EKpQGSJtjMFqKZ9KQanSqYXRcF8fBopzLHYxdM65zcjm"],
        )
    )
    assert named.status == 200, named.body
    audit = function_app("audit", stack.resources)
    audited = stack.deliver(
        audit,
        {
            "job_type": "audit",
            "token_type": "trending",
            "symbols": [],
            "token_keys": members,
            "timestamp": utc_now_iso(),
            "job_id": f"audit:{uuid.uuid4().hex[:8]}",
        },
        topic=stack.settings.audit_topic,
        source_name="audit-request-source",
    )
    assert audited.status == 200, audited.body
    live = live_silver(stack)
    assert len(live["token_audits"]) == body_of(audited)["succeeded"] >= 10
    assert len({r["observed_at"] for r in live["token_prices"]}) == 2  # one observation time per job
    assert {r["source"] for r in live["token_prices"]} == {"dexscreener"}

    wipe_silver(stack.db)
    end = datetime.now(timezone.utc) + timedelta(seconds=1)
    report = replay(stack.resources.db, stack.resources.archive, stack.settings, start - timedelta(seconds=1), end)
    assert (report.jobs, report.skipped, report.diverged) == (3, [], [])
    assert report.audits_upserted == len(live["token_audits"])
    assert silver(stack.db) == live


def test_an_all_pairs_binance_answer_replays_to_the_pairs_the_job_wanted(
    simulated_market, clean_db, kafka_bootstrap, top100_topics, s3_endpoint
):
    """When a job's pairs need several `symbols=` batches, the client asks `ticker/price` for every
    pair; the replayed live client asks the same and narrows the answer to the job's pairs (here
    the batches are made short, so that a top-100 job needs several)."""
    stack = archived_stack(
        simulated_market,
        clean_db,
        kafka_bootstrap,
        top100_topics,
        s3_endpoint_url=s3_endpoint,
        s3_bucket=f"bronze-{uuid.uuid4().hex[:12]}",
        upstream={"binance": {"symbols_query_max_chars": 200}},
    )
    try:
        start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=5)
        stack.market.clock.freeze(start)
        with time_machine.travel(start, tick=False):
            assert stack.refresh_top100().status == 200
        for second in (1, 2):  # the second job uses the listing (exchangeInfo) the first one fetched
            with time_machine.travel(start + timedelta(seconds=second), tick=False):
                answer = stack.price(top100_price_job())
                assert answer.status == 200, answer.body
        live = live_silver(stack)
        assert {r["source"] for r in live["token_latest_prices"]} >= {"binance"}

        tickers = [
            r
            for r in archived_records(stack.resources.archive).values()
            if r.source == "binance" and r.path == binance.TICKER_PRICE_PATH
        ]
        assert len(tickers) == 2 and all(r.params == {} for r in tickers)  # every pair, twice

        wipe_silver(stack.db)
        report = replay(
            stack.resources.db,
            stack.resources.archive,
            stack.settings,
            start - timedelta(minutes=1),
            start + timedelta(minutes=1),
        )
        assert (report.jobs, report.skipped, report.diverged) == (3, [], [])
        assert silver(stack.db) == live
    finally:
        stack.db.close()
        stack.resources.close()


def test_an_all_pairs_answer_without_its_job_message_is_reported_not_guessed(stack):
    at = datetime(2025, 6, 25, 21, 0, 5, tzinfo=timezone.utc)
    archive = stack.resources.archive
    archive.write(
        ArchivedResponse(
            "binance",
            binance.TICKER_PRICE_PATH,
            {},
            200,
            {},
            at,
            "top100-price:old",
            b'[{"symbol":"BTCUSDT","price":"64000.00000000"}]',
            {},
        )
    )
    report = replay(stack.resources.db, archive, stack.settings, at - timedelta(seconds=1), at + timedelta(seconds=1))
    assert report.jobs == 0 and report.prices_inserted == 0
    assert [job for job, _ in report.skipped] == ["top100-price:old"]
    assert "without its job message" in report.skipped[0][1]


def test_one_price_updated_event_per_committed_batch(stack):
    assert stack.refresh_top100().status == 200
    answer = stack.price(
        {"job_type": "price", "token_type": "top100", "symbols": ["BTC", "ETH", "SOL"], "timestamp": utc_now_iso()}
    )
    assert answer.status == 200, answer.body
    [message] = consume(stack.bootstrap, stack.topics["price_updated"], 1, settle=1.0)
    headers = headers_of(message)
    assert headers["ce_type"] == PRICE_UPDATED_TYPE and message.key() == b"top100"
    data = json.loads(message.value())
    committed = stack.db.rows("SELECT token_key, price_usdt::text AS price, observed_at, job_id FROM token_prices")
    assert data["job_id"] == body_of(answer)["job_id"] == committed[0]["job_id"]
    assert sorted((p["token_key"], p["price_usdt"]) for p in data["prices"]) == sorted(
        (r["token_key"], r["price"]) for r in committed
    )
    assert {datetime.fromisoformat(p["observed_at"]) for p in data["prices"]} == {r["observed_at"] for r in committed}


def test_a_redelivered_response_is_stored_once(stack):
    archive = stack.resources.archive
    record = ArchivedResponse(
        "binance",
        "/api/v3/ticker/price",
        {"symbols": '["BTCUSDT"]'},
        200,
        {"content-type": "application/json"},
        datetime(2025, 6, 25, 21, 0, 5, 123456, tzinfo=timezone.utc),
        "top100-price:20250625T210005Z:0",
        b'[{"symbol":"BTCUSDT","price":"1.00000000"}]',
        {},
    )
    first = archive.write(record)
    second = archive.write(record)
    assert (
        first
        == second
        == (f"bronze/binance/2025-06-25/21/top100-price%3A20250625T210005Z%3A0/210005123456-{record.digest()}.json")
    )
    assert all_keys(archive) == [first]
    assert archive.read(first) == record
    assert sample_value(render_prometheus(), "crawler_archive_writes_total", outcome="duplicate", source="binance") >= 1


def test_archive_failures_never_fail_the_crawl(simulated_market, clean_db, kafka_bootstrap, top100_topics):
    dead = f"http://127.0.0.1:{services.free_port()}"  # nothing listens here
    broken = archived_stack(
        simulated_market, clean_db, kafka_bootstrap, top100_topics, s3_endpoint_url=dead, archive_timeout_seconds=0.5
    )
    try:
        assert broken.refresh_top100().status == 200
        answer = broken.price(
            {"job_type": "price", "token_type": "top100", "symbols": ["BTC"], "timestamp": utc_now_iso()}
        )
        assert answer.status == 200 and body_of(answer)["succeeded"] == 1
        assert (
            sample_value(render_prometheus(), "crawler_archive_writes_total", outcome="failed", source="binance") or 0
        ) >= 1
    finally:
        broken.db.close()
        broken.resources.close()


def test_replay_cli_dry_run(stack, capsys, monkeypatch):
    with time_machine.travel(datetime(2025, 6, 25, 21, 0, 0, tzinfo=timezone.utc), tick=False):
        assert stack.refresh_top100().status == 200
    for name, value in {
        "DATABASE_URL": stack.settings.database_url,
        "S3_ENDPOINT_URL": stack.settings.s3_endpoint_url,
        "S3_BUCKET": stack.settings.s3_bucket,
    }.items():
        monkeypatch.setenv(name, value)
    from shared.config import get_settings

    get_settings.cache_clear()
    try:
        assert (
            archive_cli(["replay", "--from", "2025-06-25T20:59:00Z", "--to", "2025-06-25T21:01:00Z", "--dry-run"]) == 0
        )
    finally:
        get_settings.cache_clear()
    summary = json.loads(capsys.readouterr().out)
    assert summary["jobs"] == 1 and summary["tokens_upserted"] == 100 and summary["dry_run"] is True
    with pytest.raises(SystemExit):
        archive_cli(["replay", "--from", "2025-06-25T21:00:00", "--to", "2025-06-25T22:00:00Z"])


def test_attempts_split_on_a_repeated_answered_request():
    at = datetime(2025, 6, 25, 21, tzinfo=timezone.utc)

    def rec(path: str, status: int, seconds: int) -> ArchivedResponse:
        return ArchivedResponse("binance", path, {}, status, {}, at + timedelta(seconds=seconds), "j", b"[]", {})

    records = [rec("/a", 503, 0), rec("/a", 200, 1), rec("/b", 200, 2), rec("/a", 200, 30), rec("/b", 200, 31)]
    assert [[r.fetched_at.second for r in a] for a in attempts_of(records)] == [[0, 1, 2], [30, 31]]
    assert hour_prefixes("bronze", "binance", at + timedelta(minutes=59), at + timedelta(hours=1, minutes=1)) == [
        "bronze/binance/2025-06-25/21/",
        "bronze/binance/2025-06-25/22/",
    ]
    assert object_key("bronze", rec("/a", 200, 0)).startswith("bronze/binance/2025-06-25/21/j/210000000000-")
