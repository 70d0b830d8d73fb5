"""What a dead-lettered event says about its job (shared.crawler.pipelines.dead_letters.dead_letter_of)."""

from __future__ import annotations

import base64
import json

from shared.crawler.pipelines.dead_letters import dead_letter_of
from shared.events import InboundEvent

PLAIN_SOURCE = "/apis/v1/namespaces/price-crawler/kafkasources/metadata-request-source#price-crawler.metadata.request"
JOB = {"job_type": "metadata", "token_type": "top100", "symbols": ["BTC"], "timestamp": "2026-06-25T21:00:00Z"}


def _letter(data: bytes, **extensions: str):
    event = InboundEvent(
        id="partition:0/offset:7",
        source=PLAIN_SOURCE,
        type="dev.knative.kafka.event",
        data=data,
        extensions={"knativeerrordest": "http://metadata.price-crawler.svc", **extensions},
    )
    return dead_letter_of(event, max_bytes=256 * 1024, max_symbols=5000)


def _error_data(body: dict) -> str:
    return base64.b64encode(json.dumps(body).encode()).decode()


def test_a_refused_message_names_the_rejection_row_and_the_functions_reason() -> None:
    letter = _letter(
        b"not json",
        knativeerrorcode="400",
        knativeerrordata=_error_data({"error": "message body is not valid JSON: x", "kind": "BadMessage"}),
    )
    assert letter.job_id == f"rejected:{PLAIN_SOURCE}#partition:0/offset:7"
    assert letter.row_ids == (letter.job_id,)
    assert (letter.job_type, letter.token_type, letter.status) == ("metadata", None, 400)
    assert letter.reason == "dead-lettered after HTTP 400: message body is not valid JSON: x"


def test_a_valid_job_is_named_as_the_job_runner_names_it() -> None:
    letter = _letter(
        json.dumps({**JOB, "job_id": "daily:2026-06-25"}).encode(),
        knativeerrorcode="503",
        knativeerrordata=_error_data({"error": "PostgreSQL unreachable", "retryable": True}),
    )
    assert letter.job_id == "daily:2026-06-25"
    assert letter.row_ids == ("daily:2026-06-25", f"rejected:{PLAIN_SOURCE}#partition:0/offset:7")
    assert (letter.job_type, letter.token_type) == ("metadata", "top100")
    assert letter.reason == "dead-lettered after HTTP 503: PostgreSQL unreachable"
    # Without its own id, the job runner derives one from the event: the same one.
    assert _letter(json.dumps(JOB).encode()).job_id == f"{PLAIN_SOURCE}#partition:0/offset:7"


def test_no_response_and_truncated_bodies_still_give_a_reason() -> None:
    died = _letter(json.dumps(JOB).encode())
    assert died.status is None
    assert died.reason == (
        "dead-lettered without a response from http://metadata.price-crawler.svc (the function was down or timed out)"
    )
    # knativeerrordata holds at most 1024 bytes of the body: cut JSON reads as text.
    cut = base64.b64encode(b'{"error": "invalid symbol \'' + b"A" * 1100).decode()
    assert _letter(b"", knativeerrorcode="400", knativeerrordata=cut).reason.startswith(
        'dead-lettered after HTTP 400: {"error": "invalid symbol \'AAA'
    )


def test_a_dead_letter_goes_to_the_topic_of_the_source_that_gave_it_up() -> None:
    from shared.config import Settings
    from shared.crawler.pipelines.dead_letters import dead_letter_topic

    settings = Settings()
    audit_source = "/apis/v1/namespaces/price-crawler/kafkasources/audit-request-source#price-crawler.audit.request"
    # A plain record: its KafkaSource decides, whatever job type the record names.
    assert dead_letter_topic(settings, audit_source, "price") == "price-crawler.audit.dead-letter"
    # A CloudEvent record keeps its producer's source: the job type names the function.
    assert dead_letter_topic(settings, "/price-crawler/scheduler", "metadata") == "price-crawler.metadata.dead-letter"
    # Another source's plain record of a known job type, and nothing known at all.
    other = "/apis/v1/namespaces/x/kafkasources/down-request-source#t"
    assert dead_letter_topic(settings, other, "price") == "price-crawler.price.dead-letter"
    assert dead_letter_topic(settings, "/elsewhere", "unknown") is None
