"""Top-100 prices end to end: Kafka record → KafkaSource-style request → price function →
PostgreSQL, against the simulated market over real HTTP (functions/price/main.py)."""

from __future__ import annotations

import json
import math
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from shared.crawler import store
from shared.crawler.domain import chains
from shared.crawler.jobs import parse_job_message
from shared.crawler.models import Contract, PriceQuote, TokenProfile
from tests.helpers.cloudevents import ping_request, request_for_message
from tests.helpers.kafka import headers_of, produce_plain, read_all
from tests.helpers.stack import Top100Stack, body_of, utc_now_iso

pytestmark = pytest.mark.infra

ORIGINAL = '{"job_type": "price", "token_type": "top100", "symbols": ["BTC", "ETH", "SOL"], "timestamp": "2025-06-25T21:00:00Z"}'
TICKER = "/api/v3/ticker/price"


def freeze(stack: Top100Stack) -> float:
    """Freeze the market; every API then quotes one known price per token."""
    stack.market.clock.freeze()
    return stack.market.clock.now()


@contextmanager
def store_connection(stack: Top100Stack):
    """A transaction on the stack's database, for seeding rows through the store."""
    with stack.resources.db.transaction() as conn:
        yield conn


def job(*symbols: str, **extra) -> dict:
    return {"job_type": "price", "token_type": "top100", "symbols": list(symbols), "timestamp": utc_now_iso(), **extra}


def run_tick(stack: Top100Stack, expected_jobs: int) -> list[dict]:
    """One 5-s tick: the scheduler emits the batches, KafkaSource delivers each to the price function."""
    tick = ping_request("top100-price", name="top100-price-tick").to(stack.scheduler_app)
    assert tick.status == 200, tick.body
    assert body_of(tick)["emitted"] == expected_jobs
    # Read as the price KafkaSource's consumer group and commit, as KafkaSource does.
    messages = read_all(stack.bootstrap, stack.topics["price"], group=stack.settings.price_consumer_group, commit=True)
    assert len(messages) == expected_jobs
    answers = [request_for_message(m).to(stack.price_app) for m in messages]
    assert [a.status for a in answers] == [200] * expected_jobs, [a.body for a in answers]
    return [body_of(a) for a in answers]


def test_the_original_message_from_a_plain_kafka_client_is_priced_within_seconds(seeded_stack):
    stack = seeded_stack
    at = freeze(stack)
    started = time.monotonic()
    record = produce_plain(stack.bootstrap, stack.topics["price"], ORIGINAL)  # no headers, like kcat
    [message] = read_all(stack.bootstrap, stack.topics["price"])
    request = request_for_message(message)
    assert request.headers["ce-type"] == "dev.knative.kafka.event"
    assert request.headers["ce-id"] == f"partition:{record.partition()}/offset:{record.offset()}"
    assert "Content-Type" not in request.headers

    response = request.to(stack.price_app)
    elapsed = time.monotonic() - started

    assert response.status == 200, response.body
    assert body_of(response)["status"] == "succeeded"
    assert elapsed < 5
    latest = {row["symbol"]: row for row in stack.db.latest_prices().values()}
    assert set(latest) == {"BTC", "ETH", "SOL"}
    for symbol in ("BTC", "ETH", "SOL"):
        assert latest[symbol]["price_usdt"] == stack.market.universe.price_usdt(symbol, at=at)
        assert latest[symbol]["source"] == "binance"
    assert {r["token_key"] for r in stack.db.rows("SELECT token_key FROM token_prices")} == {
        "native:bitcoin",
        "native:ethereum",
        "native:solana",
    }
    [log] = stack.db.job_rows(kind="job", job_type="price")
    assert (log["job_type"], log["token_type"], log["status"], log["tokens_succeeded"], log["attempts"]) == (
        "price",
        "top100",
        "succeeded",
        3,
        1,
    )
    assert log["event_id"] == request.headers["ce-id"]

    # Committed prices are announced on price.updated, exactly.
    [event] = read_all(stack.bootstrap, stack.topics["price_updated"])
    assert headers_of(event)["ce_type"] == "price-crawler.price.updated"
    assert headers_of(event)["ce_dataschema"] == "https://price-crawler.example/schemas/price-updated.v1.json"
    prices = {p["symbol"]: Decimal(p["price_usdt"]) for p in json.loads(event.value())["prices"]}
    assert prices == {s: latest[s]["price_usdt"] for s in ("BTC", "ETH", "SOL")}


