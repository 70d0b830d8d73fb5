"""Bronze archive and replay, end to end: the real metadata and price functions against the
simulated market over HTTP, archiving every raw response to S3 (a moto server over HTTP),
committing to real PostgreSQL and announcing on real Kafka; then silver is wiped and
rebuilt from bronze, and must equal what the live path wrote, row for row.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from moto.server import ThreadedMotoServer

from local import services
from shared.archive.bronze import ArchivedResponse, BronzeArchive, hour_prefixes, object_key
from shared.archive.replay import SOURCES, attempts_of, replay
from shared.archive.__main__ import main as archive_cli
from shared.metrics import render_prometheus, sample_value
from shared.pipelines.price_events import PRICE_UPDATED_TYPE
from tests.helpers.db import Database
from tests.helpers.kafka import consume, headers_of
from tests.helpers.market import market_resources
from tests.helpers.stack import Top100Stack, body_of, utc_now_iso

pytestmark = pytest.mark.infra

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
}


@pytest.fixture(scope="module")
def s3_endpoint() -> str:
    """A moto S3 server over real HTTP on a free port."""
    port = services.free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)


def archived_stack(market, database_url, kafka_bootstrap, topics, **archive) -> Top100Stack:
    resources = market_resources(
        market, database_url=database_url, kafka_bootstrap_servers=kafka_bootstrap,
        price_topic=topics["price"], metadata_topic=topics["metadata"], price_updated_topic=topics["price_updated"],
        archive_enabled=True, **archive,
    )
    return Top100Stack(market, resources, Database(database_url), topics, kafka_bootstrap)


@pytest.fixture
def stack(simulated_market, clean_db, kafka_bootstrap, top100_topics, s3_endpoint):
    built = archived_stack(simulated_market, clean_db, kafka_bootstrap, top100_topics,
                           s3_endpoint_url=s3_endpoint, s3_bucket=f"bronze-{uuid.uuid4().hex[:12]}")
    yield built
    built.db.close()
    built.resources.close()


def silver(db: Database) -> dict[str, list[dict]]:
    return {table: db.rows(sql) for table, sql in SILVER.items()}


def wipe_silver(db: Database) -> None:
    db.rows("TRUNCATE tokens, token_contracts, token_set_members, token_prices, token_latest_prices,"
            " token_candles CASCADE")


def all_keys(archive: BronzeArchive) -> list[str]:
    pages = archive.s3.get_paginator("list_objects_v2").paginate(Bucket=archive.bucket)
    return [item["Key"] for page in pages for item in page.get("Contents", ())]


def top100_price_job() -> dict:
    return {"job_type": "price", "token_type": "top100", "symbols": [], "timestamp": utc_now_iso(),
            "job_id": f"top100-price:{uuid.uuid4().hex[:8]}"}


def test_replay_from_bronze_reproduces_the_live_silver_rows(stack):
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=5)
    # Our clock and the market's stand still during each job, so the live observation time
    # equals the fetch time bronze records; metadata first, prices a second later.
    with time_machine.travel(start, tick=False):
        assert stack.refresh_top100().status == 200
    with time_machine.travel(start + timedelta(seconds=1), tick=False):
        answer = stack.price(top100_price_job())
        assert answer.status == 200, answer.body
    with time_machine.travel(start + timedelta(seconds=6), tick=False):
        assert stack.price(top100_price_job()).status == 200
    live = silver(stack.db)
    assert len(live["token_prices"]) >= 2 * 90 and len(live["tokens"]) == 100
    assert {row["source"] for row in live["token_prices"]} >= {"binance", "coingecko"}  # fallbacks were used

    archive = stack.resources.archive
    keys = all_keys(archive)
    # One object per response the market served (every request of the three jobs).
    assert len(keys) == sum(stack.market.stats.count(api) for api in SOURCES)
    assert all(k.startswith(f"bronze/{k.split('/')[1]}/{start:%Y-%m-%d}/") for k in keys)

    wipe_silver(stack.db)
    assert silver(stack.db)["token_prices"] == []
    report = replay(stack.resources.db, archive, stack.settings, start - timedelta(minutes=1),
                    start + timedelta(minutes=1))
    assert report.jobs == 3 and not report.skipped
    assert silver(stack.db) == live

    # Replaying again changes nothing: prices are not duplicated, tokens are overwritten alike.
    again = replay(stack.resources.db, archive, stack.settings, start - timedelta(minutes=1),
                   start + timedelta(minutes=1))
    assert again.prices_inserted == 0
    assert silver(stack.db) == live


def test_one_price_updated_event_per_committed_batch(stack):
    assert stack.refresh_top100().status == 200
    answer = stack.price({"job_type": "price", "token_type": "top100", "symbols": ["BTC", "ETH", "SOL"],
                          "timestamp": utc_now_iso()})
    assert answer.status == 200, answer.body
    [message] = consume(stack.bootstrap, stack.topics["price_updated"], 1, settle=1.0)
    headers = headers_of(message)
    assert headers["ce_type"] == PRICE_UPDATED_TYPE and message.key() == b"top100"
    data = json.loads(message.value())
    committed = stack.db.rows("SELECT token_key, price_usdt::text AS price, observed_at, job_id FROM token_prices")
    assert data["job_id"] == body_of(answer)["job_id"] == committed[0]["job_id"]
    assert sorted((p["token_key"], p["price_usdt"]) for p in data["prices"]) == \
        sorted((r["token_key"], r["price"]) for r in committed)
    assert {datetime.fromisoformat(p["observed_at"]) for p in data["prices"]} == {r["observed_at"] for r in committed}


def test_a_redelivered_response_is_stored_once(stack):
    archive = stack.resources.archive
    record = ArchivedResponse("binance", "/api/v3/ticker/price", {"symbols": '["BTCUSDT"]'}, 200,
                              {"content-type": "application/json"}, datetime(2025, 6, 25, 21, 0, 5, 123456,
                                                                             tzinfo=timezone.utc),
                              "top100-price:20250625T210005Z:0", b'[{"symbol":"BTCUSDT","price":"1.00000000"}]', {})
    first = archive.write(record)
    second = archive.write(record)
    assert first == second == ("bronze/binance/2025-06-25/21/top100-price%3A20250625T210005Z%3A0/"
                               f"210005123456-{record.digest()}.json")
    assert all_keys(archive) == [first]
    assert archive.read(first) == record
    assert sample_value(render_prometheus(), "archive_writes_total", outcome="duplicate", source="binance") >= 1


def test_archive_failures_never_fail_the_crawl(simulated_market, clean_db, kafka_bootstrap, top100_topics):
    dead = f"http://127.0.0.1:{services.free_port()}"  # nothing listens here
    broken = archived_stack(simulated_market, clean_db, kafka_bootstrap, top100_topics, s3_endpoint_url=dead,
                            archive_timeout_seconds=0.5)
    try:
        assert broken.refresh_top100().status == 200
        answer = broken.price({"job_type": "price", "token_type": "top100", "symbols": ["BTC"],
                               "timestamp": utc_now_iso()})
        assert answer.status == 200 and body_of(answer)["succeeded"] == 1
        assert (sample_value(render_prometheus(), "archive_writes_total", outcome="failed", source="binance") or 0) >= 1
    finally:
        broken.db.close()
        broken.resources.close()


def test_replay_cli_dry_run(stack, capsys, monkeypatch):
    with time_machine.travel(datetime(2025, 6, 25, 21, 0, 0, tzinfo=timezone.utc), tick=False):
        assert stack.refresh_top100().status == 200
    for name, value in {"DATABASE_URL": stack.settings.database_url, "S3_ENDPOINT_URL": stack.settings.s3_endpoint_url,
                        "S3_BUCKET": stack.settings.s3_bucket}.items():
        monkeypatch.setenv(name, value)
    from shared.config import get_settings
    get_settings.cache_clear()
    try:
        assert archive_cli(["replay", "--from", "2025-06-25T20:59:00Z", "--to", "2025-06-25T21:01:00Z",
                            "--dry-run"]) == 0
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
        "bronze/binance/2025-06-25/21/", "bronze/binance/2025-06-25/22/"]
    assert object_key("bronze", rec("/a", 200, 0)).startswith("bronze/binance/2025-06-25/21/j/210000000000-")
