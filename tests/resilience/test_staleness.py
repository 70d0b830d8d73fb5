"""A price that stopped being refreshed is reported as stale by every read path, never as fresh.

Every process runs with PRICE_STALE_AFTER_SECONDS = 3. A top-100 job commits fresh prices;
then nothing refreshes them. Each read path is asked right away and again once the bound has
passed: the quotes API (`/v1/prices`, `/v1/prices/{token}`, `/v1/tokens/{token}`,
`/v1/tokens/{token}/kpis`), the store's `latest_prices` (what the functions read), `make
status`'s freshness table, and the `crawler_price_oldest_age` gauge a stale-price alert
watches. Each must carry the observation time and source, say fresh at first, then stale.
"""

from __future__ import annotations

import re
import time
import urllib.request
from datetime import datetime

import pytest

from local import status
from local.market.server import SimulatedMarket
from shared.crawler import store
from shared.db.connection import connect
from tests.resilience.harness import (
    FIGURES,
    PRICE_TOPIC,
    STALE_AFTER_SECONDS,
    TOP100_SYMBOLS,
    Ledger,
    RunningSystem,
    http_get_json,
    top100_job,
)

pytestmark = pytest.mark.infra


def read_paths(system: RunningSystem, keys: dict[str, str]) -> dict[str, list[dict]]:
    """Per read path, the price objects it gives for `keys` (symbol -> token key)."""
    quotes = system.function_url("quotes")
    symbols = sorted(keys)
    _, many = http_get_json(f"{quotes}/v1/prices?tokens={','.join(symbols)}", timeout=5)
    one = [http_get_json(f"{quotes}/v1/prices/{s}", timeout=5)[1] for s in symbols]
    tokens = [http_get_json(f"{quotes}/v1/tokens/{s}", timeout=5)[1].get("price") or {} for s in symbols]
    kpis = [http_get_json(f"{quotes}/v1/tokens/{s}/kpis", timeout=5)[1] for s in symbols]
    conn = connect(system.infra.database_url)
    try:
        latest = store.latest_prices(conn, list(keys.values()), STALE_AFTER_SECONDS)
    finally:
        conn.close()
    stored = [
        {"stale": p.stale, "observed_at": p.observed_at, "source": p.source, "price_usdt": p.price_usdt}
        for p in latest.values()
    ]
    return {
        "api:/v1/prices": many.get("prices", []),
        "api:/v1/prices/{token}": one,
        "api:/v1/tokens/{token}": tokens,
        "api:/v1/tokens/{token}/kpis": kpis,
        "store.latest_prices": stored,
    }


def oldest_age_gauge(system: RunningSystem) -> float | None:
    with urllib.request.urlopen(f"{system.function_url('price')}/metrics", timeout=5) as response:
        text = response.read().decode()
    match = re.search(r'^crawler_price_oldest_age\S*\{[^}]*token_set="top100"[^}]*\} (\S+)$', text, re.M)
    return float(match.group(1)) if match else None


def test_a_price_past_the_bound_is_stale_on_every_read_path(
    healthy: RunningSystem, market: SimulatedMarket, ledger: Ledger
) -> None:
    if "quotes" not in healthy.children:
        pytest.fail("local.stack.processes() has no quotes function to read prices through")
    keys = {s: market.universe.get(s).key for s in TOP100_SYMBOLS}
    job = top100_job()
    healthy.produce(PRICE_TOPIC, job)
    assert ledger.wait_final(job["job_id"])["status"] == "succeeded"
    committed_at = time.monotonic()

    fresh = read_paths(healthy, keys)
    fresh_seconds = time.monotonic() - committed_at
    assert fresh_seconds < STALE_AFTER_SECONDS, "the first reads came too late to be fresh"
    for path, prices in fresh.items():
        assert len(prices) == len(keys), (path, prices)
        assert all(p.get("stale") is False for p in prices), (path, prices)
    for path in ("api:/v1/prices", "api:/v1/prices/{token}", "api:/v1/tokens/{token}", "store.latest_prices"):
        assert all(p.get("observed_at") and p.get("source") for p in fresh[path]), (path, fresh[path])

    time.sleep(max(0.0, committed_at + STALE_AFTER_SECONDS + 1.0 - time.monotonic()))
    stale = read_paths(healthy, keys)
    for path, prices in stale.items():
        assert len(prices) == len(keys), (path, prices)
        assert all(p.get("stale") is True for p in prices), (path, prices)
    # Still the same price, time and source: flagged, never hidden and never re-dated.
    for path in ("api:/v1/prices", "api:/v1/prices/{token}", "api:/v1/tokens/{token}"):
        before = {p["token_key"]: (p["price_usdt"], p["observed_at"], p["source"]) for p in fresh[path]}
        after = {p["token_key"]: (p["price_usdt"], p["observed_at"], p["source"]) for p in stale[path]}
        assert after == before, path
        assert all(p["age_seconds"] > STALE_AFTER_SECONDS for p in stale[path])

    conn = connect(healthy.infra.database_url)
    try:
        top100 = {f.token_set: f for f in status.read_freshness(conn, STALE_AFTER_SECONDS)}["top100"]
    finally:
        conn.close()
    assert top100.stale >= len(keys) and not top100.fresh
    gauge = oldest_age_gauge(healthy)
    assert gauge is not None and gauge > STALE_AFTER_SECONDS, gauge
    observed = [datetime.fromisoformat(p["observed_at"].replace("Z", "+00:00")) for p in stale["api:/v1/prices"]]
    assert len(set(observed)) == 1  # one job, one observation time for all its tokens
    FIGURES.add(
        "staleness",
        bound_seconds=STALE_AFTER_SECONDS,
        read_paths=len(stale) + 2,
        fresh_when_read_after=round(fresh_seconds, 2),
        stale_everywhere_after=STALE_AFTER_SECONDS + 1,
        status_stale=top100.stale,
        gauge_oldest_age=round(gauge, 1),
        passed_off_as_fresh=0,
    )
