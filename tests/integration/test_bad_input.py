"""Bad input on the price topic: every malformed message gets a clear reason (400 → dead letter,
a 'rejected' row in job_logs), well-formed but unknown symbols are per-token failures (200), and
the pipeline keeps going."""

from __future__ import annotations

import json

import pytest

from tests.helpers.cloudevents import job_request
from tests.helpers.stack import Top100Stack, body_of, utc_now_iso

pytestmark = pytest.mark.infra

NOW = utc_now_iso()
GOOD = {"job_type": "price", "token_type": "top100", "symbols": ["BTC"], "timestamp": NOW}


def _with(**fields) -> str:
    return json.dumps({k: v for k, v in {**GOOD, **fields}.items() if v is not None})


MALFORMED = [
    # (what, body, reason the function answers)
    (
        "SQL metacharacters",
        _with(symbols=["BTC'; DROP TABLE tokens;--"]),
        'invalid symbol "BTC\'; DROP TABLE tokens;--"',
    ),
    ("a quote in a symbol", _with(symbols=['ETH"']), "invalid symbol"),
    ("symbols not a list", _with(symbols="BTC"), "symbols: Input should be a valid list"),
    ("a number as timestamp", _with(timestamp=5), "timestamp: Value error, must be an ISO-8601 string"),
    (
        "missing timestamp",
        json.dumps({"job_type": "price", "token_type": "top100", "symbols": ["BTC"]}),
        "timestamp: Field required",
    ),
    (
        "missing job_type",
        json.dumps({"token_type": "top100", "symbols": ["BTC"], "timestamp": NOW}),
        "job_type: Field required",
    ),
    ("not JSON", "BTC,ETH,SOL", "message body is not valid JSON"),
    ("a JSON array", json.dumps([GOOD]), "message body must be a JSON object, got list"),
    ("oversize", _with(padding="x" * 300_000), "over the 262144-byte limit"),
    ("empty", "", "empty message body"),
    ("not UTF-8", b"\xff\xfe\xfa\x00{", "message body is not valid JSON"),
    ("a job for another function", _with(job_type="audit"), "job_type 'audit' is not handled by the price function"),
]


def test_each_malformed_message_is_rejected_with_its_reason_and_the_pipeline_keeps_going(seeded_stack):
    stack = seeded_stack
    for offset, (what, body, reason) in enumerate(MALFORMED):
        response = stack.price(body, offset=offset)
        assert response.status == 400, what
        answer = body_of(response)
        assert reason in answer["error"], (what, answer)
        assert answer["kind"] == "BadMessage" and answer["retryable"] is False, what

    rejected = stack.db.rows("SELECT * FROM job_logs WHERE status = 'rejected' ORDER BY id")
    assert len(rejected) == len(MALFORMED)
    for row, (what, _, reason) in zip(rejected, MALFORMED):
        assert reason in row["message"], what
        assert row["job_type"] == "price"
        assert row["event_id"].startswith("partition:0/offset:")
    assert stack.db.value("SELECT count(*) FROM tokens") == 100  # nothing was dropped
    assert stack.db.latest_prices() == {}

    good = stack.price(GOOD, offset=len(MALFORMED))
    assert good.status == 200, good.body
    assert body_of(good)["succeeded"] == 1
    assert {r["symbol"] for r in stack.db.latest_prices().values()} == {"BTC"}


def test_a_redelivered_malformed_message_keeps_one_rejected_row(seeded_stack):
    stack = seeded_stack
    assert stack.price("not json", offset=9).status == 400
    assert stack.price("not json", offset=9).status == 400
    assert len(stack.db.rows("SELECT 1 FROM job_logs WHERE status = 'rejected'")) == 1


def test_unknown_but_well_formed_symbols_are_per_token_failures_and_the_rest_is_priced(seeded_stack):
    stack = seeded_stack
    response = stack.price({**GOOD, "symbols": ["NOPE", "BTC", "ETH2X"]})

    assert response.status == 200, response.body
    answer = body_of(response)
    assert (answer["status"], answer["requested"], answer["succeeded"], answer["failed"]) == ("partial", 3, 1, 2)
    failures = {r["token_ref"]: r["message"] for r in stack.db.job_rows(kind="token", job_type="price")}
    assert failures == {
        "NOPE": "unknown symbol NOPE: not in the current top-100 set",
        "ETH2X": "unknown symbol ETH2X: not in the current top-100 set",
    }
    assert {r["symbol"] for r in stack.db.latest_prices().values()} == {"BTC"}


