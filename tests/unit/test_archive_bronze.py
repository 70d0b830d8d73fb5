"""Bronze archive: the HTTP layer's `on_response` hook, the envelope, the key layout and the archived job
messages (moto's S3); replay's `ArchivedUpstream`, the live clients answered from an attempt's archive."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import boto3
import httpx
import pytest
from moto import mock_aws

from shared.archive.archived_upstream import ArchivedUpstream, archived_request_key
from shared.archive.bronze import JOB_SOURCE, ArchivedResponse, BronzeArchive
from shared.config import Settings, UpstreamSettings
from shared.errors import RetryableUpstreamError
from shared.observability.logging import log_context
from shared.upstream.http import UpstreamHttp

AT = datetime(2025, 6, 25, 21, 0, 5, 123456, tzinfo=timezone.utc)
BODY = b'[{"symbol":"PICOUSDT","price":"0.000000000012345"}]'


@pytest.fixture
def archive(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        yield BronzeArchive(s3, "bronze-test", create_bucket=True, clock=lambda: AT)


def layer(transport: httpx.MockTransport, hook) -> UpstreamHttp:
    settings = UpstreamSettings(
        base_url="https://api.example",
        max_retries=2,
        backoff_initial_seconds=0,
        backoff_max_seconds=0,
        rate_limit_per_minute=1000,
    )
    return UpstreamHttp("binance", settings, transport=transport, on_response=hook, sleep=lambda s: None)


def test_the_hook_sees_every_raw_response_retries_included():
    answers = iter([httpx.Response(503, text="busy"), httpx.Response(200, content=BODY)])
    seen = []
    http = layer(
        httpx.MockTransport(lambda request: next(answers)),
        lambda api, path, params, response: seen.append((api, path, params, response.status_code, response.content)),
    )
    body = http.get_json("/api/v3/ticker/price", {"symbols": '["PICOUSDT"]'})
    assert body == [{"symbol": "PICOUSDT", "price": "0.000000000012345"}]
    assert seen == [
        ("binance", "/api/v3/ticker/price", {"symbols": '["PICOUSDT"]'}, 503, b"busy"),
        ("binance", "/api/v3/ticker/price", {"symbols": '["PICOUSDT"]'}, 200, BODY),
    ]


def test_a_failing_hook_never_fails_the_request():
    def broken(*_):
        raise RuntimeError("archive down")

    http = layer(httpx.MockTransport(lambda request: httpx.Response(200, content=b'{"price": 1.5}')), broken)
    assert http.get_json("/x") == {"price": Decimal("1.5")}


def test_recorded_responses_carry_the_job_and_its_observation_time(archive):
    http = layer(
        httpx.MockTransport(
            lambda request: httpx.Response(
                200,
                content=BODY,
                headers={"content-type": "application/json", "x-mbx-used-weight-1m": "4", "set-cookie": "secret"},
            )
        ),
        archive.record_response,
    )
    with log_context(job_id="top100-price:20250625T210005Z:0/x#1", observed_at=AT.isoformat()):
        http.get_json("/api/v3/ticker/price", {"symbols": '["PICOUSDT"]'})
    [key] = [o["Key"] for o in archive.s3.list_objects_v2(Bucket="bronze-test")["Contents"]]
    assert key.startswith("bronze/binance/2025-06-25/21/top100-price%3A20250625T210005Z%3A0%2Fx%231/210005123456-")
    stored = archive.read(key)
    assert stored.body == BODY and stored.status == 200 and stored.fetched_at == AT
    assert stored.job_id == "top100-price:20250625T210005Z:0/x#1" and stored.observed_at == AT
    assert stored.headers == {"content-type": "application/json", "x-mbx-used-weight-1m": "4"}  # no cookies
    assert [r.path for r in archive.responses(["binance"], AT, AT.replace(minute=1))] == ["/api/v3/ticker/price"]
    assert archive.responses(["binance"], AT.replace(minute=1), AT.replace(minute=2)) == []


def test_bodies_that_are_not_text_round_trip_and_corruption_is_detected(archive):
    record = ArchivedResponse("goplus", "/api/v1/x", {"ids": ["a", "b"]}, 200, {}, AT, None, b"\xff\x00gz", {})
    key = archive.write(record)
    assert "/_nojob/" in key and archive.read(key) == record
    envelope = record.envelope()
    assert envelope["body_encoding"] == "base64"
    with pytest.raises(ValueError, match="corrupt"):
        ArchivedResponse.from_envelope({**envelope, "body": "AAAA"})


def test_job_messages_are_archived_once_per_attempt_and_read_first(archive):
    message = b'{"job_type":"price","token_type":"trending","symbols":[],"timestamp":"2025-06-25T21:00:05Z"}'
    key = archive.record_job("trending:1", "price", "trending", message, AT, {"trace_id": "abc", "event_id": None})
    assert key == archive.record_job("trending:1", "price", "trending", message, AT, {"trace_id": "abc"})
    assert key.startswith("bronze/job/2025-06-25/21/trending%3A1/210005123456-")
    response = ArchivedResponse("dexscreener", "/token-boosts/top/v1", {}, 200, {}, AT, "trending:1", b"[]", {})
    archive.write(response)
    found = archive.responses(["dexscreener", JOB_SOURCE], AT, AT + timedelta(seconds=1))
    # Same microsecond: the job message came first.
    assert [(r.source, r.path, r.body) for r in found] == [
        (JOB_SOURCE, "/price/trending", message),
        ("dexscreener", "/token-boosts/top/v1", b"[]"),
    ]
    assert found[0].context == {"trace_id": "abc"}


def test_a_job_message_that_cannot_be_archived_never_fails_the_job():
    broken = BronzeArchive(s3=None, bucket="nowhere")  # every S3 call raises
    assert broken.record_job("j", "audit", "trending", b"{}", AT) is None


def replayed_upstream(records, earlier=lambda key: None) -> ArchivedUpstream:
    settings = Settings().with_upstream("binance", max_retries=2).with_upstream("goplus", max_retries=2)
    return ArchivedUpstream(settings, records, earlier)


def archived(source: str, path: str, params: dict, status: int, body: bytes, seconds: int = 0) -> ArchivedResponse:
    return ArchivedResponse(
        source,
        path,
        params,
        status,
        {"content-type": "application/json"},
        AT + timedelta(seconds=seconds),
        "j",
        body,
        {},
    )


def test_the_live_clients_replay_an_attempt_retries_included():
    symbols = '["PICOUSDT"]'
    upstream = replayed_upstream(
        [
            archived("binance", "/api/v3/ticker/price", {"symbols": symbols}, 503, b"busy"),
            archived("binance", "/api/v3/ticker/price", {"symbols": symbols}, 200, BODY, 1),
        ]
    )
    http = upstream.clients.binance.http
    # The live client's request, decoded as live: the 503 is retried (no real wait), the 200 answers.
    assert http.get_json("/api/v3/ticker/price", {"symbols": symbols}) == [
        {"symbol": "PICOUSDT", "price": "0.000000000012345"}
    ]
    assert upstream.unused() == [] and upstream.unanswered == []


def test_a_request_without_an_archived_answer_fails_like_no_answer_and_is_reported():
    cached = archived(
        "goplus", "/api/v1/token_security/56", {"contract_addresses": "0xab"}, 200, b'{"code":1,"result":{}}'
    )
    upstream = replayed_upstream(
        [
            archived(
                "goplus", "/api/v1/token_security/1", {"contract_addresses": "0xcd"}, 200, b'{"code":1,"result":{}}'
            )
        ],
        earlier=lambda key: cached if key == archived_request_key(cached) else None,
    )
    goplus = upstream.clients.goplus
    assert goplus.token_security("56", ["0xab"]) == {}  # what a live cache would have served
    with pytest.raises(RetryableUpstreamError, match="ConnectError"):
        goplus.token_security("1", ["0xef"])
    assert len(upstream.unanswered) == 3  # the request and its two retries
    assert "/api/v1/token_security/1?contract_addresses=0xef" in upstream.unanswered[0]
    assert [r.params for r in upstream.unused()] == [{"contract_addresses": "0xcd"}]
