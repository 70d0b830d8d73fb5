"""Property-based tests of the wire boundary (issue #22).

For arbitrary JSON of the right and of the wrong shape - absurd exponents, NaN, -0, huge
digit strings, NUL, lone surrogates, objects where arrays belong - every normaliser, the
job-message parser and the CloudEvent parsers give a valid row/record or a typed error,
within a time bound, and never another exception.

Bodies are written as JSON text and read back through the production decoder
(`decode_json`), so the numbers reach the normalisers exactly as an upstream would send
them. Deterministic (`derandomize`): the same examples on every run and every machine.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local.eventing.records import InvalidCloudEvent, KafkaRecord, event_from_record
from shared.crawler.domain import normalize_binance as binance
from shared.crawler.domain import normalize_coingecko as coingecko
from shared.crawler.domain import normalize_dexscreener as dexscreener
from shared.crawler.domain import normalize_geckoterminal as geckoterminal
from shared.crawler.domain import normalize_goplus as goplus
from shared.crawler.jobs import JobMessage, parse_job_message
from shared.crawler.models import TokenFailure, TokenProfile
from shared.errors import BadMessage, CrawlerError
from shared.events import InboundEvent
from shared.runtime.cloudevent_http import event_from_http
from shared.upstream.jsonbody import decode_json
from shared.wire import WireNumberOutOfBounds, number_limit_broken

PROPERTIES = settings(
    derandomize=True,  # fixed examples: no flaky CI, and a failure reproduces anywhere
    max_examples=60,
    deadline=None,  # the time bound is asserted per call below, on a loaded 2-CPU box too
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    database=None,
)
TIME_BOUND_SECONDS = 2.0
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)

WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
MINT = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"


# --- wire values -----------------------------------------------------------------------------


class Raw:
    """A JSON number literal written as is ("1e999999999", "NaN", "-0"): not every one is JSON."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return f"Raw({self.text[:40]!r})"


ABSURD_LITERALS = [
    "1e400",
    "1e999999999",
    "-1E-999999999",
    "-0",
    "-0.0",
    "0e999999999",
    "NaN",
    "Infinity",
    "1e99999999999999999999",
    "-1E-99999999999999999999999",
    "0e99999999999999999999",
    "-Infinity",
    "9" * 5000,
    "1." + "7" * 5000,
    "1e-41",
    "12345678901234567890123456789012345678901",
]
numbers = st.one_of(
    st.sampled_from(ABSURD_LITERALS).map(Raw),
    st.integers(min_value=-(10**50), max_value=10**50).map(lambda i: Raw(str(i))),
    st.decimals(allow_nan=False, allow_infinity=False, places=None).map(lambda d: Raw(str(d))),
    st.builds(lambda m, e: Raw(f"{m}e{e}"), st.integers(-999, 999), st.integers(-(10**30), 10**30)),
)
number_texts = numbers.map(lambda raw: raw.text)  # numbers sent as strings, as most of these APIs do
texts = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "US\x00DT",
            "\ud800",
            "a\udfffb",
            "$1,000",
            "n/a",
            "1_000",
            "0x1f",
            "nan",
            "https://x.example/\x00.png",
            "BTC",
            "usdc.e",
        ]
    ),
)
addresses = st.sampled_from([WETH, USDC, USDC.lower(), MINT, MINT.lower(), "0x12", "", "not an address", "\x00"])
scalars = st.one_of(st.none(), st.booleans(), numbers, number_texts, texts)
anything = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(texts, inner, max_size=3)),
    max_leaves=12,
)


def number_field() -> st.SearchStrategy[Any]:
    """What an upstream may put where a number belongs: numbers, strings, or anything else."""
    return st.one_of(numbers, number_texts, anything)


