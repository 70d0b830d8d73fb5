"""shared/stocks: the long-lived dbt worker's protocol and the loud failures when dbt is absent,
without dbt itself (the real builds through the worker: tests/integration/test_stock_gold.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from shared.events import InboundEvent
from shared.runtime.resources import Resources
from shared.stocks.gold import DbtWorker, DbtWorkerError, dbt_missing, run_gold
from shared.stocks.handler import DbtNotInstalled, gold_readiness, run_stocks_tick
from shared.stocks.settings import StockSettings

URL = "postgresql://crawler:crawler@127.0.0.1:1/price_crawler"


def test_an_interpreter_without_dbt_is_a_clear_worker_error(tmp_path: Path) -> None:
    # The platform's own interpreter has no dbt-core: the worker says so instead of hanging.
    worker = DbtWorker(sys.executable, log_file=tmp_path / "worker.log")
    try:
        with pytest.raises(DbtWorkerError, match="dbt-core is not importable"):
            worker.invoke(["build"], {"PATH": "/usr/bin:/bin"}, timeout=60)
        assert worker.pid is None
        outcome = run_gold(StockSettings(dbt_work_dir=str(tmp_path)), URL, worker=worker)
    finally:
        worker.close()
    assert outcome.status == "failed" and "dbt-core is not importable" in (outcome.error or "")


def test_a_missing_dbt_fails_the_gold_tick_loudly_and_the_readiness_probe(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such" / "dbt")
    settings = StockSettings(dbt_executable=missing, dbt_work_dir=str(tmp_path))
    assert dbt_missing(settings) == (
        f"dbt not installed at {missing} (make setup installs .venv-dbt; images: target function-dbt, or kn func via scripts/prepare_function.py)"
    )
    resources = Resources()
    resources.once("stocks.settings", lambda: settings)
    try:
        assert gold_readiness(resources) == dbt_missing(settings)
        event = InboundEvent(id="g", source="/ping", type="dev.knative.sources.ping", data=b'{"schedule":"stock-gold"}')
        with pytest.raises(DbtNotInstalled, match="dbt not installed at"):
            run_stocks_tick(event, resources)
    finally:
        resources.close()


def test_a_project_dir_without_dbt_project_yml_is_not_ready(tmp_path: Path) -> None:
    settings = StockSettings(dbt_executable=sys.executable, dbt_project_dir=str(tmp_path), dbt_worker=False)
    assert dbt_missing(settings) == f"no dbt project at {tmp_path} (STOCKS_DBT_PROJECT_DIR)"


def test_a_worker_that_does_not_answer_in_time_is_killed(tmp_path: Path) -> None:
    # No interpreter starts within a millisecond: the wait ends, the process is gone, and the
    # build is a failed outcome naming the timeout (the next build starts a new worker).
    worker = DbtWorker(sys.executable, log_file=tmp_path / "worker.log")
    try:
        with pytest.raises(DbtWorkerError, match=r"timed out after 0 s \(worker killed\)"):
            worker.invoke(["build"], {"PATH": "/usr/bin:/bin"}, timeout=0.001)
        assert worker.pid is None
    finally:
        worker.close()