@pytest.mark.parametrize("batch_size", [100, 30])
def test_a_tick_prices_all_100_tokens_with_one_binance_request_per_batch(seeded_stack, batch_size):
    stack = seeded_stack
    stack.configure(top100_price_batch_size=batch_size)
    batches = math.ceil(100 / batch_size)
    at = freeze(stack)
    universe = stack.market.universe

    answers = run_tick(stack, batches)

    assert sum(a["succeeded"] for a in answers) == 100
    assert all(a["failed"] == 0 for a in answers)
    assert stack.market.stats.count("binance", TICKER) == batches  # the minimum: one per batch
    members = stack.db.top100_keys()
    latest = stack.db.latest_prices()
    assert len(members) == 100 and set(latest) == set(members)
    for key in members:
        token = universe.get(key)
        assert not token.is_stablecoin
        assert latest[key]["price_usdt"] == universe.price_usdt(token, at=at), key
        expected_source = {"binance"} if token.binance_status == "TRADING" else {"dexscreener", "coingecko"}
        assert latest[key]["source"] in expected_source, (key, latest[key]["source"])

    # The next tick is routed by the source that priced each token: each API is asked the
    # least it allows, whatever the batch size, and the listing comes from the 1-h cache.
    sources = {key: row["source"] for key, row in latest.items()}
    dex_chains: dict[str, int] = {}
    with stack.resources.db.connection() as conn:
        known = store.tokens_by_key(conn, list(sources))
    for key, source in sources.items():
        if source == "dexscreener":
            token = known[key]
            chain = chains.dexscreener_contracts(token.chain, token.contract, token.contracts)[0][0]
            dex_chains[chain] = dex_chains.get(chain, 0) + 1
    on_coingecko = list(sources.values()).count("coingecko")
    assert list(sources.values()).count("binance") > 0 and dex_chains  # the mix the test is about
    requests_before = {api: stack.market.stats.count(api) for api in ("binance", "dexscreener", "coingecko")}
    routed_jobs = (
        1
        + sum(math.ceil(n / stack.settings.top100_price_dex_job_size) for n in dex_chains.values())
        + (1 if on_coingecko else 0)
    )

    answers = run_tick(stack, routed_jobs)

    assert sum(a["succeeded"] for a in answers) == 100
    asked = {api: stack.market.stats.count(api) - n for api, n in requests_before.items()}
    assert asked == {
        "binance": 1,
        "dexscreener": sum(math.ceil(n / 30) for n in dex_chains.values()),
        "coingecko": 1 if on_coingecko else 0,
    }
    assert stack.db.value("SELECT count(*) FROM token_prices") == 200
    assert {k: r["source"] for k, r in stack.db.latest_prices().items()} == sources


def test_a_tiny_price_is_stored_with_all_its_digits(stack):
    """PICO (~1.2345e-11 USDT, no Binance pair) ranks just below the default set: widen the set to reach it."""
    stack.configure(top100_size=125)
    assert stack.refresh_top100().status == 200
    at = freeze(stack)
    pico = stack.market.universe.get("PICO")
    assert pico.key in stack.db.top100_keys()

    response = stack.price(job("PICO"))

    assert response.status == 200, response.body
    stored = stack.db.latest_prices()[pico.key]
    expected = stack.market.universe.price_usdt(pico, at=at)
    assert expected < Decimal("0.0000000001")  # NUMERIC(30,10) would have stored 0
    assert stored["price_usdt"] == expected
    assert stored["price_usdt"].as_tuple().digits == expected.normalize().as_tuple().digits  # every digit
    assert stored["source"] == "dexscreener"
    history = stack.db.value("SELECT price_usdt FROM token_prices WHERE token_key = :k", k=pico.key)
    assert history == expected