def mostly(right: st.SearchStrategy[Any], wrong: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`right` nine times in ten, else `wrong`: deep paths are reached, wrong shapes still met."""
    return st.integers(0, 9).flatmap(lambda i: wrong if i == 0 else right)


def obj(required: dict[str, Any] | None = None, **optional: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """An object of the right shape (optional keys sometimes missing), or - sometimes - anything at all."""
    return mostly(st.fixed_dictionaries(required or {}, optional=optional), anything)


def array(element: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """An array of `element`, or - sometimes - one bare element (a legacy envelope) or anything."""
    return mostly(st.lists(element, min_size=1, max_size=4), st.one_of(element, anything))


def dump(value: Any) -> str:
    """JSON text with `Raw` numbers written verbatim (NaN and 1e999999999 included)."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dump(v) for v in value) + "]"
    return json.dumps(value)  # NUL and lone surrogates as \u escapes, as an upstream sends them


def wire(value: Any) -> Any:
    """The value as the production decoder reads it off the wire."""
    return decode_json(dump(value).encode("utf-8", "surrogatepass"))


# --- what a valid result is --------------------------------------------------------------------


def assert_storable(value: Any, path: str = "result") -> None:
    """Every number bounded and finite, every text free of NUL and lone surrogates, no marker left."""
    if isinstance(value, Decimal):
        assert number_limit_broken(value) is None, f"{path}: unbounded number {value!r}"
    elif isinstance(value, str):
        assert "\x00" not in value, f"{path}: NUL in {value!r}"
        value.encode("utf-8")  # raises on a lone surrogate
    elif isinstance(value, float):
        raise AssertionError(f"{path}: float {value!r}")
    elif isinstance(value, WireNumberOutOfBounds) and not path.endswith(".flags"):
        raise AssertionError(f"{path}: marker {value!r} reached a row")
    elif isinstance(value, dict):
        for k, v in value.items():
            assert_storable(k, path)
            assert_storable(v, f"{path}.{k}")
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            assert_storable(item, path)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            if f.name == "flags":  # GoPlus' raw entry, kept verbatim in jsonb (clean text; markers as text)
                _assert_clean_text(getattr(value, f.name), f"{path}.flags")
                continue
            assert_storable(getattr(value, f.name), f"{path}.{f.name}")


def _assert_clean_text(value: Any, path: str) -> None:
    if isinstance(value, str):
        assert "\x00" not in value, f"{path}: NUL"
    elif isinstance(value, dict):
        for k, v in value.items():
            _assert_clean_text(k, path)
            _assert_clean_text(v, path)
    elif isinstance(value, list):
        for item in value:
            _assert_clean_text(item, path)


def bounded(call: Callable[[], Any], typed: tuple[type[BaseException], ...] = (CrawlerError,)) -> Any:
    """The call's result, or None for a typed error; within the time bound; anything else fails."""
    started = time.monotonic()
    try:
        result = call()
    except typed:
        result = None
    elapsed = time.monotonic() - started
    assert elapsed < TIME_BOUND_SECONDS, f"took {elapsed:.2f}s"
    return result


def check(call: Callable[[], Any]) -> None:
    """A normaliser's contract: a result (failures per item inside it), never an exception."""
    result = bounded(call, typed=())
    assert_storable(result)
    for failure in _failures(result):
        assert failure.reason and "\x00" not in failure.reason


def _failures(result: Any) -> list[TokenFailure]:
    if isinstance(result, TokenFailure):
        return [result]
    if isinstance(result, tuple | list):
        return [f for item in result for f in _failures(item)]
    return []


# --- shapes ------------------------------------------------------------------------------------

