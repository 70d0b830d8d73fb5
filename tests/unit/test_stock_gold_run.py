"""shared/stocks/gold.py without dbt: the command and environment of a build, and what dbt's
run_results.json says it did."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.stocks.gold import GoldOutcome, connection_env, dbt_invocation, outcome_from_run_results
from shared.stocks.settings import StockSettings

URL = "postgresql://crawler:p%40ss-word@db.example:6543/price_crawler"


def test_the_connection_comes_from_the_database_url_never_the_command_line(tmp_path: Path) -> None:
    settings = StockSettings(
        dbt_executable="/opt/dbt/bin/dbt", dbt_work_dir=str(tmp_path), gold_schema="g", silver_schema="s"
    )
    invocation = dbt_invocation(settings, URL, base_env={"PATH": "/bin", "DBT_PROFILES_DIR": "/elsewhere"})
    assert invocation.argv[:2] == ("/opt/dbt/bin/dbt", "build")
    assert invocation.argv[invocation.argv.index("--target-path") + 1] == str(tmp_path / "target")
    assert invocation.argv[invocation.argv.index("--log-path") + 1] == str(tmp_path / "logs")
    assert "p@ss-word" not in " ".join(invocation.argv)
    assert invocation.env["STOCKS_DBT_PASSWORD"] == "p@ss-word"  # percent-decoded
    assert (invocation.env["STOCKS_DBT_HOST"], invocation.env["STOCKS_DBT_PORT"]) == ("db.example", "6543")
    assert (invocation.env["STOCKS_GOLD_SCHEMA"], invocation.env["STOCKS_SILVER_SCHEMA"]) == ("g", "s")
    assert invocation.env["DBT_SEND_ANONYMOUS_USAGE_STATS"] == "false" and "DBT_PROFILES_DIR" not in invocation.env
    assert invocation.run_results == tmp_path / "target" / "run_results.json"


def test_only_a_postgresql_url_is_accepted() -> None:
    with pytest.raises(ValueError):
        connection_env("mysql://u:p@h/db")
    assert connection_env("postgresql://u@h/db")["STOCKS_DBT_PORT"] == "5432"


def result(unique_id: str, status: str, message: str = "") -> dict:
    return {"unique_id": unique_id, "status": status, "message": message}


def test_run_results_are_counted_by_kind_and_status() -> None:
    outcome = outcome_from_run_results(
        {
            "elapsed_time": 3.25,
            "results": [
                result("model.stocks.gold_kpi", "success"),
                result("model.stocks.gold_candlestick", "success"),
                result("model.stocks.gold_treechart", "skipped"),
                result("test.stocks.unique_gold_kpi_symbol.abc123", "pass"),
                result(
                    "test.stocks.assert_silver_high_at_least_low", "fail", "Got 1 result, configured to fail if != 0"
                ),
                result("seed.stocks.ignored", "success"),
            ],
        },
        returncode=1,
    )
    assert (outcome.models_built, outcome.models_skipped, outcome.tests_passed, outcome.tests_failed) == (2, 1, 1, 1)
    assert [(f.name, f.kind, f.status) for f in outcome.failures] == [
        ("assert_silver_high_at_least_low", "test", "fail")
    ]
    assert outcome.status == "partial" and not outcome.ok  # built, but a data test failed
    assert "assert_silver_high_at_least_low fail" in outcome.summary()


def test_a_failed_model_or_no_run_at_all_is_a_failed_build() -> None:
    broken = outcome_from_run_results({"results": [result("model.stocks.gold_kpi", "error", "syntax")]}, returncode=1)
    assert broken.status == "failed" and broken.models_failed == 1
    missing = GoldOutcome(error="dbt not found")
    assert missing.status == "failed" and "did not run" in missing.summary()
    clean = outcome_from_run_results({"results": [result("model.stocks.gold_kpi", "success")]}, returncode=0)
    assert clean.ok and clean.status == "succeeded"