def test_stablecoins_are_not_in_the_set_and_never_priced_when_named(seeded_stack):
    stack = seeded_stack
    universe = stack.market.universe
    stable_in_market_top = [t for t in universe.top(110) if t.is_stablecoin or t.symbol == "WETH"]
    assert {t.symbol for t in stable_in_market_top} >= {"USDT", "USDC", "DAI", "WETH", "FDUSD"}
    stored_symbols = {r["symbol"] for r in stack.db.rows("SELECT symbol FROM tokens")}
    assert not stored_symbols & {t.symbol.upper() for t in stable_in_market_top}

    response = stack.price(job("USDT", "BTC", "usdc", "WETH", "DAI"))

    assert response.status == 200, response.body
    assert body_of(response)["succeeded"] == 1
    assert {row["symbol"] for row in stack.db.latest_prices().values()} == {"BTC"}
    failures = {r["token_ref"]: r["message"] for r in stack.db.job_rows(kind="token", job_type="price")}
    assert set(failures) == {"USDT", "USDC", "WETH", "DAI"}
    assert all(message.startswith("stablecoin") for message in failures.values())
    [log] = stack.db.job_rows(kind="job", job_type="price")
    assert (log["status"], log["tokens_requested"], log["tokens_succeeded"], log["tokens_failed"]) == (
        "partial",
        5,
        1,
        4,
    )


FALLBACKS = {
    "HYPE": "coingecko",  # a native coin: no contract for a DEX, priced by CoinGecko id
    "LEO": "dexscreener",  # an ERC-20 without a Binance pair
    "MORA": "dexscreener",  # a Solana SPL token: its mint is used exactly as listed
    "ORBT": "dexscreener",  # listed on Binance but halted (BREAK): its frozen price must not be used
}


def test_tokens_binance_does_not_trade_are_priced_by_the_fallbacks_exactly_in_usdt(seeded_stack):
    stack = seeded_stack
    at = freeze(stack)
    universe = stack.market.universe

    response = stack.price(job("BTC", *FALLBACKS))

    assert response.status == 200, response.body
    assert body_of(response)["sources"] == {"binance": 1, "coingecko": 1, "dexscreener": 3}
    assert stack.market.stats.count("binance", TICKER) == 1  # one request for the whole batch
    latest = stack.db.latest_prices()
    rate = universe.usdt_usd(at=at)
    assert rate != 1
    for symbol, source in FALLBACKS.items():
        token = universe.get(symbol)
        row = latest[token.key]
        assert row["source"] == source, symbol
        usd = universe.price_usd(token, at=at)
        assert row["price_usdt"] == universe.price_usdt(token, at=at) == usd / rate, symbol
        assert row["price_usdt"] != usd  # converted with the USDT/USD rate, not assumed 1:1
    mora = universe.get("MORA")
    assert mora.key == f"solana:{mora.address}" and mora.address != mora.address.lower()


def test_when_binance_is_down_the_batch_is_priced_by_the_fallbacks(seeded_stack):
    stack = seeded_stack
    at = freeze(stack)
    stack.market.faults.add("503", api="binance", count="until_cleared")

    response = stack.price(job("BTC", "LINK"))

    assert response.status == 200, response.body
    latest = {row["symbol"]: row for row in stack.db.latest_prices().values()}
    assert latest["BTC"]["source"] == "coingecko" and latest["LINK"]["source"] == "dexscreener"
    for symbol in ("BTC", "LINK"):
        assert latest[symbol]["price_usdt"] == stack.market.universe.price_usdt(symbol, at=at)


def test_when_every_source_fails_the_job_is_retried_not_acknowledged(seeded_stack):
    stack = seeded_stack
    stack.market.faults.add("429", api="binance", count="until_cleared", retry_after=7)
    stack.market.faults.add("503", api="coingecko", count="until_cleared")

    response = stack.price(job("HYPE", "BTC"))

    assert response.status == 429  # KafkaSource retries with backoff
    assert int(response.headers["Retry-After"]) >= 1
    assert stack.db.latest_prices() == {}
    [log] = stack.db.job_rows(kind="job", job_type="price")
    assert log["status"] == "failed" and "RateLimited" in log["message"]

    stack.market.faults.clear()
    retried = stack.price(job("HYPE", "BTC"))
    assert retried.status == 200 and body_of(retried)["succeeded"] == 2