ticker = obj({"symbol": mostly(st.sampled_from(["BTCUSDT", "ETHUSDT", "X"]), anything), "price": number_field()})
coin_market = obj(
    {
        "id": mostly(st.sampled_from(["bitcoin", "ethereum", "usd-coin"]), texts),
        "symbol": mostly(st.sampled_from(["btc", "eth", "usdc.e", "axlusdc"]), texts),
        "market_cap_rank": number_field(),
        "market_cap": number_field(),
    },
    name=texts,
    image=texts,
)
platforms = mostly(
    st.fixed_dictionaries({}, optional={"ethereum": addresses, "solana": addresses, "binance-smart-chain": addresses}),
    anything,
)
token = obj(address=addresses, symbol=texts, name=texts)
dex_pair = obj(
    {
        "chainId": mostly(st.sampled_from(["ethereum", "solana"]), anything),
        "pairAddress": mostly(st.sampled_from([WETH, USDC, "0x" + "2" * 40]), addresses),
        "baseToken": obj({"address": mostly(st.sampled_from([WETH, MINT]), addresses)}, symbol=texts, name=texts),
        "priceUsd": number_field(),
    },
    dexId=texts,
    quoteToken=token,
    priceNative=number_field(),
    liquidity=obj(usd=number_field()),
    volume=obj(h24=number_field()),
    fdv=number_field(),
    marketCap=number_field(),
    pairCreatedAt=number_field(),
    url=texts,
    info=obj(imageUrl=texts, websites=array(obj(url=texts)), socials=array(obj(type=texts, url=texts))),
)
gt_attributes = obj(
    {"address": mostly(st.sampled_from([WETH, MINT]), addresses), "symbol": texts, "price_usd": number_field()},
    name=texts,
    decimals=number_field(),
    market_cap_usd=number_field(),
    base_token_price_usd=number_field(),
    base_token_price_quote_token=number_field(),
    reserve_in_usd=number_field(),
    volume_usd=obj(h24=number_field()),
    fdv_usd=number_field(),
    pool_created_at=texts,
)
gt_relationship = obj(data=obj(id=st.sampled_from([f"eth_{WETH}", f"solana_{MINT}", f"eth_{USDC}"]) | texts))
gt_resource = obj(
    {
        "id": mostly(st.sampled_from([f"eth_{WETH}", f"eth_0x{'1' * 40}", f"solana_{MINT}"]), texts),
        "attributes": gt_attributes,
        "relationships": obj(
            {"base_token": gt_relationship},
            quote_token=gt_relationship,
            top_pools=obj(data=array(obj(id=st.sampled_from([f"eth_{WETH}"]) | texts))),
        ),
    }
)
gt_document = obj(data=array(gt_resource), included=array(gt_resource))
goplus_entry = obj(
    is_open_source=number_texts | texts,
    is_honeypot=number_texts | texts,
    buy_tax=number_field(),
    sell_tax=number_field(),
    owner_change_balance=number_field(),
    is_mintable=number_field(),
    holders=array(obj(address=addresses, percent=number_field(), is_contract=number_field())),
    honeypot_with_same_creator=number_field(),
    trusted_token=number_field(),
    non_transferable=number_field(),
    default_account_state=number_field(),
    metadata_mutable=obj(status=number_field()),
    transfer_hook=anything,
)
goplus_envelope = obj(
    code=number_field(), message=texts, result=st.one_of(st.dictionaries(addresses, goplus_entry, max_size=2), anything)
)


# --- normalisers -------------------------------------------------------------------------------


@PROPERTIES
@given(rows=array(ticker))
def test_binance_tickers(rows: Any) -> None:
    rows = wire(rows)
    check(
        lambda: binance.parse_binance_ticker_prices(
            rows, {"BTCUSDT": "native:bitcoin", "ETHUSDT": "native:ethereum"}, {}, NOW
        )
    )
    check(lambda: binance.usdt_bases_from_exchange_info({"symbols": rows}))


@PROPERTIES
@given(markets=array(coin_market), coins=array(obj(id=texts, platforms=platforms)))
def test_coingecko_top100(markets: Any, coins: Any) -> None:
    markets, coins = wire(markets), wire(coins)
    check(lambda: coingecko.top100_profiles(markets, coins, frozenset({"USDT", "USDC"})))
    check(
        lambda: coingecko.top100_profiles(markets, {"bitcoin": {}, "ethereum": {"ethereum": WETH}}, frozenset({"USDT"}))
    )


@PROPERTIES
@given(
    detail=obj(
        id=st.just("bitcoin") | texts,
        name=texts,
        market_cap_rank=number_field(),
        platforms=platforms,
        detail_platforms=obj(ethereum=obj(decimal_place=number_field())),
        categories=array(texts),
        links=obj(homepage=array(texts), twitter_screen_name=texts, chat_url=array(texts)),
        image=obj(large=texts),
    )
)
def test_coingecko_coin_detail(detail: Any) -> None:
    profile = TokenProfile(
        key=f"ethereum:{WETH}",
        symbol="WETH",
        name=None,
        chain="ethereum",
        address=WETH,
        coingecko_id="bitcoin",
        source="coingecko",
    )
    detail = wire(detail)
    check(lambda: coingecko.apply_coin_detail(profile, detail))


