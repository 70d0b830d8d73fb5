"""The job message contract (README, Contracts): the original format verbatim, clear reasons for the rest."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from shared.crawler.jobs import parse_job_message
from shared.errors import BadMessage

ORIGINAL = b'{"job_type": "price", "token_type": "top100", "symbols": ["BTC", "ETH", "SOL"], "timestamp": "2025-06-25T21:00:00Z"}'


def _job(**fields) -> bytes:
    base = {"job_type": "price", "token_type": "top100", "symbols": ["BTC"], "timestamp": "2025-06-25T21:00:00Z"}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not _MISSING}).encode()


_MISSING = object()


def _reason(body: bytes, **limits) -> str:
    with pytest.raises(BadMessage) as caught:
        parse_job_message(body, **limits)
    return caught.value.reason


def test_the_original_message_verbatim():
    job = parse_job_message(ORIGINAL)
    assert job.job_type == "price"
    assert job.token_type == "top100"
    assert job.symbols == ["BTC", "ETH", "SOL"]
    assert job.timestamp == datetime(2025, 6, 25, 21, 0, tzinfo=timezone.utc)
    assert job.job_id is None and job.expires_at is None and job.contracts == [] and job.token_keys == []


def test_unknown_fields_are_tolerated_and_optional_fields_read():
    job = parse_job_message(
        _job(
            priority="high",
            nested={"x": [1, 2]},
            job_id="j-1",
            batch=0,
            batches=2,
            expires_at="2025-06-25T21:00:10Z",
            contracts=[{"chain": "solana", "address": "DezXAZ8z7PnMcsqqq7rTPXDLzmEKi6MSc4pnmTC2Bo4f"}],
        )
    )
    assert (job.job_id, job.batch, job.batches) == ("j-1", 0, 2)
    assert job.expires_at == datetime(2025, 6, 25, 21, 0, 10, tzinfo=timezone.utc)
    assert job.contracts[0].address == "DezXAZ8z7PnMcsqqq7rTPXDLzmEKi6MSc4pnmTC2Bo4f"  # case kept


def test_symbols_are_upper_cased_stripped_and_deduplicated_in_order():
    assert parse_job_message(_job(symbols=[" sol ", "BTC", "btc", "1000SATS", "BTC.B"])).symbols == [
        "SOL",
        "BTC",
        "1000SATS",
        "BTC.B",
    ]


def test_a_timestamp_without_zone_is_utc():
    assert parse_job_message(_job(timestamp="2025-06-25T21:00:00")).timestamp.tzinfo == timezone.utc


@pytest.mark.parametrize(
    "body, expected",
    [
        (_job(symbols="BTC"), "symbols: Input should be a valid list"),
        (_job(symbols=[1]), "symbols.0: Input should be a valid string"),
        (_job(symbols=None), "symbols: Input should be a valid list"),
        (_job(timestamp=5), "timestamp: Value error, must be an ISO-8601 string"),
        (_job(timestamp="yesterday"), "timestamp: Value error, must be an ISO-8601 string"),
        (_job(job_type="prices"), "job_type: Input should be 'price', 'metadata', 'price_metadata' or 'audit'"),
        (_job(token_type=["top100"]), "token_type: Input should be 'top100' or 'trending'"),
        (_job(batch="1"), "batch: Input should be a valid integer"),
        (_job(batch=True), "batch: Input should be a valid integer"),
        (_job(job_id=5), "job_id: Input should be a valid string"),
        (_job(timestamp=_MISSING), "timestamp: Field required"),
        (_job(job_type=_MISSING), "job_type: Field required"),
    ],
)
def test_wrong_types_and_missing_fields_name_the_field(body, expected):
    assert _reason(body).startswith("invalid job message: ")
    assert expected in _reason(body)


@pytest.mark.parametrize(
    "symbol",
    [
        "BTC'; DROP TABLE tokens;--",
        'BTC"',
        "BTC;",
        "BTC OR 1=1",
        "",
        "   ",
        "A" * 33,
        "БТС",
        "BTC\x00",
        "$(rm -rf)",
    ],
)
def test_symbols_with_quotes_or_metacharacters_are_rejected(symbol):
    reason = _reason(_job(symbols=["ETH", symbol]))
    assert "invalid symbol" in reason
    assert "expected a ticker like 'BTC'" in reason


def test_a_rejected_symbol_is_not_echoed_at_length():
    reason = _reason(_job(symbols=["'" * 10_000]))
    assert len(reason) < 200


@pytest.mark.parametrize(
    "body, expected",
    [
        (b"", "empty message body"),
        (None, "empty message body"),
        (b"BTC,ETH,SOL", "message body is not valid JSON"),
        (b'{"job_type": "price",', "message body is not valid JSON"),
        (b"\xff\xfe\x00", "message body is not valid JSON"),
        (b'[{"job_type": "price"}]', "message body must be a JSON object, got list"),
        (b'"price"', "message body must be a JSON object, got str"),
        (b"null", "message body must be a JSON object, got NoneType"),
    ],
)
def test_bodies_that_are_no_job_object(body, expected):
    assert expected in _reason(body)


def test_oversize_body_is_rejected_before_parsing():
    body = _job(padding="x" * 300_000)
    assert _reason(body) == f"message body is {len(body)} bytes, over the 262144-byte limit"
    assert "over the 100-byte limit" in _reason(ORIGINAL, max_bytes=100)


def test_too_many_symbols():
    assert _reason(_job(symbols=[f"T{i}" for i in range(11)]), max_symbols=10) == (
        "11 symbols, over the limit of 10 per message"
    )


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("contracts", [{"chain": "ethereum", "address": "0x'; DROP TABLE tokens;--"}], "contracts.0.address"),
        ("contracts", [{"chain": "Ethereum Mainnet", "address": "0xabc"}], "contracts.0.chain"),
        ("token_keys", ["no-colon"], "invalid token key 'no-colon'"),
    ],
)
def test_contracts_and_token_keys_are_validated(field, value, expected):
    assert expected in _reason(_job(**{field: value}))


def test_huge_integers_nan_and_nul_are_refused_at_decoding_without_a_stall():
    import time

    base = '{"job_type": "price", "token_type": "top100", "timestamp": "2025-06-25T21:00:00Z", '
    started = time.monotonic()
    for tail, reason in [
        ('"batch": 1' + "0" * 100_000 + "}", "over the limit of 40"),
        ('"batch": NaN}', "NaN is not JSON"),
        ('"traceparent": "00-\\u0000"}', "traceparent"),
        ('"job_id": "a\\u0000b"}', "job_id"),
    ]:
        with pytest.raises(BadMessage, match=reason):
            parse_job_message(base + tail, max_bytes=1 << 20)
    assert time.monotonic() - started < 1.0