def test_a_redelivered_job_repeats_its_first_observation_under_the_same_event_id(seeded_stack):
    stack = seeded_stack
    first_at = freeze(stack)
    message = job("BTC", "ETH", "HYPE")

    first = stack.price(message, offset=41)
    stack.market.clock.advance(3)  # the redelivery fetches anew, and the market has moved
    second = stack.price(message, offset=41)  # same partition/offset: the same job

    assert first.status == second.status == 200
    assert body_of(first)["job_id"] == body_of(second)["job_id"]
    [log] = stack.db.job_rows(kind="job", job_type="price")
    assert (log["status"], log["attempts"], log["tokens_succeeded"]) == ("succeeded", 2, 3)
    assert stack.db.job_rows(kind="token", job_type="price") == []

    # One observation per token: the redelivery is the same observation, not a second one.
    history = stack.db.rows("SELECT token_key, price_usdt, observed_at FROM token_prices ORDER BY observed_at")
    assert len(history) == 3 and len({h["observed_at"] for h in history}) == 1
    latest = stack.db.latest_prices()
    assert set(latest) == {"native:bitcoin", "native:ethereum", "native:hyperliquid"}
    for row in history:
        assert row["price_usdt"] == stack.market.universe.price_usdt(row["token_key"], at=first_at)
        assert (latest[row["token_key"]]["price_usdt"], latest[row["token_key"]]["observed_at"]) == (
            row["price_usdt"],
            row["observed_at"],
        )

    # Both attempts announce it as the same CloudEvent with the committed prices: a consumer
    # deduplicating by id sees one update.
    events = read_all(stack.bootstrap, stack.topics["price_updated"])
    assert len(events) == 2
    assert headers_of(events[0])["ce_id"] == headers_of(events[1])["ce_id"]
    assert json.loads(events[0].value())["prices"] == json.loads(events[1].value())["prices"]


def test_a_tick_job_delivered_after_it_expired_ends_expired(seeded_stack):
    stack = seeded_stack
    stale = job("BTC", job_id="top100-price:old:0", expires_at="2025-06-25T21:00:10Z")

    response = stack.price(stale)

    assert response.status == 200  # an outcome, not a failure: never retried, never dead-lettered
    assert body_of(response)["status"] == "expired"
    assert stack.db.latest_prices() == {}
    assert stack.market.stats.count("binance") == 0
    [log] = stack.db.job_rows("top100-price:old:0", kind="job")
    assert log["status"] == "expired" and "superseded" in log["message"]
    assert log["tokens_requested"] == 1 and log["tokens_succeeded"] == 0

    again = stack.price(stale)  # a redelivery of the same expired tick: one row, counted as an attempt
    assert again.status == 200 and body_of(again)["status"] == "expired"
    [log] = stack.db.job_rows("top100-price:old:0", kind="job")
    assert log["status"] == "expired" and log["attempts"] == 2


