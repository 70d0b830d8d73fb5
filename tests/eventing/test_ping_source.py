"""PingSource emulation against real HTTP sinks (knative-eventing.md e)."""

from __future__ import annotations

import base64
import time
import uuid
from datetime import UTC, datetime
from itertools import pairwise

from eventing_helpers import Reply


def ping_source(sink_url: str, *, schedule: str = "* * * * * *", name: str = "tick", body: str = "") -> str:
    return f"""
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata:
  name: {name}
spec:
  schedule: "{schedule}"
  sink:
    uri: {sink_url}
{body}"""


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_six_field_schedule_fires_every_second(recording_sink, run_plane):
    sink = recording_sink()
    body = """  contentType: application/json
  data: '{"job_type": "price", "token_type": "top100"}'
  ceOverrides:
    extensions:
      tokenset: top100"""
    run_plane(ping_source(sink.url, body=body))

    requests = sink.wait_for(4, timeout=8)[:4]
    intervals = [b.at - a.at for a, b in pairwise(requests)]
    assert all(0.8 <= interval <= 1.2 for interval in intervals), intervals
    for request in requests:
        ce = request.ce
        assert ce["type"] == "dev.knative.sources.ping"
        assert ce["source"] == "/apis/v1/namespaces/default/pingsources/tick"
        assert ce["specversion"] == "1.0" and ce["tokenset"] == "top100"
        uuid.UUID(ce["id"])
        sent = parse_time(ce["time"])
        assert abs((datetime.now(UTC) - sent).total_seconds()) < 10
        assert sent.microsecond < 200_000  # fired on the second boundary (jitter disabled)
        assert request.header("Content-Type") == "application/json"
        assert request.body == b'{"job_type": "price", "token_type": "top100"}'
        assert request.header("Kn-Namespace") is None  # KafkaSource-only headers
    assert len({r.ce["id"] for r in requests}) == 4  # a fresh id per tick


def test_tick_jitter_stays_below_half_a_second(recording_sink, run_plane):
    sink = recording_sink()
    run_plane(ping_source(sink.url), ping_jitter_ms=500)

    for request in sink.wait_for(3, timeout=6):
        assert parse_time(request.ce["time"]).microsecond < 650_000


def test_failed_sends_retry_five_times_exponentially_from_50ms(recording_sink, run_plane, wait_until):
    sink = recording_sink([Reply(503), Reply(500), Reply(429), Reply(200)])
    plane = run_plane(ping_source(sink.url, schedule="* * * * * *"), ping_max_in_flight=1)

    requests = sink.wait_for(4, timeout=6)[:4]
    intervals = [b.at - a.at for a, b in pairwise(requests)]
    for got, want in zip(intervals, [0.1, 0.2, 0.4]):  # sdk-go: 50 ms × 2ⁿ
        assert want - 0.02 <= got <= want + 0.2, intervals
    assert len({r.ce["id"] for r in requests}) == 1  # same event retried
    wait_until(lambda: plane.metrics.counter("pingsources/default/tick", "delivered") >= 1, message="delivery counted")
    assert plane.metrics.counter("pingsources/default/tick", "retries") >= 3


def test_gives_up_after_five_retries(recording_sink, run_plane, wait_until):
    sink = recording_sink([Reply(503)])
    plane = run_plane(ping_source(sink.url, schedule="* * * * * *"), ping_max_in_flight=1)

    wait_until(lambda: plane.metrics.counter("pingsources/default/tick", "dropped") >= 1, timeout=8, message="a drop")
    first_id = sink.requests[0].ce["id"]
    assert sum(1 for r in sink.requests if r.ce["id"] == first_id) == 6  # 1 + 5 retries


def test_slow_sink_skips_ticks_instead_of_piling_up(recording_sink, run_plane, wait_until):
    sink = recording_sink([Reply(200, delay=2.5)])
    plane = run_plane(ping_source(sink.url), ping_max_in_flight=1)
    key = "pingsources/default/tick"

    wait_until(lambda: plane.metrics.counter(key, "ticks_skipped") >= 2, timeout=6, message="skipped ticks")
    assert plane.ping_sources[0].in_flight <= 1
    assert sink.max_concurrency == 1
    assert plane.health()["sources"][key]["running"] is True


def test_data_base64_without_content_type(recording_sink, run_plane):
    sink = recording_sink()
    payload = b"\x00\x01binary"
    run_plane(ping_source(sink.url, body=f"  dataBase64: {base64.b64encode(payload).decode()}"))

    request = sink.wait_for(1, timeout=4)[0]
    assert request.body == payload
    assert request.header("Content-Type") is None and "datacontenttype" not in request.ce


def test_unreachable_sink_never_stops_the_source(run_plane, closed_port_url, wait_until):
    plane = run_plane(ping_source(closed_port_url))
    key = "pingsources/default/tick"

    wait_until(lambda: plane.metrics.counter(key, "attempts") >= 3, timeout=6, message="attempts")
    time.sleep(0.2)
    assert plane.health()["status"] == "ok"
