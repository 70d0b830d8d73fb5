"""Bronze archive: the HTTP layer's `on_response` hook, the envelope and the key layout (moto's S3)."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import boto3
import httpx
import pytest
from moto import mock_aws

from shared.archive.bronze import ArchivedResponse, BronzeArchive
from shared.config import UpstreamSettings
from shared.logging import log_context
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
    settings = UpstreamSettings(base_url="https://api.example", max_retries=2, backoff_initial_seconds=0,
                                backoff_max_seconds=0, rate_limit_per_minute=1000)
    return UpstreamHttp("binance", settings, transport=transport, on_response=hook, sleep=lambda s: None)


def test_the_hook_sees_every_raw_response_retries_included():
    answers = iter([httpx.Response(503, text="busy"), httpx.Response(200, content=BODY)])
    seen = []
    http = layer(httpx.MockTransport(lambda request: next(answers)),
                 lambda api, path, params, response: seen.append((api, path, params, response.status_code,
                                                                  response.content)))
    body = http.get_json("/api/v3/ticker/price", {"symbols": '["PICOUSDT"]'})
    assert body == [{"symbol": "PICOUSDT", "price": "0.000000000012345"}]
    assert seen == [("binance", "/api/v3/ticker/price", {"symbols": '["PICOUSDT"]'}, 503, b"busy"),
                    ("binance", "/api/v3/ticker/price", {"symbols": '["PICOUSDT"]'}, 200, BODY)]


def test_a_failing_hook_never_fails_the_request():
    def broken(*_):
        raise RuntimeError("archive down")

    http = layer(httpx.MockTransport(lambda request: httpx.Response(200, content=b'{"price": 1.5}')), broken)
    assert http.get_json("/x") == {"price": Decimal("1.5")}


def test_recorded_responses_carry_the_job_and_its_observation_time(archive):
    http = layer(httpx.MockTransport(lambda request: httpx.Response(
        200, content=BODY, headers={"content-type": "application/json", "x-mbx-used-weight-1m": "4",
                                    "set-cookie": "secret"})), archive.record_response)
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
