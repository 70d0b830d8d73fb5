"""The resilient HTTP layer, against recorded upstream answers served by httpx.MockTransport."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from shared.config import BinanceSettings, CoinGeckoSettings, UpstreamSettings
from shared.errors import (
    BadUpstreamBody,
    BadWireValue,
    CircuitOpen,
    PermanentUpstreamError,
    RateLimited,
    RegionBlocked,
    RetryableUpstreamError,
    UpstreamBanned,
    UpstreamIntercepted,
)
from shared.upstream.events import EventKind, UpstreamEvent
from shared.upstream.http import UpstreamHttp
from shared.upstream.jsonbody import decode_json
from shared.upstream.ratelimit import SlidingWindowLimiter
from shared.wire import to_decimal
from tests.helpers.upstream_doubles import Answer, FakeClock, ReplayTransport, Reply, sample_bytes, samples_dir

PATH = "/api/v3/ticker/price"
MINUTE_BOUNDARY = 1_750_000_020.0  # a wall-clock time Binance's minute windows start at
TICKERS = "binance.ticker_price.symbols.json"


def settings(**overrides: Any) -> UpstreamSettings:
    values = {
        "base_url": "https://upstream.test",
        "timeout_seconds": 2.0,
        "max_retries": 3,
        "backoff_initial_seconds": 0.1,
        "backoff_max_seconds": 1.0,
        "rate_limit_per_minute": 1000,
        "breaker_failure_threshold": 3,
        "breaker_reset_seconds": 30.0,
        "max_wait_seconds": 5.0,
    }
    return UpstreamSettings(**{**values, **overrides})


def make_http(
    transport: ReplayTransport, clock: FakeClock, events: list[UpstreamEvent] | None = None, **overrides: Any
) -> UpstreamHttp:
    sink = events.append if events is not None else None
    return UpstreamHttp("testapi", settings(**overrides), transport=transport, on_event=sink, **clock.http_options())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def walk(value: Any):
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


# --- exact numbers ---------------------------------------------------------------------------


def test_every_recorded_sample_decodes_without_a_single_float() -> None:
    names = sorted(p.name for p in samples_dir().glob("*.json"))
    assert len(names) > 20
    for name in names:
        values = list(walk(decode_json(sample_bytes(name))))
        assert not [v for v in values if isinstance(v, float)], name


def test_coingecko_exponent_number_stays_exact_as_printed() -> None:
    trending = decode_json(sample_bytes("coingecko.search_trending.json"))
    item = trending["coins"][0]["item"]
    assert item["price_btc"] == Decimal("7.821066970851871e-11")
    assert str(item["price_btc"]) == "7.821066970851871E-11"
    # The same value the API also prints as a decimal string: numerically identical.
    assert Decimal(item["data"]["price_btc"]) == item["price_btc"]


def test_tiny_price_keeps_every_digit_and_integers_stay_int(clock: FakeClock) -> None:
    body = b'{"usd": 0.000000000012345, "usd_market_cap": 1234567890123456789, "x": 1e-30}'
    transport = ReplayTransport({"/api/v3/simple/price": Reply(200, body)})
    doc = make_http(transport, clock).get_json("/api/v3/simple/price")
    assert doc["usd"] == Decimal("0.000000000012345") and doc["usd"].as_tuple().digits == (1, 2, 3, 4, 5)
    assert doc["usd_market_cap"] == 1234567890123456789 and type(doc["usd_market_cap"]) is int
    assert doc["x"] == Decimal("1E-30")


def test_nan_is_not_json_and_never_becomes_a_float() -> None:
    # Not JSON, but one NaN must not lose the other items: it becomes a marker that fails
    # the item reading it, never a float.
    doc = decode_json(b'{"price": NaN, "other": 1.5, "worse": -Infinity}')
    assert doc["other"] == Decimal("1.5")
    for field in ("price", "worse"):
        with pytest.raises(BadWireValue, match="not a finite number"):
            to_decimal(doc[field], field)


@pytest.mark.parametrize(
    "body",
    [
        b"[1e400, 2.5]",
        b"[1e999999999, 2.5]",
        b"[1E-999999999, 2.5]",
        b"[1e99999999999999999999, 2.5]",  # beyond even Decimal's exponent range
        b"[" + b"9" * 1_000_000 + b", 2.5]",
        b"[1." + b"3" * 1_000_000 + b", 2.5]",
        b"[1" + b"0" * 5000 + b", 2.5]",
    ],
)
def test_the_decoder_bounds_every_number_and_never_stalls(body: bytes) -> None:
    started = time.monotonic()
    doc = decode_json(body)
    assert doc[1] == Decimal("2.5")  # the neighbour survives
    with pytest.raises(BadWireValue):
        to_decimal(doc[0], "price")
    assert time.monotonic() - started < 0.5


def test_text_postgresql_refuses_is_cleaned_at_decoding() -> None:
    doc = decode_json(b'{"na\\u0000me": "US\\u0000DT", "list": ["a\\u0000"], "ok": "plain"}')
    assert doc == {"name": "USDT", "list": ["a"], "ok": "plain"}
    # a body only the lenient decoder reads (NaN) holding a lone surrogate: replaced, not kept
    lenient = decode_json(b'{"n": NaN, "s": "x\\ud800y\\u0000"}')
    assert lenient["s"] == "x\ufffdy"


# --- retries ------------------------------------------------------------------------------------


def test_server_error_is_retried_with_backoff_then_succeeds(clock: FakeClock) -> None:
    transport = ReplayTransport({PATH: [Reply(500, b"oops"), Reply(502), Reply.sample(TICKERS)]})
    events: list[UpstreamEvent] = []
    body = make_http(transport, clock, events).get_json(PATH)
    assert body[0] == {"symbol": "LTCBTC", "price": "4.00000200"}
    assert len(transport.requests) == 3
    # capped exponential backoff with jitter: 0.1 + U(0, 0.1), then 0.2 + U(0, 0.1)
    assert 0.1 <= clock.sleeps[0] <= 0.2 and 0.2 <= clock.sleeps[1] <= 0.3
    assert [e.status for e in events if e.kind is EventKind.REQUEST] == [500, 502, 200]
    assert sum(e.kind is EventKind.RETRY for e in events) == 2


def test_timeout_and_connection_error_are_retried(clock: FakeClock) -> None:
    script: list[Answer] = [httpx.ReadTimeout("read timed out"), httpx.ConnectError("refused"), Reply.sample(TICKERS)]
    transport = ReplayTransport({PATH: script})
    assert make_http(transport, clock).get_json(PATH)[1]["symbol"] == "ETHBTC"
    assert len(transport.requests) == 3


def test_retries_are_bounded_and_the_error_names_api_path_and_cause(clock: FakeClock) -> None:
    transport = ReplayTransport({PATH: Reply(503, b"<html>down</html>")})
    with pytest.raises(RetryableUpstreamError) as caught:
        make_http(transport, clock, max_retries=2).get_json(PATH, {"symbols": '["A"]'})
    assert len(transport.requests) == 3
    assert caught.value.status == 503
    assert str(caught.value) == f"testapi: GET {PATH}: HTTP 503"
    assert max(clock.sleeps) <= 1.0 + 0.1  # backoff_max plus jitter


def test_timeout_error_after_retries_says_so(clock: FakeClock) -> None:
    transport = ReplayTransport({PATH: httpx.ReadTimeout("slow")})
    with pytest.raises(RetryableUpstreamError, match=r"testapi: GET /api/v3/ticker/price: timed out after 2s"):
        make_http(transport, clock, max_retries=1).get_json(PATH)
    assert len(transport.requests) == 2


def test_client_error_is_not_retried_and_carries_the_api_message(clock: FakeClock) -> None:
    transport = ReplayTransport({PATH: Reply.sample("binance.error.invalid_symbol.json", status=400)})
    http = make_http(transport, clock, breaker_failure_threshold=1)
    with pytest.raises(PermanentUpstreamError) as caught:
        http.get_json(PATH)
    assert len(transport.requests) == 1 and clock.sleeps == []
    assert caught.value.status == 400 and caught.value.code == -1121
    assert str(caught.value) == f"testapi: GET {PATH}: HTTP 400, code -1121: Invalid symbol."
    assert http.breaker_state == "closed"  # a permanent answer is not an outage


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"status": {"error_code": 10002, "error_message": "API Key Missing"}}, 10002, "API Key Missing"),
        ({"error": "coin not found"}, None, "coin not found"),
    ],
)
def test_coingecko_error_envelopes_are_read(clock: FakeClock, body: dict, code: int | None, message: str) -> None:
    transport = ReplayTransport({"/api/v3/coins/x": Reply.json(body, status=404)})
    with pytest.raises(PermanentUpstreamError) as caught:
        make_http(transport, clock).get_json("/api/v3/coins/x")
    assert caught.value.code == code and str(caught.value).endswith(message)


@pytest.mark.parametrize(
    "body",
    [
        sample_bytes(TICKERS)[:-7],  # a complete HTTP answer whose JSON stops short
        b"",
        b'{"simulated": "malformed",, "body": [1, 2',
        b"\xff\xfe not even text",
    ],
    ids=["truncated", "empty", "malformed", "binary"],
)
def test_a_200_body_that_is_no_json_is_bad_data_never_retried_nor_an_outage(clock: FakeClock, body: bytes) -> None:
    # The API answered, badly, about what was asked: those items fail. Asking again gets the same
    # answer (no retry storm), and it must not open the breaker for every other token.
    transport = ReplayTransport({PATH: Reply(200, body, headers={"content-type": "application/json"})})
    events: list[UpstreamEvent] = []
    http = make_http(transport, clock, events, max_retries=3, breaker_failure_threshold=2)
    for _ in range(4):
        with pytest.raises(BadUpstreamBody, match="HTTP 200 body is no JSON") as caught:
            http.get_json(PATH)
        assert not caught.value.retryable and caught.value.status == 200
    assert len(transport.requests) == 4 and clock.sleeps == []  # one request per call
    assert http.breaker_state == "closed"
    assert not any(e.kind is EventKind.RETRY for e in events)


def test_bad_data_in_between_does_not_hold_back_the_breaker_count_of_real_failures(clock: FakeClock) -> None:
    # Bad data is the success of a call that reached the API: it resets the count of failures
    # in a row, as any proper answer does, and never adds to it.
    script = [Reply(503), Reply(200, b"{oops"), Reply(503), Reply(503)]
    transport = ReplayTransport({PATH: script})
    http = make_http(transport, clock, max_retries=0, breaker_failure_threshold=2)
    with pytest.raises(RetryableUpstreamError):
        http.get_json(PATH)
    with pytest.raises(BadUpstreamBody):
        http.get_json(PATH)
    with pytest.raises(RetryableUpstreamError):
        http.get_json(PATH)
    assert http.breaker_state == "closed"
    with pytest.raises(RetryableUpstreamError):
        http.get_json(PATH)
    assert http.breaker_state == "open"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"<html><title>Just a moment...</title>captcha</html>", "text/html; charset=UTF-8"),
        (b"  <!DOCTYPE html><html>Access denied</html>", "application/json"),  # mislabelled, still a page
        (b"<html>portal</html>", None),
    ],
    ids=["html", "mislabelled", "unlabelled"],
)
def test_a_200_html_page_is_an_outage_counted_by_the_breaker_but_not_retried(
    clock: FakeClock, body: bytes, content_type: str | None
) -> None:
    # A firewall challenge or CDN page answers every call, whatever the token: the path to the
    # API is down. The breaker counts it (and opens), the job retries later, the call is not
    # repeated at once.
    headers = {"content-type": content_type} if content_type else {}
    transport = ReplayTransport({PATH: [Reply(200, body, headers=headers)] * 2 + [Reply.sample(TICKERS)]})
    http = make_http(transport, clock, max_retries=3, breaker_failure_threshold=2, breaker_reset_seconds=30.0)
    for _ in range(2):
        with pytest.raises(UpstreamIntercepted, match="HTML page instead of JSON") as caught:
            http.get_json(PATH)
        assert caught.value.retryable and caught.value.status == 200
    assert len(transport.requests) == 2 and clock.sleeps == []
    assert http.breaker_state == "open"
    with pytest.raises(CircuitOpen):
        http.get_json(PATH)
    assert len(transport.requests) == 2
    clock.advance(30)
    assert len(http.get_json(PATH)) == 2  # the probe gets JSON: the breaker closes
    assert http.breaker_state == "closed"


def test_unexpected_shape_is_bad_data_never_retried_nor_an_outage(clock: FakeClock) -> None:
    # An object where an array was expected: the API answered. Asking again gets the same
    # answer (no retry storm), and it must not open the breaker for every other token.
    transport = ReplayTransport({PATH: Reply.sample("binance.ticker_price.single.json")})
    http = make_http(transport, clock, max_retries=3, breaker_failure_threshold=2)
    for _ in range(5):
        with pytest.raises(BadUpstreamBody, match="expected a JSON array, got object") as caught:
            http.get_json(PATH, expect=list)
        assert not caught.value.retryable
    assert len(transport.requests) == 5  # one request per call, no retries
    assert http.breaker_state == "closed" and clock.sleeps == []


# --- Retry-After, 429, 418, 451 -----------------------------------------------------------------


def test_retry_after_is_honoured_on_429(clock: FakeClock) -> None:
    transport = ReplayTransport({PATH: [Reply(429, headers={"retry-after": "3"}), Reply.sample(TICKERS)]})
    assert make_http(transport, clock).get_json(PATH)
    assert clock.sleeps == [3.0]  # at least Retry-After, which beats the 0.1 s backoff
    assert len(transport.requests) == 2


def test_retry_after_as_http_date_is_understood(clock: FakeClock) -> None:
    when = formatdate(clock.time() + 4, usegmt=True)
    transport = ReplayTransport({PATH: [Reply(503, headers={"retry-after": when}), Reply.sample(TICKERS)]})
    make_http(transport, clock).get_json(PATH)
    assert 3.0 <= clock.sleeps[0] <= 4.0


def test_long_retry_after_raises_rate_limited_and_holds_every_call(clock: FakeClock) -> None:
    body = {"status": {"error_code": 429, "error_message": "You've exceeded the Rate Limit."}}
    transport = ReplayTransport({PATH: [Reply.json(body, 429, {"retry-after": "30"}), Reply.sample(TICKERS)]})
    http = make_http(transport, clock)
    with pytest.raises(RateLimited) as caught:
        http.get_json(PATH)
    assert caught.value.retry_after == 30.0 and caught.value.status == 429
    assert "exceeded the Rate Limit" in str(caught.value)
    assert clock.sleeps == [] and len(transport.requests) == 1
    # Another call in this process obeys the same Retry-After: no request until it passed.
    clock.advance(10)
    with pytest.raises(RateLimited) as again:
        http.get_json(PATH)
    assert len(transport.requests) == 1 and again.value.retry_after == pytest.approx(20.0)
    clock.advance(17)  # 3 s left: within the 5 s cap, so the call waits and then goes out
    assert http.get_json(PATH)
    assert clock.sleeps == [pytest.approx(3.0)] and len(transport.requests) == 2
    assert http.breaker_state == "closed"


def test_418_bans_every_call_until_retry_after_passed(clock: FakeClock) -> None:
    ban = Reply.json(
        {"code": -1003, "msg": "Way too much request weight used; IP banned until 1750000120000."},
        418,
        {"retry-after": "120"},
    )
    transport = ReplayTransport({PATH: [ban, Reply.sample(TICKERS)]})
    events: list[UpstreamEvent] = []
    http = make_http(transport, clock, events)
    with pytest.raises(UpstreamBanned) as caught:
        http.get_json(PATH)
    assert caught.value.retry_after == 120.0 and caught.value.code == -1003
    assert len(transport.requests) == 1 and clock.sleeps == []  # never retried, never slept
    clock.advance(119)
    with pytest.raises(UpstreamBanned, match="no request sent"):
        http.get_json("/api/v3/exchangeInfo")
    assert len(transport.requests) == 1
    clock.advance(1.5)
    assert http.get_json(PATH)
    assert len(transport.requests) == 2
    assert [e.detail for e in events if e.kind is EventKind.BANNED] == ["", "refused"]


def test_418_without_retry_after_assumes_the_shortest_ban(clock: FakeClock) -> None:
    transport = ReplayTransport({PATH: Reply(418)})
    http = make_http(transport, clock)
    with pytest.raises(UpstreamBanned) as caught:
        http.get_json(PATH)
    assert caught.value.retry_after == 120.0


@pytest.mark.parametrize("status", [429, 503, 418])
def test_a_bogus_retry_after_is_capped_and_logged(clock: FakeClock, status: int, caplog) -> None:
    # "99999999" would otherwise silence the API until the process restarts.
    transport = ReplayTransport({PATH: [Reply(status, headers={"retry-after": "99999999"}), Reply.sample(TICKERS)]})
    http = make_http(transport, clock, retry_after_max_seconds=600.0)
    with pytest.raises(RateLimited) as caught:
        http.get_json(PATH)
    assert caught.value.retry_after == 600.0 and "capped to 600s" in caplog.text
    clock.advance(601)
    assert http.get_json(PATH)  # the API is asked again once the capped hold is over


def test_an_in_body_hold_is_capped_too(clock: FakeClock) -> None:
    def hold_forever(body: Any) -> None:
        raise RateLimited("testapi", "too frequent", retry_after=1e12, status=200)

    transport = ReplayTransport({PATH: Reply.sample(TICKERS)})
    http = make_http(transport, clock, retry_after_max_seconds=60.0, max_retries=0)
    with pytest.raises(RateLimited):
        http.get_json(PATH, check=hold_forever)
    clock.advance(61)
    assert http.get_json(PATH)


def test_a_waf_403_is_a_bounded_doubling_hold_not_a_permanent_refusal(clock: FakeClock, caplog) -> None:
    blocked = Reply.json({"code": 0, "msg": "WAF"}, 403)
    transport = ReplayTransport({PATH: [blocked, blocked, blocked, Reply.sample(TICKERS), blocked]})
    http = make_http(
        transport,
        clock,
        forbidden_is_block=True,
        block_backoff_initial_seconds=30.0,
        block_backoff_max_seconds=100.0,
        breaker_failure_threshold=1,
    )
    holds = []
    for _ in range(3):
        with pytest.raises(UpstreamBanned, match="HTTP 403") as caught:
            http.get_json(PATH)
        assert caught.value.retryable and caught.value.status == 403
        retry_after = caught.value.retry_after
        assert retry_after is not None
        holds.append(retry_after)
        with pytest.raises(UpstreamBanned, match="no request sent"):  # held: not asked every tick
            http.get_json(PATH)
        clock.advance(retry_after + 0.1)
    assert holds == [30.0, 60.0, 100.0]  # doubling, capped at the max
    assert len(transport.requests) == 3 and clock.sleeps == []
    assert "blocked (HTTP 403, WAF)" in caplog.text and http.breaker_state == "closed"
    assert http.get_json(PATH)  # the block lifted: a success resets the backoff
    with pytest.raises(UpstreamBanned) as caught:
        http.get_json(PATH)
    assert caught.value.retry_after == 30.0


def test_403_stays_permanent_where_it_means_forbidden(clock: FakeClock) -> None:
    transport = ReplayTransport({PATH: Reply.json({"error": "invalid api key"}, 403)})
    with pytest.raises(PermanentUpstreamError):
        make_http(transport, clock).get_json(PATH)


def test_binance_settings_treat_403_as_a_waf_block() -> None:
    assert BinanceSettings().forbidden_is_block and not CoinGeckoSettings().forbidden_is_block


def test_451_is_region_blocked_and_not_retried(clock: FakeClock) -> None:
    body = {"code": 0, "msg": "Service unavailable from a restricted location."}
    transport = ReplayTransport({PATH: Reply.json(body, 451)})
    with pytest.raises(RegionBlocked, match="restricted location") as caught:
        make_http(transport, clock).get_json(PATH)
    assert caught.value.status == 451 and not caught.value.retryable
    assert len(transport.requests) == 1


# --- circuit breaker -------------------------------------------------------------------------------


def test_breaker_opens_after_n_failed_calls_and_half_opens_after_reset(clock: FakeClock) -> None:
    transport = ReplayTransport({PATH: Reply(500)})
    events: list[UpstreamEvent] = []
    http = make_http(transport, clock, events, max_retries=1, breaker_failure_threshold=2)
    for _ in range(2):
        with pytest.raises(RetryableUpstreamError):
            http.get_json(PATH)
    assert http.breaker_state == "open" and len(transport.requests) == 4
    with pytest.raises(CircuitOpen, match="no request sent"):
        http.get_json(PATH)
    assert len(transport.requests) == 4

    clock.advance(30)
    assert http.breaker_state == "half_open"
    with pytest.raises(RetryableUpstreamError):  # the probe fails: open again for another 30 s
        http.get_json(PATH)
    assert http.breaker_state == "open"
    clock.advance(29)
    with pytest.raises(CircuitOpen):
        http.get_json(PATH)

    clock.advance(2)  # 30 s after the failed probe ended (its retry slept a little)
    transport.route(PATH, Reply.sample(TICKERS))
    assert http.get_json(PATH)  # the probe succeeds
    assert http.breaker_state == "closed"
    breaker_changes = [e.detail for e in events if e.kind is EventKind.BREAKER]
    assert breaker_changes == ["open", "half_open", "open", "half_open", "closed"]


def test_breaker_counts_consecutive_failures_only(clock: FakeClock) -> None:
    transport = ReplayTransport({PATH: [Reply(500), Reply.sample(TICKERS), Reply(500), Reply(500)]})
    http = make_http(transport, clock, max_retries=0, breaker_failure_threshold=2)
    with pytest.raises(RetryableUpstreamError):
        http.get_json(PATH)
    http.get_json(PATH)  # a success resets the count
    with pytest.raises(RetryableUpstreamError):
        http.get_json(PATH)
    assert http.breaker_state == "closed"
    with pytest.raises(RetryableUpstreamError):
        http.get_json(PATH)
    assert http.breaker_state == "open"


# --- rate limits -----------------------------------------------------------------------------------


def test_own_rate_limit_waits_and_reports_the_wait(clock: FakeClock) -> None:
    transport = ReplayTransport({PATH: Reply.sample(TICKERS)})
    events: list[UpstreamEvent] = []
    http = make_http(transport, clock, events, rate_limit_per_minute=2, max_wait_seconds=90)
    for _ in range(3):
        http.get_json(PATH)
    assert clock.sleeps == [60.0]
    waits = [e for e in events if e.kind is EventKind.RATE_LIMIT_WAIT]
    assert [(w.seconds, w.path) for w in waits] == [(60.0, PATH)]


def test_own_rate_limit_raises_rate_limited_when_the_wait_is_too_long(clock: FakeClock) -> None:
    transport = ReplayTransport({PATH: Reply.sample(TICKERS)})
    http = make_http(transport, clock, rate_limit_per_minute=2)
    http.get_json(PATH)
    clock.advance(20)
    http.get_json(PATH)
    with pytest.raises(RateLimited, match="own rate limit of 2 requests/min") as caught:
        http.get_json(PATH)
    assert caught.value.retry_after == pytest.approx(40.0)
    assert len(transport.requests) == 2 and clock.sleeps == []


def test_sliding_window_never_allows_more_than_the_limit_in_any_minute() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(5, clock=clock.monotonic)
    starts = []
    for _ in range(23):
        wait = limiter.reserve(max_wait=1000)
        starts.append(clock.monotonic() + wait)
        clock.advance(1)
    for start in starts:
        assert sum(start <= s < start + 60 for s in starts) <= 5


def test_binance_used_weight_waits_for_the_minute_to_roll_over() -> None:
    clock = FakeClock(wall_start=MINUTE_BOUNDARY - 3)
    transport = ReplayTransport({PATH: Reply.sample(TICKERS, headers={"x-mbx-used-weight-1m": "4790"})})
    s = BinanceSettings(base_url="https://binance.test", max_retries=0, max_wait_seconds=5)
    events: list[UpstreamEvent] = []
    http = UpstreamHttp(
        "binance", s, transport=transport, weight_budget_per_minute=4800, on_event=events.append, **clock.http_options()
    )
    http.get_json(PATH, weight=4)
    assert http.used_weight == 4790  # the server's count is the truth
    http.get_json(PATH, weight=4)  # 4790 + 4 > 4800? no: 4794 fits without a wait
    assert clock.sleeps == []
    http.get_json(PATH, weight=20)  # 4790 + 20 > 4800: wait for the next minute
    assert clock.sleeps == [pytest.approx(3.0)]
    assert [e.kind for e in events].count(EventKind.WEIGHT_WAIT) == 1
    assert len(transport.requests) == 3


def test_binance_used_weight_raises_rate_limited_rather_than_wait_long() -> None:
    clock = FakeClock(wall_start=MINUTE_BOUNDARY - 40)
    transport = ReplayTransport({PATH: Reply.sample(TICKERS, headers={"x-mbx-used-weight-1m": "4799"})})
    s = BinanceSettings(base_url="https://binance.test", max_wait_seconds=5)
    http = UpstreamHttp("binance", s, transport=transport, weight_budget_per_minute=4800, **clock.http_options())
    http.get_json(PATH, weight=4)
    with pytest.raises(RateLimited, match="used weight near the 4800/min budget") as caught:
        http.get_json(PATH, weight=20)
    assert caught.value.retry_after == pytest.approx(40.0)
    assert len(transport.requests) == 1


# --- secrets and headers ---------------------------------------------------------------------------


def test_api_key_travels_in_a_header_and_never_in_an_error(clock: FakeClock) -> None:
    from shared.upstream.coingecko import CoinGeckoClient

    transport = ReplayTransport({"/api/v3/search/trending": Reply.json({"error": "Invalid API key"}, 401)})
    s = CoinGeckoSettings(base_url="https://cg.test", api_key="CG-sEcReT")
    client = CoinGeckoClient.from_settings(s, transport=transport, **clock.http_options())
    with pytest.raises(PermanentUpstreamError) as caught:
        client.trending()
    request = transport.requests[0]
    assert request.headers["x-cg-demo-api-key"] == "CG-sEcReT"
    assert "sEcReT" not in str(request.url)
    assert "sEcReT" not in str(caught.value) and "sEcReT" not in repr(caught.value.__dict__)


def test_query_string_is_encoded_by_httpx(clock: FakeClock) -> None:
    transport = ReplayTransport({PATH: Reply.sample(TICKERS)})
    make_http(transport, clock).get_json(PATH, {"symbols": json.dumps(["A", "B"], separators=(",", ":"))})
    assert parse_qs(urlsplit(str(transport.requests[0].url)).query)["symbols"] == ['["A","B"]']


def test_concurrent_threads_share_one_layer_without_serialising(clock: FakeClock) -> None:
    from concurrent.futures import ThreadPoolExecutor

    transport = ReplayTransport({PATH: [Reply(500), Reply.sample(TICKERS)]})
    http = make_http(transport, clock, rate_limit_per_minute=40, max_wait_seconds=0)
    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda _: _outcome(http), range(48)))
    # 40 slots per minute: every request (retries included) used one; the rest were refused.
    assert len(transport.requests) == 40
    assert outcomes.count("ok") == 39 and outcomes.count("rate_limited") == 9
    assert http.breaker_state == "closed"


def _outcome(http: UpstreamHttp) -> str:
    try:
        http.get_json(PATH)
        return "ok"
    except RateLimited:
        return "rate_limited"
