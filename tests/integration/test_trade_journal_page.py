"""The trade-journal page (GET /journal) in a real headless Chromium, over the real trades API and feed.

Trades go through the real pipeline (API → normaliser → enricher → analyser, real Kafka and
PostgreSQL: the fixture of test_trades_enrichment); the page is served by the trades function
under functions-framework and follows the trade_feed function under uvicorn, as under `make up`.
Chromium is Debian's (`scripts/setup.sh` installs it); the test fails, never skips, without it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from local import services
from local.stack import function_argv
from shared.trades.auth import issue_token
from shared.trades.contracts import millis_text
from tests.integration.test_trades_enrichment import Pipeline, pipeline, seed_market  # noqa: F401

pytestmark = pytest.mark.infra

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_NAMES = ("chromium", "chromium-browser")


def chromium_path() -> str:
    for name in CHROMIUM_NAMES:
        if found := shutil.which(name):
            return found
    pytest.fail("Debian's chromium is not installed (scripts/setup.sh installs it: apt-get install chromium)")


def start(name: str, port: int, env: dict[str, str], log_dir: Path) -> subprocess.Popen:
    log = open(log_dir / f"{name}.log", "wb")
    process = subprocess.Popen(list(function_argv(name, port)), env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    services.wait_for_port("127.0.0.1", port, timeout=30, alive=lambda: process.poll() is None)
    return process


@pytest.fixture
def journal(pipeline: Pipeline, tmp_path: Path) -> Iterator[str]:  # noqa: F811
    """The trades function and the trade_feed function on free ports; the journal page's URL."""
    api_port, feed_port = services.free_port(), services.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DATABASE_", "TRADES_"))}
    env.update(
        DATABASE_URL=pipeline.db.url,
        KAFKA_BOOTSTRAP_SERVERS=pipeline.bootstrap,
        PYTHONPATH=str(ROOT),
        TRADES_TOKEN_KEY=pipeline.settings.token_key.get_secret_value(),
        TRADES_FEED_URL=f"ws://127.0.0.1:{feed_port}",
        TRADES_FEED_POLL_SECONDS="0.1",
    )
    processes = [
        start("trade_feed", feed_port, {**env, "K_SERVICE": "trade_feed"}, tmp_path),
        start("trades", api_port, {**env, "K_SERVICE": "trades"}, tmp_path),
    ]
    try:
        yield f"http://127.0.0.1:{api_port}/journal"
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


@pytest.fixture
def browser() -> Iterator[Browser]:
    executable = chromium_path()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


def test_the_journal_shows_the_users_trades_with_context_and_alerts_live_and_nothing_of_others(
    pipeline: Pipeline,  # noqa: F811
    journal: str,
    browser: Browser,
) -> None:
    at = (datetime.now(timezone.utc) - timedelta(seconds=90)).replace(second=30, microsecond=500000)
    seed_market(pipeline.resources, at)
    buy = {"symbol": "BTC/USDT", "side": "BUY", "price": "60300", "quantity": "0.1", "executed_at": millis_text(at)}
    scam = {"symbol": "SCAMUSDT", "side": "BUY", "price": "0.000000000012345", "quantity": "1000000",
            "executed_at": millis_text(at)}  # fmt: skip
    assert pipeline.post(buy, "btc-1").status == 202
    assert pipeline.post(scam, "scam-1").status == 202
    pipeline.run_all()

    # The page itself: no external origin, scripts of its own origin only.
    page_answer = httpx.get(journal)
    assert page_answer.status_code == 200 and "script-src 'self'" in page_answer.headers["content-security-policy"]
    assert "http" not in page_answer.text.replace('content="ws://', "").split("<body>")[1]  # no CDN, no external link

    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)  # CSP too
    page.goto(f"{journal}#token={issue_token(pipeline.settings, 'alice')}")
    rows = page.locator("#trades tbody tr")
    btc = page.locator("#trades tbody tr", has_text="BTCUSDT")
    token_row = page.locator("#trades tbody tr", has_text="SCAMUSDT")
    expect(btc.locator("td[data-field=market]")).to_have_text("60000", timeout=15000)
    expect(token_row.locator("td[data-field=market]")).to_have_text("0.000000000012345")
    assert "token" not in page.url  # the fragment is dropped from the address bar once read
    expect(rows).to_have_count(2)
    cells = btc.locator("td").all_text_contents()
    assert cells[1:7] == ["BTCUSDT", "BUY", "0.1", "60300", "", ""]
    assert btc.locator("td[data-field=slippage]").text_content() == "50.0000"
    assert btc.locator("td[data-field=candle]").text_content() == "59000 / 60000 / 59000 / 60000"
    # exact decimals as the API wrote them: never through a float
    assert token_row.locator("td").nth(4).text_content() == "0.000000000012345"
    assert "sell tax 0.9" in (token_row.locator("td[data-field=audit]").text_content() or "")
    expect(page.locator("#alerts tbody")).to_contain_text("risky_token", timeout=15000)
    expect(token_row.locator("td[data-field=alerts]")).to_contain_text("risky_token")

    # A new trade commits: it appears without a reload.
    sell = {"symbol": "BTCUSDT", "side": "SELL", "price": "60100", "quantity": "0.1",
            "executed_at": millis_text(at + timedelta(seconds=10))}  # fmt: skip
    assert pipeline.post(sell, "btc-2").status == 202
    pipeline.run_all()
    closed = page.locator("#trades tbody tr").filter(has=page.locator("td[data-field=status]", has_text="closed"))
    expect(closed).to_have_count(1, timeout=15000)
    assert closed.locator("td").nth(5).text_content() == "60100"  # exit
    assert closed.locator("td").nth(6).text_content() not in ("", None)  # pnl, as the API's string
    expect(rows).to_have_count(2)  # the superseded open trade left
    assert errors == []

    # Another user's page shows none of alice's trades, alerts or live items.
    other = browser.new_page()
    other.goto(f"{journal}#token={issue_token(pipeline.settings, 'bob')}")
    expect(other.locator("#status")).to_have_text(re.compile("^Live"), timeout=15000)
    assert other.locator("#trades tbody tr").count() == 0 and other.locator("#alerts tbody tr").count() == 0
    assert pipeline.post({**buy, "executed_at": millis_text(at + timedelta(seconds=20))}, "btc-3").status == 202
    pipeline.run_all()
    expect(page.locator("#trades tbody tr", has_text="BTCUSDT")).to_have_count(2, timeout=15000)  # alice: live
    assert other.locator("#trades tbody tr").count() == 0
