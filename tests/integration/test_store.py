"""The repositories on real PostgreSQL: token identity, exact prices, the latest price, job logs."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from shared.crawler import store
from shared.crawler.domain import tokens
from shared.crawler.models import Contract, PriceQuote, TokenFailure, TokenProfile
from shared.db.connection import connect

pytestmark = pytest.mark.infra

LINK_CHECKSUMMED = "0x514910771AF9Ca656af840dff83E8264EcF986CA"
LINK_BSC = "0xF8A0BF9cF54Bb92F17374d9e9A321E6a111a51bD"
BONK = "DezXAZ8z7PnMcsqqq7rTPXDLzmEKi6MSc4pnmTC2Bo4f"
T0 = datetime(2025, 6, 25, 21, 0, 0, tzinfo=timezone.utc)


@pytest.fixture
def conn(clean_db: str) -> Iterator:
    connection = connect(clean_db)
    yield connection
    connection.close()


def evm_profile(
    address: str,
    *,
    chain: str = "ethereum",
    name: str | None = "Chainlink",
    symbol: str = "LINK",
    extra: tuple[Contract, ...] = (),
    source: str = "coingecko",
) -> TokenProfile:
    """A profile the way normalizers build one: canonical address, key from shared.crawler.domain.tokens."""
    canonical = tokens.canonical_address(chain, address)
    return TokenProfile(
        key=tokens.token_key(chain, address),
        symbol=symbol,
        name=name,
        chain=chain,
        address=canonical,
        contracts=(Contract(chain, canonical, 18), *extra),
        source=source,
    )


def count(conn, sql: str, **params) -> int:
    return conn.run(sql, **params)[0][0]


def test_an_evm_token_seen_with_differently_cased_addresses_is_one_row(conn):
    first = store.upsert_tokens(conn, [evm_profile(LINK_CHECKSUMMED, name="Chainlink")])
    second = store.upsert_tokens(
        conn, [evm_profile(LINK_CHECKSUMMED.upper().replace("0X", "0x"), name="ChainLink Token")]
    )
    key = "ethereum:0x514910771af9ca656af840dff83e8264ecf986ca"
    assert first == {key: key} and second == {key: key}
    assert count(conn, "SELECT count(*) FROM tokens") == 1
    assert conn.run("SELECT contract, name FROM tokens")[0] == [
        LINK_CHECKSUMMED.lower(),
        "ChainLink Token",
    ]  # overwritten
    assert conn.run("SELECT chain, address, token_key FROM token_contracts") == [
        ["ethereum", LINK_CHECKSUMMED.lower(), key]
    ]


def test_a_token_known_by_one_contract_keeps_its_key_when_seen_on_another_chain(conn):
    """CoinGecko stores LINK with its Ethereum and BSC contracts; DexScreener later finds it on BSC."""
    bsc = Contract("bsc", tokens.canonical_address("bsc", LINK_BSC), 18)
    store.upsert_tokens(conn, [evm_profile(LINK_CHECKSUMMED, extra=(bsc,))])
    from_dex = evm_profile(LINK_BSC, chain="bsc", name=None, source="dexscreener")
    assert from_dex.key == f"bsc:{LINK_BSC.lower()}"

    resolved = store.upsert_tokens(conn, [from_dex])
    key = "ethereum:0x514910771af9ca656af840dff83e8264ecf986ca"
    assert resolved == {from_dex.key: key}
    assert conn.run("SELECT token_key, name, source FROM tokens") == [[key, "Chainlink", "dexscreener"]]
    assert sorted(conn.run("SELECT chain, token_key FROM token_contracts")) == [["bsc", key], ["ethereum", key]]


def test_solana_addresses_are_kept_exactly_and_never_case_folded(conn):
    twin = BONK.replace("Dez", "DeZ", 1)  # differs only in the case of one letter: a different mint
    profiles = [
        TokenProfile(
            key=tokens.token_key("solana", BONK),
            symbol="BONK",
            name="Bonk",
            chain="solana",
            address=tokens.canonical_address("solana", BONK),
            source="coingecko",
        ),
        TokenProfile(
            key=tokens.token_key("solana", twin),
            symbol="BONKX",
            name="Not Bonk",
            chain="solana",
            address=tokens.canonical_address("solana", twin),
            source="dexscreener",
        ),
    ]
    store.upsert_tokens(conn, profiles)
    rows = conn.run("SELECT token_key, contract FROM tokens ORDER BY symbol")
    assert rows == [[f"solana:{BONK}", BONK], [f"solana:{twin}", twin]]
    assert sorted(r[0] for r in conn.run("SELECT address FROM token_contracts")) == sorted([BONK, twin])


def test_a_tiny_price_keeps_every_digit(conn):
    store.upsert_tokens(
        conn, [TokenProfile(key="native:picocat", symbol="PICO", name=None, chain=None, address=None, source="test")]
    )
    tiny = Decimal("0.000000000012345")
    longer = Decimal("0.000000000012216107123456789")
    store.insert_prices(
        conn,
        [
            PriceQuote("native:picocat", "PICO", tiny, "dexscreener", T0),
            PriceQuote("native:picocat", "PICO", longer, "dexscreener", T0 + timedelta(seconds=5)),
        ],
        "job-1",
    )
    stored = [r[0] for r in conn.run("SELECT price_usdt FROM token_prices ORDER BY observed_at")]
    assert stored == [tiny, longer]
    assert str(stored[0]) == "1.2345E-11" and str(stored[1]) == "1.2216107123456789E-11"
    assert conn.run("SELECT price_usdt FROM token_latest_prices")[0][0] == longer


def test_the_latest_price_never_goes_back_in_time_and_a_redelivered_observation_is_a_no_op(conn):
    store.upsert_tokens(
        conn,
        [TokenProfile(key="native:bitcoin", symbol="BTC", name="Bitcoin", chain=None, address=None, source="test")],
    )
    newer = PriceQuote("native:bitcoin", "BTC", Decimal("77001.5"), "binance", T0 + timedelta(seconds=5))
    older = PriceQuote("native:bitcoin", "BTC", Decimal("76999.25"), "binance", T0)
    assert store.insert_prices(conn, [newer], "job-2") == 1
    assert store.insert_prices(conn, [older], "job-1") == 1  # a late observation is history, not the latest
    assert store.insert_prices(conn, [newer], "job-2") == 0  # the same observation again
    assert count(conn, "SELECT count(*) FROM token_prices") == 2
    assert conn.run("SELECT price_usdt, observed_at, job_id FROM token_latest_prices") == [
        [Decimal("77001.5"), newer.observed_at, "job-2"]
    ]


def test_a_batch_mixing_new_and_redelivered_observations_returns_each_as_first_stored(conn):
    coins = [
        TokenProfile(key=f"native:coin{i}", symbol=f"C{i}", name=None, chain=None, address=None, source="t")
        for i in range(3)
    ]
    store.upsert_tokens(conn, coins)
    first = [PriceQuote(f"native:coin{i}", f"C{i}", Decimal(f"1.{i}"), "binance", T0) for i in range(2)]
    assert store.write_prices(conn, first, "job-1").inserted == 2
    # A redelivery observed anew (other prices, another source) plus a token priced for the first time.
    again = [dataclasses.replace(q, price_usdt=q.price_usdt + 1, source="coingecko") for q in first]
    new = PriceQuote("native:coin2", "C2", Decimal("0.000000000012345"), "dexscreener", T0)
    written = store.write_prices(conn, [*again, new], "job-1")
    assert written.inserted == 1
    assert written.stored == [*first, new]  # what is announced is what was committed first
    assert count(conn, "SELECT count(*) FROM token_prices") == 3
    assert count(conn, "SELECT count(*) FROM token_candle_ticks") == 3  # each observation queued once


def test_a_non_positive_price_is_refused_before_the_database(conn):
    with pytest.raises(ValueError, match="non-positive"):
        store.insert_prices(conn, [PriceQuote("native:bitcoin", "BTC", Decimal(0), "binance", T0)], "job")


def test_set_membership_ranks_and_marks_leavers_without_deleting(conn):
    profiles = [
        TokenProfile(key=f"native:coin{i}", symbol=f"C{i}", name=None, chain=None, address=None, source="t")
        for i in range(3)
    ]
    store.upsert_tokens(conn, profiles)
    store.set_membership(conn, "top100", ["native:coin0", "native:coin1", "native:coin2"], complete=True)
    store.set_membership(conn, "top100", ["native:coin2", "native:coin0"], complete=True)
    assert [t.key for t in store.set_members(conn, "top100")] == ["native:coin2", "native:coin0"]
    assert conn.run("SELECT token_key FROM token_set_members WHERE left_at IS NOT NULL") == [["native:coin1"]]
    assert set(store.tokens_by_symbol(conn, ["c0", "C1", "C2"], "top100")) == {"C0", "C2"}


def test_tokens_flagged_as_stablecoins_are_never_members_for_pricing(conn):
    profiles = [
        TokenProfile(key="native:bitcoin", symbol="BTC", name=None, chain=None, address=None, source="t"),
        evm_profile("0xdAC17F958D2ee523a2206206994597C13D831ec7", symbol="USDT", name="Tether"),
    ]
    keys = store.upsert_tokens(conn, profiles, stablecoin_keys=frozenset({profiles[1].key}))
    store.set_membership(conn, "top100", list(keys.values()), complete=True)
    assert [t.symbol for t in store.set_members(conn, "top100")] == ["BTC"]
    assert store.tokens_by_symbol(conn, ["USDT"], "top100") == {}


def test_a_stablecoin_found_by_its_categories_stays_one_until_categories_say_otherwise(conn):
    # Issue #22: a detail job (categories) marks a bridged stablecoin; the top-100 refresh
    # (no categories) must not unmark it and have it priced until the next detail job.
    bridged = dataclasses.replace(
        evm_profile("0x" + "ab" * 20, symbol="USDC.E", name="Bridged USDC"), tags=("Bridged USDC",)
    )
    keys = store.upsert_tokens(conn, [bridged], stablecoin_keys=frozenset({bridged.key}))
    store.set_membership(conn, "top100", list(keys.values()), complete=True)
    assert store.set_members(conn, "top100") == []
    store.upsert_tokens(conn, [dataclasses.replace(bridged, tags=())])  # the refresh
    assert store.set_members(conn, "top100") == []
    store.upsert_tokens(conn, [dataclasses.replace(bridged, tags=("Meme",))])  # categories changed
    assert [t.symbol for t in store.set_members(conn, "top100")] == ["USDC.E"]


def test_nul_in_failure_reasons_and_messages_never_fails_the_job_log(conn):
    job = store.JobRecord("job-nul", "price", "top100", None)
    store.start_job(conn, job, T0, 1)
    store.finish_job(
        conn,
        job,
        status="failed",
        message="upstream said \x00 no",
        tokens_requested=1,
        tokens_succeeded=0,
        failures=[TokenFailure("bsc:0x\x00ab", "name \x00 broke \ud800")],
    )
    rows = conn.run("SELECT token_ref, message FROM job_logs WHERE job_id = 'job-nul' ORDER BY row_kind")
    assert rows == [["", "upstream said  no"], ["bsc:0xab", "name  broke \ufffd"]]


def test_job_log_counts_attempts_and_keeps_one_row_per_failed_token(conn):
    job = store.JobRecord("job-7", "price", "top100", "partition:0/offset:7")
    assert store.start_job(conn, job, T0, 3) == 1
    store.finish_job(
        conn,
        job,
        status="partial",
        message=None,
        tokens_requested=3,
        tokens_succeeded=2,
        failures=[TokenFailure("FOO", "unknown symbol FOO")],
    )
    assert store.start_job(conn, job, T0, 3) == 2  # redelivered
    store.finish_job(
        conn,
        job,
        status="partial",
        message=None,
        tokens_requested=3,
        tokens_succeeded=2,
        failures=[TokenFailure("FOO", "unknown symbol FOO")],
    )
    rows = conn.run("SELECT row_kind, token_ref, status, attempts, tokens_failed FROM job_logs ORDER BY id")
    assert rows == [["job", "", "partial", 2, 1], ["token", "FOO", "failed", 2, None]]


def test_a_token_a_retry_priced_is_no_longer_listed_as_failed(conn):
    job = store.JobRecord("job-8", "price", "top100", "partition:0/offset:8")
    store.start_job(conn, job, T0, 3)
    store.finish_job(
        conn,
        job,
        status="partial",
        message=None,
        tokens_requested=3,
        tokens_succeeded=1,
        failures=[TokenFailure("FOO", "dexscreener: 503"), TokenFailure("BAR", "dexscreener: 503")],
    )
    store.start_job(conn, job, T0, 3)  # redelivered: this attempt priced FOO
    store.finish_job(
        conn,
        job,
        status="partial",
        message=None,
        tokens_requested=3,
        tokens_succeeded=2,
        failures=[TokenFailure("BAR", "dexscreener: 429")],
    )
    rows = conn.run("SELECT token_ref, message, attempts FROM job_logs WHERE job_id = 'job-8' AND row_kind = 'token'")
    assert rows == [["BAR", "dexscreener: 429", 2]]
    store.start_job(conn, job, T0, 3)
    store.finish_job(conn, job, status="succeeded", message=None, tokens_requested=3, tokens_succeeded=3, failures=[])
    assert conn.run("SELECT count(*) FROM job_logs WHERE job_id = 'job-8' AND row_kind = 'token'") == [[0]]