def test_only_unknown_symbols_is_a_done_job_that_priced_nothing(seeded_stack):
    stack = seeded_stack
    response = stack.price({**GOOD, "symbols": ["NOPE", "ZZZ"]})

    assert response.status == 200
    assert body_of(response)["status"] == "failed"
    [log] = stack.db.job_rows(kind="job", job_type="price")
    assert (log["status"], log["tokens_requested"], log["tokens_failed"]) == ("failed", 2, 2)
    assert stack.market.stats.count("binance") == 0  # nothing to ask an exchange for


def test_an_empty_symbol_list_prices_the_whole_set(seeded_stack):
    """A price job naming no symbols means the current top-100 set (shared/crawler/pipelines/top100_prices.py)."""
    stack = seeded_stack
    response = stack.price({**GOOD, "symbols": []})

    assert response.status == 200, response.body
    assert (body_of(response)["requested"], body_of(response)["succeeded"]) == (100, 100)
    assert stack.market.stats.count("binance", "/api/v3/ticker/price") == 1


def test_a_job_naming_contracts_is_not_mistaken_for_the_whole_set(seeded_stack):
    stack = seeded_stack
    response = stack.price(
        {
            **GOOD,
            "symbols": [],
            "token_keys": ["native:bitcoin"],
            "contracts": [{"chain": "ethereum", "address": "0x514910771af9ca656af840dff83e8264ecf986ca"}],
        }
    )

    assert response.status == 200
    assert (body_of(response)["requested"], body_of(response)["succeeded"]) == (2, 0)
    assert stack.db.latest_prices() == {}
    assert all("name tokens by symbol" in r["message"] for r in stack.db.job_rows(kind="token", job_type="price"))


def test_a_request_that_is_no_cloudevent_is_400(seeded_stack: Top100Stack):
    response = seeded_stack.price_app.handle_http(
        "POST", "/", {"Content-Type": "application/json"}, json.dumps(GOOD).encode()
    )
    assert response.status == 400
    assert "not a CloudEvent" in body_of(response)["error"]


def test_before_the_first_metadata_refresh_a_price_job_is_retried(stack: Top100Stack):
    response = stack.price(GOOD)
    assert response.status == 503
    assert "no top-100 set yet" in body_of(response)["error"]
    [log] = stack.db.job_rows(kind="job", job_type="price")
    assert log["status"] == "failed" and "PrerequisiteMissing" in log["message"]


def test_the_metadata_function_rejects_malformed_messages_the_same_way(stack: Top100Stack):
    request = job_request("[]", topic=stack.topics["metadata"], offset=3, source_name="metadata-request-source")
    response = request.to(stack.metadata_app)
    assert response.status == 400
    assert "must be a JSON object" in body_of(response)["error"]
    [row] = stack.db.job_rows(job_type="metadata")
    assert row["status"] == "rejected"


@pytest.mark.parametrize(
    ("attribute", "reason"),
    [("ce_id", "CloudEvent id is 3000 bytes"), ("ce_source", "CloudEvent source is 3000 bytes")],
)
def test_an_over_long_cloudevent_id_or_source_is_400_with_the_reason(
    seeded_stack: Top100Stack, attribute: str, reason: str
):
    stack = seeded_stack
    attributes = {
        "ce_specversion": "1.0",
        "ce_id": "e-1",
        "ce_source": "/producer",
        "ce_type": "job",
        "content-type": "application/json",
        attribute: "x" * 3000,
    }
    request = job_request(GOOD, topic=stack.topics["price"], kafka_headers=list(attributes.items()))

    response = request.to(stack.price_app)

    assert response.status == 400, response.body
    answer = body_of(response)
    assert reason in answer["error"] and answer["retryable"] is False
    assert stack.db.value("SELECT count(*) FROM job_logs WHERE length(job_id) > 1000") == 0
    assert stack.db.latest_prices() == {}


def test_an_over_long_job_id_is_400_with_the_reason_and_not_stored(seeded_stack: Top100Stack):
    stack = seeded_stack

    response = stack.price(_with(job_id="j" * 3000))

    assert response.status == 400, response.body
    assert "job_id: String should have at most 128 characters" in body_of(response)["error"]
    [row] = stack.db.rows("SELECT * FROM job_logs WHERE status = 'rejected'")
    assert "job_id" in row["message"] and len(row["job_id"]) < 1000