@PROPERTIES
@given(
    prices=st.one_of(
        st.dictionaries(
            st.sampled_from(["bitcoin", "tether", WETH, USDC, "x\x00"]), obj(usd=number_field()), max_size=3
        ),
        anything,
    ),
    trending=obj(
        coins=array(
            obj(
                item=obj(
                    id=texts,
                    symbol=texts,
                    market_cap_rank=number_field(),
                    data=obj(price=number_field(), market_cap=number_field(), total_volume=number_field()),
                )
            )
        )
    ),
)
def test_coingecko_prices_rate_and_trending(prices: Any, trending: Any) -> None:
    prices, trending = wire(prices), wire(trending)
    check(lambda: coingecko.usd_prices_from_simple_price(prices))
    check(lambda: coingecko.usd_prices_from_token_price("ethereum", prices))
    rate = bounded(lambda: coingecko.usdt_usd_rate(prices), typed=())
    assert rate is None or (isinstance(rate, Decimal) and Decimal("0.5") <= rate <= Decimal("1.5"))
    check(lambda: coingecko.trending_coins(trending))


@PROPERTIES
@given(
    pairs=st.one_of(obj(pairs=array(dex_pair), pair=dex_pair), array(dex_pair)),
    item=obj(
        chainId=st.just("ethereum") | texts,
        tokenAddress=addresses,
        icon=texts,
        links=array(obj(url=texts, type=texts, label=texts)),
    ),
)
def test_dexscreener(pairs: Any, item: Any) -> None:
    pairs, item = wire(pairs), wire(item)
    check(lambda: dexscreener.normalize_dexscreener_pairs(pairs))
    check(lambda: dexscreener.price_usd_from_pairs(pairs, "ethereum", WETH))
    check(lambda: dexscreener.profile_from_dexscreener("ethereum", WETH, pairs, item))
    check(lambda: dexscreener.profile_from_dexscreener("solana", MINT, pairs, item))
    check(lambda: dexscreener.trending_refs_from_boosts(item))
    check(lambda: dexscreener.trending_refs_from_profiles(pairs))


@PROPERTIES
@given(
    document=gt_document,
    simple=obj(
        data=obj(
            attributes=obj(token_prices=st.one_of(st.dictionaries(addresses, number_field(), max_size=3), anything))
        )
    ),
)
def test_geckoterminal(document: Any, simple: Any) -> None:
    document, simple = wire(document), wire(simple)
    check(lambda: geckoterminal.trending_refs_from_pools(document))
    check(lambda: geckoterminal.profiles_from_tokens_multi("eth", document))
    check(lambda: geckoterminal.profiles_from_tokens_multi("solana", document))
    data = document.get("data") if isinstance(document, dict) else None
    for resource in data if isinstance(data, list) else [data]:
        check(lambda: geckoterminal.pool_from_geckoterminal(resource, {}))
    check(lambda: geckoterminal.usd_prices_from_simple_token_price("eth", simple))


@PROPERTIES
@given(envelope=goplus_envelope, entry=goplus_entry)
def test_goplus(envelope: Any, entry: Any) -> None:
    envelope, entry = wire(envelope), wire(entry)
    for chain, address in (("ethereum", WETH), ("solana", MINT), ("bsc", USDC)):
        found = bounded(lambda: goplus.goplus_result_entry(envelope, chain, address, f"{chain}:{address}"), typed=())
        assert isinstance(found, dict | TokenFailure)
        check(lambda: goplus.audit_from_goplus(f"{chain}:{address}", chain, address, entry, NOW))
        if isinstance(found, dict):
            check(lambda: goplus.audit_from_goplus(f"{chain}:{address}", chain, address, found, NOW))


# --- job messages and CloudEvents ---------------------------------------------------------------

