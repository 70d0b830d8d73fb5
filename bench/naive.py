"""The naive crawler baseline: what one would write without this project.

`python -m bench.naive --market URL --database-url URL --size N --duration S`

One process, one thread. Every 5 s it walks the token set in rank order and, for each
token, sends one request — Binance `ticker/price?symbol=<SYM>USDT` when the pair trades,
else DexScreener `tokens/v1/<chain>/<address>` (deepest pool with a USD price), else
CoinGecko `simple/price?ids=<id>` — and INSERTs the price with pg8000, one autocommitted
statement per row. Prices are Decimal, USD is converted with CoinGecko's tether price
(one request per tick). It prints one JSON object: its ticks, per-price tick-to-commit
latency, requests, CPU seconds and peak RSS. It runs against a market whose Binance
weight limit is lifted: one request per symbol would exceed the real one (6000/min) from
about 250 tokens on, and get the IP banned.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ticks import Distribution
from shared.crawler.domain.chains import dexscreener_chain_id
from shared.db.connection import connect

CADENCE = 5.0


class RequestCounter:
    """An httpx request hook counting what the crawler sends upstream."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, _request: httpx.Request) -> None:
        self.count += 1


def _tokens(conn, size: int) -> list[tuple]:
    return conn.run(
        "SELECT t.token_key, upper(t.symbol), t.chain, t.contract, t.coingecko_id FROM tokens t"
        " JOIN token_set_members m ON m.token_key = t.token_key"
        " WHERE m.token_set = 'top100' AND m.left_at IS NULL AND NOT t.is_stablecoin"
        " ORDER BY m.rank LIMIT :n",
        n=size,
    )


def _binance_bases(http: httpx.Client, market: str) -> set[str]:
    info = http.get(f"{market}/binance/api/v3/exchangeInfo").json()
    return {s["baseAsset"] for s in info["symbols"] if s["quoteAsset"] == "USDT" and s["status"] == "TRADING"}


def _decode(response: httpx.Response):
    response.raise_for_status()
    return json.loads(response.content, parse_float=Decimal)


def _price(
    http: httpx.Client, market: str, token: tuple, bases: set[str], usdt_usd: Decimal
) -> tuple[Decimal, str] | None:
    key, symbol, chain, contract, coingecko_id = token
    if symbol in bases:
        body = _decode(http.get(f"{market}/binance/api/v3/ticker/price", params={"symbol": f"{symbol}USDT"}))
        return Decimal(body["price"]), "binance"
    dex_chain = dexscreener_chain_id(chain) if chain and contract else None
    if dex_chain:
        pairs = _decode(http.get(f"{market}/dexscreener/tokens/v1/{dex_chain}/{contract}")) or []
        priced = [p for p in pairs if p.get("priceUsd")]
        if priced:
            best = max(priced, key=lambda p: Decimal(str((p.get("liquidity") or {}).get("usd") or 0)))
            return Decimal(best["priceUsd"]) / usdt_usd, "dexscreener"
    if coingecko_id:
        body = _decode(
            http.get(f"{market}/coingecko/api/v3/simple/price", params={"ids": coingecko_id, "vs_currencies": "usd"})
        )
        usd = (body.get(coingecko_id) or {}).get("usd")
        if usd is not None:
            return Decimal(str(usd)) / usdt_usd, "coingecko"
    return None


def run(market: str, database_url: str, size: int, duration: float) -> dict:
    """Crawl on the 5-s cadence for `duration` seconds (at least one whole tick)."""
    import psutil

    conn = connect(database_url)
    sent = RequestCounter()
    http = httpx.Client(timeout=10, event_hooks={"request": [sent]})
    tokens = _tokens(conn, size)
    bases = _binance_bases(http, market)
    me = psutil.Process()
    cpu_before = sum(me.cpu_times()[:2])
    began = time.time()
    ticks, latencies = [], []
    sent.count = 0  # the exchangeInfo above is not a tick's work
    next_tick = math.ceil(time.time() / CADENCE) * CADENCE
    while True:
        time.sleep(max(0.0, next_tick - time.time()))
        tick = time.time()
        job = f"naive:{datetime.fromtimestamp(tick, timezone.utc):%Y%m%dT%H%M%S.%f}"
        rate = _decode(
            http.get(f"{market}/coingecko/api/v3/simple/price", params={"ids": "tether", "vs_currencies": "usd"})
        )["tether"]["usd"]
        rows = 0
        for token in tokens:
            found = _price(http, market, token, bases, Decimal(str(rate)))
            if found is None:
                continue
            price, source = found
            conn.run(
                "INSERT INTO token_prices (token_key, price_usdt, source, observed_at, job_id)"
                " VALUES (:k, :p, :s, :t, :j)",
                k=token[0],
                p=price,
                s=source,
                t=datetime.now(timezone.utc),
                j=job,
            )
            latencies.append((time.time() - tick, 1))
            rows += 1
        finished = time.time()
        ticks.append(
            {"scheduled": next_tick, "seconds": finished - tick, "rows": rows, "late": finished > next_tick + CADENCE}
        )
        if finished - began >= duration:
            break
        following = math.ceil(finished / CADENCE) * CADENCE
        ticks[-1]["skipped_after"] = int(round((following - next_tick) / CADENCE)) - 1
        next_tick = following
    busy = sum(t["seconds"] for t in ticks)
    latency = Distribution.of(latencies)
    peak_kb = next(
        (
            int(line.split()[1])
            for line in Path("/proc/self/status").read_text().splitlines()
            if line.startswith("VmHWM:")
        ),
        0,
    )
    conn.close()
    return {
        "ticks": ticks,
        "latency": {"p50": latency.p50, "p99": latency.p99, "max": latency.max},
        "rows": sum(t["rows"] for t in ticks),
        "rows_per_second_busy": sum(t["rows"] for t in ticks) / busy if busy else 0.0,
        "requests": sent.count,
        "cpu_seconds": sum(me.cpu_times()[:2]) - cpu_before,
        "peak_rss_bytes": peak_kb * 1024,
        "elapsed": time.time() - began,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.naive", description=__doc__.split("\n\n")[0])
    parser.add_argument("--market", required=True, help="simulated market base URL (127.0.0.1 only)")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--duration", type=float, default=30.0)
    args = parser.parse_args(argv)
    if httpx.URL(args.market).host not in ("127.0.0.1", "localhost"):
        parser.error("a benchmark only sends traffic to 127.0.0.1")
    print(json.dumps(run(args.market, args.database_url, args.size, args.duration)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
