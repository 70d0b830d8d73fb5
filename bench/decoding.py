"""What reading DexScreener's answers costs the price function, on the same recorded bodies.

After a system run, the DexScreener answers one tick of that token set needs (one
`/tokens/v1` per 30 addresses per chain, from the simulated market, exactly as the price
job asks for them) are recorded once, then each way of reading them runs over the same
bytes, in this process, one after the other, best of several repetitions:

- *whole body* — the decode the price path used before: every field of every pair into
  dicts (each fractional number a bounded Decimal), then the pool choice (`_main_pools`);
- *pool fields* — what it uses now (`POOL_PAIRS`): only the fields a pool is made of, then
  the same pool choice;
- *floor* — the least an exact reader can do: msgspec into a struct of each pair's base
  address and `priceUsd` text, `Decimal` of it, no pool choice. Not a usable price path
  (no chain, liquidity or plausibility), only the bottom of the scale.

Results are CPU seconds per 1,000 tokens priced on DexScreener, single-threaded.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from bench.infra import BenchInfra

REPEATS = 7


@dataclass
class RecordedAnswer:
    chain: str
    members: list[tuple[Any, str]]  # (KnownToken, the address asked for)
    body: bytes


@dataclass
class DecodeFigures:
    """Seconds per 1,000 DexScreener tokens for each way of reading the same bodies."""

    tokens: int
    answers: int
    body_bytes: int
    per_thousand: dict[str, float] = field(default_factory=dict)
    priced: dict[str, int] = field(default_factory=dict)

    @property
    def bytes_per_token(self) -> float:
        return self.body_bytes / self.tokens if self.tokens else 0.0


class _Address(msgspec.Struct):
    address: str | None = None


class _PriceOnly(msgspec.Struct):
    baseToken: _Address | None = None
    priceUsd: str | None = None


_FLOOR = msgspec.json.Decoder(list[_PriceOnly])


def _floor(answer: RecordedAnswer) -> int:
    prices: dict[str, Decimal] = {}
    for pair in _FLOOR.decode(answer.body):
        if pair.priceUsd is not None and pair.baseToken is not None and pair.baseToken.address:
            prices.setdefault(pair.baseToken.address.lower(), Decimal(pair.priceUsd))
    return sum(1 for _, address in answer.members if address.lower() in prices)


def _whole(answer: RecordedAnswer) -> int:
    from shared.crawler.pipelines.top100_prices import _main_pools
    from shared.upstream.jsonbody import decode_json

    return len(_main_pools(answer.chain, answer.members, decode_json(answer.body)))


def _pool_fields(answer: RecordedAnswer) -> int:
    from shared.crawler.pipelines.top100_prices import _main_pools
    from shared.upstream.dexscreener import POOL_PAIRS

    return len(_main_pools(answer.chain, answer.members, POOL_PAIRS.decode(answer.body)))


READERS: dict[str, Callable[[RecordedAnswer], int]] = {
    "whole body (before)": _whole,
    "pool fields (now)": _pool_fields,
    "floor: priceUsd only": _floor,
}


def record_answers(database_url: str, market_url: str, size: int) -> list[RecordedAnswer]:
    """The DexScreener answers one tick of the stored top-`size` set asks for."""
    from shared.config import BinanceSettings, Settings
    from shared.crawler import store
    from shared.crawler.domain.chains import dexscreener_chain_id, dexscreener_contracts
    from shared.crawler.pipelines.scheduler import _schedulable_members
    from shared.db.connection import connect
    from shared.upstream.batching import address_list_segment, chunks, path_segment, unique
    from shared.upstream.binance import BinanceClient
    from shared.upstream.dexscreener import TOKENS_BATCH

    settings = Settings(database_url=database_url)
    conn = connect(database_url)
    try:
        members = store.set_members(conn, "top100", size)
    finally:
        conn.close()
    symbols = {m.symbol for m in _schedulable_members([(m, None) for m in members], settings.stablecoin_symbols)}
    binance = BinanceClient.from_settings(
        BinanceSettings(base_url=f"{market_url}/binance", rate_limit_per_minute=10**6)
    )
    listed = binance.usdt_symbols()
    by_chain: dict[str, list[tuple[Any, str]]] = {}
    seen: set[str] = set()
    for token in members:  # rank order, one token per symbol, as the scheduler and the job do
        symbol = token.symbol.upper()
        if symbol not in symbols or symbol in seen or symbol in listed:
            continue
        seen.add(symbol)
        for chain, address in dexscreener_contracts(token.chain, token.contract, token.contracts):
            by_chain.setdefault(chain, []).append((token, address))
            break
    answers = []
    for chain, chain_members in by_chain.items():
        chain_id = path_segment(dexscreener_chain_id(chain) or chain, "chain id")
        by_address = {address: (token, address) for token, address in chain_members}
        for batch in chunks(unique(list(by_address)), TOKENS_BATCH):
            url = f"{market_url}/dexscreener/tokens/v1/{chain_id}/{address_list_segment(batch)}"
            with urllib.request.urlopen(url, timeout=30) as response:
                body = response.read()
            answers.append(RecordedAnswer(chain, [by_address[a] for a in batch], body))
    return answers


def measure(answers: list[RecordedAnswer], repeats: int = REPEATS) -> DecodeFigures:
    """Best-of-`repeats` CPU time of each reader over every answer (module docstring)."""
    tokens = sum(len(a.members) for a in answers)
    figures = DecodeFigures(tokens, len(answers), sum(len(a.body) for a in answers))
    if not tokens:
        return figures
    for name, reader in READERS.items():
        best = float("inf")
        for _ in range(repeats):
            began = time.process_time()
            priced = sum(reader(answer) for answer in answers)
            best = min(best, time.process_time() - began)
        figures.per_thousand[name] = best / tokens * 1000
        figures.priced[name] = priced
    return figures


def decode_cost(infra: BenchInfra, size: int, log_dir: Path) -> DecodeFigures:
    """Record a tick's DexScreener answers for the stored set from its own market, then `measure`."""
    from bench.system import LocalSystem, SystemConfig

    market = LocalSystem(infra, SystemConfig(size, lift_upstream_budgets=True), log_dir)
    try:
        market.start(0, only=frozenset({"market"}))
        answers = record_answers(infra.database_url, market.market_url, size)
    finally:
        market.stop()
    return measure(answers)