job = obj(
    job_type=st.sampled_from(["price", "metadata", "audit", "nope"]) | anything,
    token_type=st.sampled_from(["top100", "trending"]) | anything,
    symbols=array(st.sampled_from(["BTC", "USDC.e", "b\x00tc"]) | texts | numbers),
    timestamp=st.sampled_from(["2025-06-25T21:00:00Z", "2025-06-25T21:00:00\x00", "9999-99-99"]) | anything,
    job_id=texts | numbers,
    batch=numbers | anything,
    batches=numbers,
    traceparent=texts,
    contracts=array(obj(chain=texts, address=addresses)),
    token_keys=array(texts),
    expires_at=texts | numbers,
)


@PROPERTIES
@given(message=job)
def test_job_messages(message: Any) -> None:
    body = dump(message).encode("utf-8", "surrogatepass")
    parsed = bounded(lambda: parse_job_message(body), typed=(BadMessage,))
    assert parsed is None or isinstance(parsed, JobMessage)
    if parsed is not None:
        assert_storable([parsed.job_id, parsed.traceparent, list(parsed.symbols), list(parsed.token_keys)])


ce_headers = st.fixed_dictionaries(
    {},
    optional={
        "ce-specversion": st.sampled_from(["1.0", "0.3", "9"]) | texts,
        "ce-id": texts,
        "ce-source": texts,
        "ce-type": texts,
        "ce-time": texts,
        "content-type": st.sampled_from(["application/json", "application/cloudevents+json", "text/plain"]) | texts,
    },
)


@PROPERTIES
@given(
    headers=ce_headers,
    envelope=obj(
        specversion=st.just("1.0") | anything,
        id=texts | numbers,
        source=texts,
        type=texts,
        data=job,
        data_base64=texts | anything,
        datacontenttype=texts,
    ),
    structured=st.booleans(),
)
def test_cloudevents_over_http(headers: dict[str, str], envelope: Any, structured: bool) -> None:
    headers = {k: v.encode("utf-8", "replace").decode("latin-1") for k, v in headers.items()}
    if structured:
        headers = {**headers, "content-type": "application/cloudevents+json"}
    body = dump(envelope).encode("utf-8", "surrogatepass")
    event = bounded(lambda: event_from_http(headers, body), typed=(BadMessage,))
    assert event is None or isinstance(event, InboundEvent)


@PROPERTIES
@given(
    value=st.one_of(
        st.none(),
        st.binary(max_size=64),
        job.map(dump).map(lambda t: t.encode("utf-8", "surrogatepass")),
        obj(
            specversion=st.just("1.0") | anything,
            id=texts,
            source=texts,
            type=texts,
            data=anything,
            data_base64=texts,
            time=texts,
        )
        .map(dump)
        .map(lambda t: t.encode("utf-8", "surrogatepass")),
    ),
    headers=st.lists(
        st.tuples(
            st.sampled_from(["content-type", "ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "x"])
            | texts,
            st.one_of(st.none(), st.binary(max_size=16), st.sampled_from([b"application/cloudevents+json", b"1.0"])),
        ),
        max_size=5,
    ),
    key=st.one_of(st.none(), st.binary(max_size=9)),
    key_type=st.sampled_from(["string", "int", "float", "byte-array"]),
    timestamp=st.integers(min_value=-(2**40), max_value=2**45),
)
def test_kafka_records_become_cloudevents(value, headers, key, key_type, timestamp) -> None:
    record = KafkaRecord(
        topic="t", partition=0, offset=1, timestamp_ms=timestamp, key=key, value=value, headers=tuple(headers)
    )
    event = bounded(
        lambda: event_from_record(record, namespace="ns", source_name="src", key_type=key_type),
        typed=(InvalidCloudEvent,),
    )
    assert event is None or all(isinstance(v, str) for v in event.attributes.values())


def test_raw_markers_are_written_back_as_text() -> None:
    # A GoPlus flag the decoder marked keeps its text in the raw flags (jsonb), never fails the write.
    from shared.json_encoding import dumps

    doc = wire({"holder_count": Raw("1e999999999"), "name": "A\x00B"})
    assert json.loads(dumps(doc)) == {"holder_count": "1e999999999", "name": "AB"}
    assert base64  # imported for structured data_base64 examples
