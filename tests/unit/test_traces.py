"""Span attributes that must never go wrong: SQL summaries by the conventions, URLs without secrets,
trace context written into the Kafka headers, and tracing off unless an OTLP endpoint is set."""

from __future__ import annotations

import httpx
import pytest

from shared.config import Settings
from shared.db import store
from shared.logging import register_secret
from shared.traces import Tracing, safe_url, statement_summary, traces_endpoint, with_trace_headers


@pytest.mark.parametrize(("sql", "operation", "collection", "summary"), [
    ("BEGIN", "BEGIN", None, "BEGIN"),
    ("COMMIT", "COMMIT", None, "COMMIT"),
    ("SELECT token_key FROM tokens WHERE token_key = ANY(CAST(:keys AS text[]))", "SELECT", "tokens", "SELECT tokens"),
    ("SELECT * FROM unnest(CAST(:k AS text[])) AS x(k) JOIN tokens t ON t.token_key = x.k", "SELECT", "tokens",
     "SELECT tokens"),
    ("INSERT INTO tokens AS t (token_key) VALUES (:k) ON CONFLICT (token_key) DO UPDATE SET symbol = EXCLUDED.symbol",
     "INSERT", "tokens", "INSERT tokens"),
    ("UPDATE token_set_members SET left_at = now() WHERE token_set = :set", "UPDATE", "token_set_members",
     "UPDATE token_set_members"),
    ("SELECT fold_candle_ticks()", "SELECT", None, "SELECT"),
    ("WITH a AS (INSERT INTO job_logs (x) VALUES (1)), b AS (DELETE FROM job_logs WHERE false) SELECT 1",
     None, None, "INSERT job_logs DELETE job_logs"),
])
def test_a_statement_is_summarised_by_its_operations_and_tables(sql, operation, collection, summary) -> None:
    result = statement_summary(sql)
    assert (result.operation, result.collection, result.text) == (operation, collection, summary)


def test_the_price_insert_names_every_table_it_writes_and_no_cte() -> None:
    import inspect

    source = inspect.getsource(store.insert_prices)
    sql = source[source.index('"""', source.index("conn.run(")) + 3:]
    sql = sql[:sql.index('"""')]
    result = statement_summary(sql)
    assert result.text == "INSERT token_prices INSERT token_candle_ticks INSERT token_latest_prices"
    assert (result.operation, result.collection) == ("INSERT", None)  # three tables: no single collection


def test_a_url_loses_user_info_and_credential_query_values() -> None:
    register_secret("registered-secret-42")
    url = httpx.URL("https://user:pw@api.example.com/v1/x?symbols=BTC&api_key=k123&x_cg_pro_api_key=k456"
                    "&note=registered-secret-42")
    clean = safe_url(url)
    assert clean.startswith("https://api.example.com/v1/x?symbols=BTC&")
    for secret in ("pw", "k123", "k456", "registered-secret-42"):
        assert secret not in clean
    assert "api_key=REDACTED" in clean


def test_the_send_span_context_replaces_the_job_s_traceparent_header() -> None:
    headers = [("ce_id", b"1"), ("ce_traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01")]
    carrier = {"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"}
    written = with_trace_headers(headers, carrier)
    assert [v for k, v in written if k == "ce_traceparent"] == [carrier["traceparent"].encode()]
    assert with_trace_headers(headers, {}) == headers


def test_tracing_is_off_without_an_otlp_endpoint() -> None:
    assert traces_endpoint(Settings(otel_exporter_otlp_endpoint="")) is None
    assert not Tracing.from_settings(Settings(otel_exporter_otlp_endpoint=""), "price").enabled
    assert traces_endpoint(Settings(otel_exporter_otlp_endpoint="http://collector:4318/")) \
        == "http://collector:4318/v1/traces"
    assert traces_endpoint(Settings(otel_exporter_otlp_endpoint="http://c:4318",
                                    otel_exporter_otlp_traces_endpoint="http://t:4318/custom")) == "http://t:4318/custom"
    assert traces_endpoint(Settings(otel_exporter_otlp_endpoint="http://c:4318", otel_sdk_disabled=True)) is None
