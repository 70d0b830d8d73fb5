"""The scheduler function (functions/scheduler/main.py): PingSource ticks in, binary-mode
CloudEvent jobs out on real Kafka, with the bootstrap on an empty database and backlog skipping."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta, timezone

import pytest

from shared.crawler import store
from shared.crawler.jobs import parse_job_message
from shared.crawler.models import TokenProfile
from tests.helpers.cloudevents import ping_request, request_for_message
from tests.helpers.kafka import headers_of, produce_plain, read_all
from tests.helpers.stack import Top100Stack, body_of

pytestmark = pytest.mark.infra

TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-01$")


def tick(stack: Top100Stack, schedule: str = "top100-price", at: datetime | None = None):
    return ping_request(schedule, at=at).to(stack.scheduler_app)


def test_a_price_tick_emits_one_binary_cloudevent_job_per_batch(seeded_stack):
    stack = seeded_stack
    stack.configure(top100_price_batch_size=30)
    at = datetime.now(timezone.utc).replace(microsecond=250_000)

    response = tick(stack, at=at)

    assert response.status == 200, response.body
    assert body_of(response) == {"schedule": "top100-price", "emitted": 4, "topic": stack.topics["price"]}
    messages = read_all(stack.bootstrap, stack.topics["price"])
    assert len(messages) == 4
    member_symbols = [
        r["symbol"].upper()
        for r in stack.db.rows(
            "SELECT t.symbol FROM token_set_members m JOIN tokens t USING (token_key) WHERE m.left_at IS NULL"
        )
    ]
    stamp = at.strftime("%Y%m%dT%H%M%S.%fZ")
    jobs, keys, trace_ids = [], set(), set()
    for message in messages:
        headers = headers_of(message)
        body = json.loads(message.value())
        jobs.append(body)
        keys.add(message.key().decode())
        assert headers["ce_specversion"] == "1.0"
        assert headers["ce_id"] == body["job_id"]
        assert headers["ce_type"] == "price-crawler.job.requested"
        assert headers["ce_source"] == "/price-crawler/scheduler/top100-price"
        assert headers["ce_subject"] == "top100-price"
        assert headers["ce_time"] == at.isoformat().replace("+00:00", "Z")
        assert headers["content-type"] == "application/json"
        assert headers["ce_partitionkey"] == message.key().decode()
        assert TRACEPARENT.match(headers["ce_traceparent"])
        trace_ids.add(headers["ce_traceparent"].split("-")[1])
        assert body["expires_at"] == (at + timedelta(seconds=10)).isoformat().replace("+00:00", "Z")
        assert body["batches"] == 4 and body["job_id"] == f"top100-price:{stamp}:{body['batch']}"
        parse_job_message(message.value())  # the price function's contract
    assert keys == {"top100:0", "top100:1", "top100:2", "top100:3"}  # a key per batch
    assert len(trace_ids) == 1  # one tick, one trace
    assert sorted(s for j in jobs for s in j["symbols"]) == sorted(member_symbols)
    assert len(member_symbols) == 100

    # KafkaSource passes the job's own id and type through to the price function.
    first = min(messages, key=lambda m: json.loads(m.value())["batch"])
    answer = request_for_message(first).to(stack.price_app)
    assert answer.status == 200, answer.body
    assert body_of(answer)["job_id"] == f"top100-price:{stamp}:0"
    [log] = stack.db.job_rows(f"top100-price:{stamp}:0")
    assert log["event_id"] == f"top100-price:{stamp}:0" and log["status"] == "succeeded"


def test_on_an_empty_database_a_price_tick_requests_the_metadata_job_instead(stack):
    response = tick(stack)

    assert response.status == 200, response.body
    assert body_of(response) == {"schedule": "top100-price", "emitted": 0, "metadata_requested": True}
    assert read_all(stack.bootstrap, stack.topics["price"]) == []
    [request] = read_all(stack.bootstrap, stack.topics["metadata"])
    job = parse_job_message(request.value())
    assert (job.job_type, job.token_type, job.symbols) == ("metadata", "top100", [])

    # The requested refresh builds the set; the next tick prices it.
    refreshed = request_for_message(request, source_name="metadata-request-source").to(stack.metadata_app)
    assert refreshed.status == 200, refreshed.body
    assert len(stack.db.top100_keys()) == 100
    assert body_of(tick(stack))["emitted"] == 1


def test_a_metadata_tick_emits_one_job_with_an_id_stable_across_retries(stack):
    at = datetime.now(timezone.utc).replace(microsecond=0)
    assert tick(stack, "top100-metadata", at=at).status == 200
    assert tick(stack, "top100-metadata", at=at).status == 200  # PingSource retrying the same tick
    messages = read_all(stack.bootstrap, stack.topics["metadata"])
    assert len(messages) == 2
    ids = {headers_of(m)["ce_id"] for m in messages}
    assert ids == {f"top100-metadata:{at.strftime('%Y%m%dT%H%M%S.%fZ')}"}


@pytest.mark.parametrize(
    "data, reason",
    [
        ('{"schedule": "top1000-price"}', "unknown schedule 'top1000-price'"),
        ('{"cron": "*/5 * * * * *"}', "unknown schedule None"),
        ("top100-price", "ping data is not JSON"),
        ('["top100-price"]', "unknown schedule None"),
    ],
)
def test_an_unknown_schedule_is_400_with_the_reason(stack, data, reason):
    response = ping_request(None, data=data).to(stack.scheduler_app)
    assert response.status == 400
    assert reason in body_of(response)["error"]
    assert "expected" in body_of(response)["error"]
    assert read_all(stack.bootstrap, stack.topics["price"]) == []


def test_a_tick_is_skipped_while_the_consumer_group_lags_and_resumes_once_it_caught_up(seeded_stack):
    stack = seeded_stack
    stack.configure(top100_price_batch_size=50)  # two jobs per tick

    assert body_of(tick(stack))["emitted"] == 2
    assert body_of(tick(stack))["emitted"] == 2  # one tick's worth queued: still within the bound
    skipped = tick(stack)

    assert skipped.status == 200
    assert body_of(skipped) == {"schedule": "top100-price", "emitted": 0, "skipped": True, "backlog": 4}
    assert len(read_all(stack.bootstrap, stack.topics["price"])) == 4
    metrics = stack.scheduler_app.handle_http("GET", "/metrics", {}, b"").body.decode()
    assert re.search(r'crawler_scheduler_ticks_total\{[^}]*outcome="skipped"[^}]*\} [1-9]', metrics)

    # The price KafkaSource's group consumes and commits: the next tick is emitted again.
    read_all(stack.bootstrap, stack.topics["price"], group=stack.settings.price_consumer_group, commit=True)
    assert body_of(tick(stack))["emitted"] == 2


def test_records_stuck_behind_a_slow_head_record_since_their_ticks_expired_do_not_stop_the_ticks(seeded_stack):
    stack = seeded_stack
    stack.configure(top100_price_batch_size=50)  # two jobs per tick
    # A slow record at the head of a partition holds the group's committed offset for
    # minutes; the jobs behind it (delivered already, or expired: the function skips them)
    # stay uncommitted. Ten of them, from ticks a minute old.
    minute_ago = int((time.time() - 60) * 1000)
    for _ in range(10):
        produce_plain(stack.bootstrap, stack.topics["price"], b"{}", partition=0, timestamp_ms=minute_ago)

    assert body_of(tick(stack))["emitted"] == 2  # was: skipped, backlog 10, tick after tick
    assert body_of(tick(stack))["emitted"] == 2
    skipped = body_of(tick(stack))  # live jobs still pile up: the check still works
    assert skipped["skipped"] is True and skipped["backlog"] == 4


def test_stablecoins_and_symbols_the_job_contract_rejects_are_never_scheduled(seeded_stack):
    stack = seeded_stack
    odd = [
        TokenProfile(key="native:usdx-money", symbol="USDX", name="USDX", chain=None, address=None, source="test"),
        TokenProfile(key="native:odd-coin", symbol="ODD COIN", name="Odd", chain=None, address=None, source="test"),
    ]
    with stack.resources.db.transaction() as conn:
        keys = store.upsert_tokens(conn, odd)
        store.set_membership(conn, "top100", stack.db.top100_keys() + list(keys.values()), complete=True)
    stack.configure(top100_size=102)

    assert body_of(tick(stack))["emitted"] == 1  # 100 schedulable symbols: one batch
    [message] = read_all(stack.bootstrap, stack.topics["price"])
    symbols = parse_job_message(message.value()).symbols
    assert len(symbols) == 100
    assert "USDX" not in symbols and "ODD COIN" not in symbols
