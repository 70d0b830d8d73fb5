"""Exchange sync on real Kafka and PostgreSQL against the simulated Binance and Bybit over HTTP:
two ticks with new fills in between publish each fill once to raw-trades and advance the
cursors; an account whose secret is wrong is reported (job_logs, cursor) and writes nothing; a
crash between Kafka's ack and the cursor commit re-fetches, and the normaliser stores each
fill exactly once."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from local.market.server import SimulatedMarket
from shared.config import BinanceSettings, BybitSettings, Settings
from shared.runtime.app import FunctionApp
from shared.runtime.resources import Resources
from shared.trades import sync_job
from shared.trades.settings import TradesSettings
from shared.trades.sync import StreamCursor, SyncSettings
from shared.trades.sync_store import link_account
from tests.helpers.cloudevents import ping_request, request_for_message
from tests.helpers.db import Database
from tests.helpers.functions import function_app
from tests.helpers.kafka import json_value, read_all

pytestmark = pytest.mark.infra
SYMBOLS = ("BTCUSDT", "ETHUSDT")


@dataclass
class Sync:
    market: SimulatedMarket
    resources: Resources
    app: FunctionApp
    db: Database
    bootstrap: str
    topic: str
    keys: dict[str, str]  # account id -> the simulated exchange's API key

    def tick(self) -> Any:
        return ping_request("trade-sync").to(self.app)

    def raw(self) -> list[dict[str, Any]]:
        return [json_value(m) for m in read_all(self.bootstrap, self.topic)]

    def identities(self) -> Counter[tuple[str, str]]:
        """(account label, exchange id) of every raw trade on the topic."""
        found: Counter[tuple[str, str]] = Counter()
        for record in self.raw():
            payload = record["payload"]
            if record["kind"] == "binance.myTrades":
                found[(record["account"], str(payload["id"]))] += 1
            else:
                found[(record["account"], payload["result"]["list"][0]["execId"])] += 1
        return found

    def expected(self) -> Counter[tuple[str, str]]:
        """Every fill the simulated exchanges hold for the good accounts."""
        binance = self.market.exchange_accounts.fills(self.keys["binance"])
        bybit = self.market.exchange_accounts.fills(self.keys["bybit"])
        return Counter([("bn", str(f.trade_id)) for f in binance] + [("bb", f.exec_id) for f in bybit])


@pytest.fixture
def sync(clean_db: str, kafka_bootstrap: str, unique_topic, simulated_market: SimulatedMarket) -> Iterator[Sync]:
    run = uuid.uuid4().hex[:8]
    accounts = simulated_market.exchange_accounts
    secrets = {name: f"{name}-secret-{run}-" + "x" * 24 for name in ("binance", "bybit", "bad")}
    keys = {name: f"{name}-key-{run}" for name in secrets}
    accounts.add_account("binance", keys["binance"], secrets["binance"], SYMBOLS)
    accounts.add_account("bybit", keys["bybit"], secrets["bybit"], SYMBOLS)
    accounts.add_account("binance", keys["bad"], secrets["bad"], SYMBOLS)
    credentials = {
        "cred-bn": {"api_key": keys["binance"], "api_secret": secrets["binance"]},
        "cred-bb": {"api_key": keys["bybit"], "api_secret": secrets["bybit"]},
        "cred-bad": {"api_key": keys["bad"], "api_secret": "not-the-secret-" + "y" * 24},
    }
    topic = unique_topic("raw", partitions=2)
    settings = Settings(
        database_url=clean_db,
        kafka_bootstrap_servers=kafka_bootstrap,
        binance=BinanceSettings(base_url=simulated_market.base_url("binance"), max_retries=1),
    )
    resources = Resources(settings)
    resources.once("trades_settings", lambda: TradesSettings(raw_topic=topic))
    resources.once(
        "trades.sync_settings",
        lambda: SyncSettings.model_validate(
            {
                "exchange_credentials": credentials,
                "sync_binance_page_limit": 25,
                "sync_bybit_page_limit": 10,
                "sync_bybit_lookback_seconds": 120,
                "sync_bybit_window_seconds": 60,
                "sync_settle_seconds": 0,
            }
        ),
    )
    resources.once(
        "trades.sync.bybit_settings",
        lambda: BybitSettings(base_url=simulated_market.base_url("bybit"), max_retries=1),
    )
    with resources.db.connection() as conn:
        link_account(conn, account_id="alice:bn", user_id="alice", exchange="binance", label="bn",
                     credential_name="cred-bn", symbols=SYMBOLS)  # fmt: skip
        link_account(conn, account_id="alice:bb", user_id="alice", exchange="bybit", label="bb",
                     credential_name="cred-bb", categories=("spot",))  # fmt: skip
        link_account(conn, account_id="bob:bad", user_id="bob", exchange="binance", label="bad",
                     credential_name="cred-bad", symbols=("BTCUSDT",))  # fmt: skip
    db = Database(clean_db)
    try:
        yield Sync(simulated_market, resources, function_app("trade_sync", resources), db, kafka_bootstrap, topic,
                   {"binance": keys["binance"], "bybit": keys["bybit"]})  # fmt: skip
    finally:
        db.close()
        resources.close()


def test_two_ticks_publish_each_fill_once_and_advance_the_cursors(sync: Sync) -> None:
    accounts = sync.market.exchange_accounts
    accounts.add_fills(sync.keys["binance"], 70)  # ~35 per symbol: two pages of 25 each
    accounts.add_fills(sync.keys["bybit"], 35)  # four pages of 10
    first = sync.tick()
    assert first.status == 200, first.body
    assert sync.identities() == sync.expected()  # each fill once, none missing

    accounts.add_fills(sync.keys["binance"], 12)
    accounts.add_fills(sync.keys["bybit"], 9)
    second = sync.tick()
    assert second.status == 200, second.body
    found = sync.identities()
    assert found == sync.expected() and set(found.values()) == {1}
    assert sum(found.values()) == 70 + 35 + 12 + 9

    records = sync.raw()
    assert {r["user_id"] for r in records} == {"alice"}
    assert all(r["idempotency_key"] is None for r in records)
    for symbol in SYMBOLS:
        last = max(f.trade_id for f in accounts.fills(sync.keys["binance"]) if f.symbol == symbol)
        cursor = sync.db.rows(
            "SELECT from_id, fills_synced, last_error FROM trade_sync_cursors WHERE account_id = 'alice:bn'"
            " AND stream = :s",
            s=symbol,
        )[0]
        assert cursor["from_id"] == last + 1 and cursor["last_error"] is None
    bybit = sync.db.rows("SELECT * FROM trade_sync_cursors WHERE account_id = 'alice:bb'")[0]
    newest = max(accounts.fills(sync.keys["bybit"]), key=lambda f: (f.time_ms, f.exec_id))
    assert bybit["fills_synced"] == 44 and bybit["next_start_ms"] > newest.time_ms
    jobs = sync.db.rows(
        "SELECT job_id, status, message FROM job_logs WHERE job_type = 'trade_sync' AND row_kind = 'job'"
        " AND job_id LIKE '%alice%' ORDER BY job_id"
    )
    assert len(jobs) == 4 and {j["status"] for j in jobs} == {"succeeded"}


def test_a_bad_signature_is_reported_and_writes_nothing(sync: Sync) -> None:
    sync.market.exchange_accounts.add_fills(sync.keys["binance"], 3)
    response = sync.tick()
    assert response.status == 200, response.body
    assert not [r for r in sync.raw() if r["account"] == "bad"]
    job = sync.db.rows("SELECT status, message FROM job_logs WHERE row_kind = 'job' AND job_id LIKE '%:bob:bad'")[0]
    assert job["status"] == "failed" and "-1022" in job["message"]
    failure = sync.db.rows(
        "SELECT token_ref, message FROM job_logs WHERE row_kind = 'token' AND job_id LIKE '%:bob:bad'"
    )
    assert [f["token_ref"] for f in failure] == ["BTCUSDT"] and "Signature for this request is not valid" in failure[0][
        "message"
    ]
    cursor = sync.db.rows("SELECT from_id, last_error FROM trade_sync_cursors WHERE account_id = 'bob:bad'")[0]
    assert cursor["from_id"] is None and "-1022" in cursor["last_error"]
    everything = json.dumps(sync.db.rows("SELECT * FROM job_logs"), default=str) + json.dumps(
        sync.db.rows("SELECT * FROM trade_sync_cursors"), default=str
    )
    assert "not-the-secret" not in everything and "-secret-" not in everything


def test_a_crash_before_the_cursor_commit_refetches_and_the_fills_are_stored_once(
    sync: Sync, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync.market.exchange_accounts.add_fills(sync.keys["binance"], 8)
    sync.market.exchange_accounts.add_fills(sync.keys["bybit"], 6)
    real_save = sync_job.save_cursor

    def crash(conn: Any, cursor: StreamCursor, job_id: str) -> None:
        if cursor.fills_synced:  # a cursor moving past published fills
            raise ConnectionError("simulated crash after Kafka's ack, before the cursor commit")
        real_save(conn, cursor, job_id)

    monkeypatch.setattr(sync_job, "save_cursor", crash)
    crashed = sync.tick()
    assert crashed.status >= 500
    published = sync.identities()
    assert published and not sync.db.rows("SELECT * FROM trade_sync_cursors WHERE fills_synced > 0")

    monkeypatch.setattr(sync_job, "save_cursor", real_save)
    again = sync.tick()
    assert again.status == 200, again.body
    found = sync.identities()
    assert set(found) == set(sync.expected())  # nothing skipped
    assert {key for key, n in found.items() if n == 2} == set(published)  # what the crash published, again

    normalizer = function_app("trade_normalizer", sync.resources)
    for message in read_all(sync.bootstrap, sync.topic):
        assert request_for_message(message, source_name="trade-normalizer-source").to(normalizer).status == 200
    stored = sync.db.rows("SELECT source, account, external_id FROM trade_fills")
    assert Counter((r["account"], r["external_id"]) for r in stored) == sync.expected()


def test_make_up_links_the_demo_accounts_with_the_keys_the_market_gets(clean_db: str, tmp_path: Any) -> None:
    from local import stack

    keys = stack.local_exchange_demo_keys(tmp_path)
    assert stack.local_exchange_demo_keys(tmp_path) == keys  # made once, then read
    market = {a["exchange"]: (a["api_key"], a["api_secret"]) for a in json.loads(stack.demo_market_accounts(keys))}
    credentials = SyncSettings.model_validate({"exchange_credentials": json.loads(stack.demo_credentials(keys))})
    stack.link_demo_accounts(clean_db)
    stack.link_demo_accounts(clean_db)  # every `make up`: the same rows
    db = Database(clean_db)
    try:
        rows = db.rows("SELECT account_id, exchange, symbols, credential_name FROM trade_accounts ORDER BY account_id")
    finally:
        db.close()
    assert [r["account_id"] for r in rows] == ["demo:binance:main", "demo:bybit:main"]
    for row in rows:
        pair = credentials.exchange_credentials[row["credential_name"]]
        assert market[row["exchange"]] == (pair.api_key.get_secret_value(), pair.api_secret.get_secret_value())