def test_a_done_job_delivered_again_after_it_expired_keeps_its_outcome(seeded_stack):
    """A job that succeeded and is redelivered once its tick expired (its 200 was lost) stays succeeded."""
    stack = seeded_stack
    in_a_minute = (datetime.now(timezone.utc) + timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    fresh = job("BTC", job_id="top100-price:done:0", expires_at=in_a_minute)
    assert stack.price(fresh).status == 200
    [done] = stack.db.job_rows("top100-price:done:0", kind="job")
    assert done["status"] == "succeeded"

    late = stack.price({**fresh, "expires_at": "2025-06-25T21:00:10Z"})

    assert late.status == 200 and body_of(late)["status"] == "succeeded"
    [log] = stack.db.job_rows("top100-price:done:0", kind="job")
    assert log["status"] == "succeeded" and log["message"] == done["message"]


def test_scheduler_jobs_satisfy_the_price_function_contract(seeded_stack):
    """What the scheduler writes is exactly what the price function accepts (no drift)."""
    stack = seeded_stack
    ping_request("top100-price").to(stack.scheduler_app)
    [message] = read_all(stack.bootstrap, stack.topics["price"])
    parsed = parse_job_message(message.value())
    assert (parsed.job_type, parsed.token_type, len(parsed.symbols)) == ("price", "top100", 100)


def test_namesakes_in_the_set_are_each_priced_as_themselves(seeded_stack):
    """Symbols do not identify tokens. With the ERC-20 PEPE and "Pepe on Solana" both in the set, the
    whole-set job gives Binance's PEPEUSDT price to the better-ranked ERC-20 and prices the other on its DEX."""
    stack = seeded_stack
    universe = stack.market.universe
    erc20, solana = sorted((t for t in universe.tokens if t.symbol == "PEPE"), key=lambda t: t.chain != "ethereum")
    assert erc20.binance_status == "TRADING" and solana.chain == "solana"
    namesake = TokenProfile(
        key=solana.key,
        symbol="PEPE",
        name=solana.name,
        chain="solana",
        address=solana.address,
        contracts=(Contract("solana", solana.address, 6),),
        source="dexscreener",
    )
    with stack.resources.db.transaction() as conn:
        store.upsert_tokens(conn, [namesake])
        store.set_membership(conn, "top100", stack.db.top100_keys() + [solana.key], complete=True)
    stack.configure(top100_size=101)
    at = freeze(stack)

    response = stack.price(job())  # no symbols: the whole set

    assert response.status == 200, response.body
    assert body_of(response)["succeeded"] == 101
    latest = stack.db.latest_prices()
    assert (latest[erc20.key]["source"], latest[erc20.key]["price_usdt"]) == (
        "binance",
        universe.price_usdt(erc20, at=at),
    )
    assert (latest[solana.key]["source"], latest[solana.key]["price_usdt"]) == (
        "dexscreener",
        universe.price_usdt(solana, at=at),
    )


def test_an_implausible_price_is_held_back_and_recorded_as_suspect_not_served(seeded_stack):
    stack = seeded_stack
    at = freeze(stack)
    universe = stack.market.universe
    btc, eth, hype = "native:bitcoin", "native:ethereum", "native:hyperliquid"
    now = datetime.now(timezone.utc)
    # BTC's last stored price is a thousand times off what the market now quotes; ETH's came
    # from CoinGecko seconds ago at five times the market (two sources disagreeing in one tick).
    seeded = [
        PriceQuote(btc, "BTC", universe.price_usdt(btc, at=at) * 1000, "binance", now - timedelta(seconds=30)),
        PriceQuote(eth, "ETH", universe.price_usdt(eth, at=at) * 5, "coingecko", now - timedelta(seconds=10)),
    ]
    with store_connection(stack) as conn:
        store.write_prices(conn, seeded, "seed")

    response = stack.price(job("BTC", "ETH", "HYPE"))

    assert response.status == 200, response.body
    result = body_of(response)
    assert (result["status"], result["succeeded"], result["suspect"]) == ("partial", 1, 2)
    latest = stack.db.latest_prices()
    assert {k: latest[k]["price_usdt"] for k in (btc, eth)} == {q.token_key: q.price_usdt for q in seeded}
    assert latest[hype]["price_usdt"] == universe.price_usdt(hype, at=at)
    assert stack.db.value("SELECT count(*) FROM token_prices WHERE job_id IS DISTINCT FROM 'seed'") == 1
    reasons = {r["token_ref"]: r["message"] for r in stack.db.job_rows(kind="token", job_type="price")}
    assert set(reasons) == {btc, eth}
    assert reasons[btc].startswith("suspect price: binance says") and "1e+03x the last stored" in reasons[btc]
    assert "coingecko said" in reasons[eth] and "across sources" in reasons[eth]
    [event] = read_all(stack.bootstrap, stack.topics["price_updated"])
    assert [p["token_key"] for p in json.loads(event.value())["prices"]] == [hype]
