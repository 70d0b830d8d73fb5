"""shared.observability.logging: one JSON object per line with a stable set of keys, and no secret ever printed."""

from __future__ import annotations

import io
import json
import logging

import pytest

from shared.config import Settings
from shared.observability.logging import JsonFormatter, log_context, redact, register_secret, secrets_of


@pytest.fixture
def capture():
    """A logger writing through JsonFormatter("price") into a buffer; returns (logger, lines())."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("price"))
    logger = logging.getLogger("test.shared.logging")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)

    def lines() -> list[dict]:
        text = stream.getvalue()
        assert text.endswith("\n")
        return [json.loads(line) for line in text.splitlines()]

    yield logger, lines
    logger.handlers[:] = []


def test_every_line_has_the_same_keys_first(capture):
    logger, lines = capture
    logger.info("plain line")
    with log_context(event_id="ev-1", job_id="top100-price:20260101T000000.000000Z:0", trace_id="ab" * 16):
        logger.warning("job %s done", "x", extra={"failed_tokens": 3, "token_type": "top100"})
    first, second = lines()
    keys = ["timestamp", "level", "function", "logger", "event_id", "job_id", "trace_id", "message"]
    assert list(first)[: len(keys)] == keys
    assert first["event_id"] is None and first["job_id"] is None and first["trace_id"] is None
    assert first["function"] == "price" and first["level"] == "INFO" and first["timestamp"].endswith("Z")
    assert second["event_id"] == "ev-1"
    assert second["job_id"] == "top100-price:20260101T000000.000000Z:0"
    assert second["trace_id"] == "ab" * 16
    assert second["message"] == "job x done"
    # "token" is a crypto token here, not a credential: these stay readable.
    assert second["failed_tokens"] == 3 and second["token_type"] == "top100"


def test_identity_fields_passed_as_extra_fill_the_standard_keys(capture):
    logger, lines = capture
    logger.info("delivered", extra={"event_id": "partition:0/offset:7", "source": "kafkasources/default/x"})
    [line] = lines()
    assert line["event_id"] == "partition:0/offset:7" and line["source"] == "kafkasources/default/x"


def test_a_multi_line_message_and_a_traceback_stay_on_one_line(capture):
    logger, lines = capture
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        logger.exception("first\nsecond")
    [line] = lines()
    assert line["message"] == "first\nsecond"
    assert "ValueError: bad" in line["exception"]


@pytest.mark.parametrize(
    "text, leaked",
    [
        ("connect to postgresql://crawler:s3cr3t-pw@db:5432/price_crawler failed", "s3cr3t-pw"),
        ("GET https://pro-api.coingecko.com/api/v3/ping?x_cg_pro_api_key=CG-abcdef123456 -> 401", "CG-abcdef123456"),
        ('{"api_key": "k-9f8e7d6c5b4a", "symbol": "BTC"}', "k-9f8e7d6c5b4a"),
        ("headers: Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig", "eyJhbGciOiJIUzI1NiJ9"),
        ("password=hunter2hunter2 user=crawler", "hunter2hunter2"),
        ("signature=0a1b2c3d4e5f&timestamp=1", "0a1b2c3d4e5f"),
    ],
)
def test_credentials_in_text_are_masked(text, leaked):
    masked = redact(text)
    assert leaked not in masked
    assert "***" in masked


def test_text_without_credentials_is_unchanged():
    text = "job top100-price:20260101T000000.000000Z:0 partial: 98/100 tokens (token_type=top100, tokens_failed=2)"
    assert redact(text) == text


def test_registered_secrets_are_masked_anywhere(capture):
    logger, lines = capture
    register_secret("gp-0123456789abcdef")
    logger.error("GoPlus refused key gp-0123456789abcdef", extra={"detail": {"echo": "gp-0123456789abcdef"}})
    [line] = lines()
    assert "gp-0123456789abcdef" not in json.dumps(line)


def test_fields_named_like_credentials_are_masked(capture):
    logger, lines = capture
    logger.info(
        "configured",
        extra={
            "api_key": "abc",
            "Authorization": "Basic Zm9vOmJhcg==",
            "client_secret": "x",
            "database_url": "postgresql://crawler:pw1234@db/x",
        },
    )
    [line] = lines()
    assert line["api_key"] == "***" and line["Authorization"] == "***" and line["client_secret"] == "***"
    assert line["database_url"] == "postgresql://crawler:***@db/x"


def test_secrets_of_settings_finds_the_database_password_and_api_keys(monkeypatch):
    monkeypatch.setenv("GOPLUS_API_KEY", "gp-secret-key-1")
    settings = Settings(database_url="postgresql://crawler:db-pass-77@localhost:5432/x")
    found = secrets_of(settings)
    assert "db-pass-77" in found and "gp-secret-key-1" in found
