"""Replay: rebuild silver (`tokens`, `token_prices`) for a time range from bronze.

The archived responses are grouped by job and attempt, decoded with the live decoder
(`shared.upstream.jsonbody`), turned into records by the live normalizers
(`shared.domain`) and written with the live store functions (`shared.db.store`), so a
replay produces the rows the live path produced from the same responses:

- a top-100 metadata refresh (`/coins/markets` + `/coins/list` + the stablecoin category)
  → `top100_profiles` → `upsert_tokens` + the top-100 membership;
- a coin detail (`/coins/{id}`) → `apply_coin_detail` → `upsert_tokens`;
- a top-100 price job: Binance `ticker/price`, then DexScreener `tokens/v1` for the tokens
  still unpriced, then CoinGecko `simple/price` → `insert_prices` (which also maintains
  the gold candles), USD converted with the USDT/USD rate the live path had: the latest
  archived `simple/price?ids=tether` within USDT_USD_MAX_AGE_SECONDS, or the override.

Observation time: the `observed_at` the job published in its log context when it did,
else the attempt's first fetch time. Responses the live path could not have used (non-2xx,
undecodable) are skipped like the live path skipped them. Jobs of other kinds (trending
discovery, audits) are reported as skipped: their pipelines have no replayer yet.
Writing is idempotent: prices already stored are left as they are, tokens are upserted.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Iterable

from shared.archive.bronze import ArchivedResponse, BronzeArchive
from shared.config import Settings
from shared.db import store
from shared.db.connection import ConnectionPool
from shared.domain import chains
from shared.domain.normalize_binance import parse_binance_ticker_prices
from shared.domain.normalize_coingecko import (
    TETHER_ID,
    apply_coin_detail,
    top100_profiles,
    usd_prices_from_simple_price,
    usdt_usd_rate,
)
from shared.domain.normalize_dexscreener import price_usd_from_pairs
from shared.domain.pricing import quote_from_pool, quote_from_usd
from shared.domain.sources import Source
from shared.models import PriceQuote, TokenProfile
from shared.upstream import binance, coingecko
from shared.upstream.jsonbody import decode_json

log = logging.getLogger(__name__)

SOURCES = ["binance", "coingecko", "dexscreener", "geckoterminal", "goplus"]
DEX_TOKENS_PREFIX = "/tokens/v1/"
# Endpoints only trending discovery and audits call: a job that touched one is not a top-100 job.
FOREIGN_ENDPOINTS = (("dexscreener", "/token-boosts/"), ("dexscreener", "/token-profiles/"),
                     ("geckoterminal", "/"), ("goplus", "/"), ("coingecko", coingecko.TRENDING_PATH))
# Responses the live clients cache across jobs; replay looks this far back for them.
CACHED_LOOKBACK = timedelta(seconds=coingecko.STABLECOINS_TTL_SECONDS)


@dataclass
class ReplayReport:
    """What a replay did."""

    responses: int = 0
    jobs: int = 0
    prices_inserted: int = 0
    tokens_upserted: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (job id, reason)

    def summary(self) -> dict[str, Any]:
        return {"responses": self.responses, "jobs": self.jobs, "prices_inserted": self.prices_inserted,
                "tokens_upserted": self.tokens_upserted, "skipped": [{"job_id": j, "reason": r} for j, r in self.skipped]}


def _is_foreign(record: ArchivedResponse) -> bool:
    return any(record.source == source and record.path.startswith(prefix) for source, prefix in FOREIGN_ENDPOINTS)


def _body(record: ArchivedResponse) -> Any | None:
    """The body as the live path decoded it, or None when the live path could not have used it."""
    if not 200 <= record.status < 300:
        return None
    try:
        return decode_json(record.body)
    except ValueError:
        return None


def attempts_of(records: list[ArchivedResponse]) -> list[list[ArchivedResponse]]:
    """Split one job's responses into attempts: a request answered again starts a new attempt.

    A retried request inside an attempt (5xx, then 200) is not a repeat: only a request
    that already had a usable answer is.
    """
    attempts: list[list[ArchivedResponse]] = [[]]
    answered: set[str] = set()
    for record in records:
        request = json.dumps([record.source, record.path, record.params], sort_keys=True)
        if request in answered:
            attempts.append([])
            answered = set()
        attempts[-1].append(record)
        if _body(record) is not None:
            answered.add(request)
    return [a for a in attempts if a]


class _Cache:
    """Responses the live clients reuse across jobs, by fetch time (latest wins)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.rates: list[tuple[datetime, Decimal]] = []
        self.coins_lists: list[tuple[datetime, Any]] = []
        self.stablecoin_ids: list[tuple[datetime, frozenset[str]]] = []

    def offer(self, record: ArchivedResponse) -> None:
        if record.source != "coingecko":
            return
        body = _body(record)
        if body is None:
            return
        if record.path == coingecko.SIMPLE_PRICE_PATH and record.params.get("ids") == TETHER_ID:
            rate = usdt_usd_rate(body)
            if rate is not None:
                self.rates.append((record.fetched_at, rate))
        elif record.path == coingecko.COINS_LIST_PATH and isinstance(body, list):
            self.coins_lists.append((record.fetched_at, body))
        elif record.path == coingecko.MARKETS_PATH and record.params.get("category") == "stablecoins":
            ids = frozenset(c["id"] for c in body if isinstance(c, dict) and isinstance(c.get("id"), str))
            self.stablecoin_ids.append((record.fetched_at, ids))

    @staticmethod
    def _latest(items: list[tuple[datetime, Any]], at: datetime, max_age: timedelta | None = None) -> Any | None:
        found = [(t, v) for t, v in items if t <= at and (max_age is None or at - t <= max_age)]
        return max(found, key=lambda tv: tv[0])[1] if found else None

    def rate(self, at: datetime) -> Decimal | None:
        if self.settings.usdt_usd_rate_override is not None:
            return self.settings.usdt_usd_rate_override
        return self._latest(self.rates, at, timedelta(seconds=self.settings.usdt_usd_max_age_seconds))

    def coins_list(self, at: datetime) -> Any | None:
        return self._latest(self.coins_lists, at)

    def stablecoins(self, at: datetime) -> frozenset[str]:
        return self._latest(self.stablecoin_ids, at) or frozenset()


def replay(pool: ConnectionPool, archive: BronzeArchive, settings: Settings, start: datetime, end: datetime,
           *, dry_run: bool = False) -> ReplayReport:
    """Rebuild silver from the responses fetched in [start, end); one transaction per job attempt."""
    if start >= end:
        raise ValueError("the start of the range must be before its end")
    report = ReplayReport()
    records = archive.responses(SOURCES, start, end)
    cache = _Cache(settings)
    for record in archive.responses(["coingecko"], start - CACHED_LOOKBACK, start):
        cache.offer(record)
    by_job: dict[str, list[ArchivedResponse]] = defaultdict(list)
    for record in records:
        report.responses += 1
        if record.job_id:
            by_job[record.job_id].append(record)
    # Jobs in the order they started; cached responses become visible as their time comes.
    pending = sorted(records, key=lambda r: r.fetched_at)
    for job_id, job_records in sorted(by_job.items(), key=lambda kv: kv[1][0].fetched_at):
        for attempt in attempts_of(job_records):
            until = attempt[-1].fetched_at
            while pending and pending[0].fetched_at <= until:
                cache.offer(pending.pop(0))
            _replay_attempt(pool, job_id, attempt, cache, settings, report, dry_run)
    return report


def _replay_attempt(pool: ConnectionPool, job_id: str, attempt: list[ArchivedResponse], cache: _Cache,
                    settings: Settings, report: ReplayReport, dry_run: bool) -> None:
    if any(_is_foreign(r) for r in attempt):
        report.skipped.append((job_id, "trending or audit job: no replayer for its pipeline yet"))
        return
    observed_at = next((r.observed_at for r in attempt if r.observed_at), None) or attempt[0].fetched_at
    report.jobs += 1
    with pool.transaction() as conn:
        profiles, membership = _metadata(conn, attempt, cache, settings)
        profiles += _details(conn, attempt)
        quotes = _prices(conn, attempt, cache, observed_at)
        if dry_run:
            report.tokens_upserted += len(profiles)
            report.prices_inserted += len(quotes)
            conn.run("ROLLBACK")
            conn.run("BEGIN")
            return
        if profiles:
            keys = store.upsert_tokens(conn, profiles)
            report.tokens_upserted += len(profiles)
            if membership is not None:
                store.set_membership(conn, "top100", [keys[p.key] for p in membership], complete=True)
        report.prices_inserted += store.insert_prices(conn, quotes, job_id)


def _metadata(conn: Any, attempt: list[ArchivedResponse], cache: _Cache,
              settings: Settings) -> tuple[list[TokenProfile], list[TokenProfile] | None]:
    """A top-100 refresh: the profiles and the ranked membership, as refresh_top100_metadata derives them."""
    markets = [r for r in attempt if r.source == "coingecko" and r.path == coingecko.MARKETS_PATH
               and "category" not in r.params and _body(r) is not None]
    if not markets:
        return [], None
    record = markets[-1]
    coins_list = cache.coins_list(attempt[-1].fetched_at)
    if coins_list is None:
        log.warning("replay: no /coins/list archived before %s; top-100 refresh skipped", record.fetched_at)
        return [], None
    profiles, _ = top100_profiles(_body(record), coins_list, settings.stablecoin_symbols,
                                  cache.stablecoins(attempt[-1].fetched_at), limit=settings.top100_size)
    return list(profiles), list(profiles)


def _details(conn: Any, attempt: list[ArchivedResponse]) -> list[TokenProfile]:
    """Coin details applied to the stored tokens, as enrich_details does."""
    out = []
    for record in attempt:
        if record.source != "coingecko" or not record.path.startswith("/api/v3/coins/"):
            continue
        coin_id = record.path[len("/api/v3/coins/"):]
        body = _body(record)
        if "/" in coin_id or coin_id in ("list", "markets") or not isinstance(body, dict):
            continue
        for key, symbol, chain, contract in conn.run(
                "SELECT token_key, symbol, chain, contract FROM tokens WHERE coingecko_id = :id", id=coin_id):
            base = TokenProfile(key=key, symbol=symbol, name=None, chain=chain, address=contract,
                                coingecko_id=coin_id, source="coingecko")
            out.append(apply_coin_detail(base, body))
    return out


def _prices(conn: Any, attempt: list[ArchivedResponse], cache: _Cache, observed_at: datetime) -> list[PriceQuote]:
    """Top-100 prices along the live source order: Binance, then DexScreener, then CoinGecko."""
    quotes: dict[str, PriceQuote] = {}
    at = attempt[-1].fetched_at
    for record in attempt:
        body = _body(record)
        if body is None:
            continue
        if record.source == "binance" and record.path == binance.TICKER_PRICE_PATH:
            pairs = json.loads(record.params.get("symbols", "[]"))
            symbols = {pair: pair[: -len(binance.QUOTE_ASSET)] for pair in pairs}
            tokens = store.tokens_by_symbol(conn, list(symbols.values()), "top100")
            pair_to_key = {pair: tokens[base].key for pair, base in symbols.items() if base in tokens}
            found, _ = parse_binance_ticker_prices(body, pair_to_key, symbols, observed_at)
            for quote in found:
                quotes.setdefault(quote.token_key, quote)
    for record in attempt:
        body = _body(record)
        if body is None or record.source != "dexscreener" or not record.path.startswith(DEX_TOKENS_PREFIX):
            continue
        chain_id, _, addresses = record.path[len(DEX_TOKENS_PREFIX):].partition("/")
        chain = chains.chain_from_dexscreener(chain_id)
        if chain is None:
            continue
        for address in addresses.split(","):
            token = _token_by_contract(conn, chain, address)
            if token is None or token.key in quotes:
                continue
            found = price_usd_from_pairs(body, chain, address)
            if found is None:
                continue
            result = quote_from_pool(token.key, token.symbol, found[1], cache.rate(at), Source.DEXSCREENER,
                                     observed_at)
            if isinstance(result, PriceQuote):
                quotes[token.key] = result
    for record in attempt:
        body = _body(record)
        if body is None or record.source != "coingecko" or record.path != coingecko.SIMPLE_PRICE_PATH:
            continue
        ids = [i for i in str(record.params.get("ids", "")).split(",") if i and i != TETHER_ID]
        if not ids:
            continue
        usd, _ = usd_prices_from_simple_price(body)
        for key, symbol, cg_id in _tokens_by_coingecko_ids(conn, ids):
            if key in quotes:
                continue
            result = quote_from_usd(key, symbol, usd.get(cg_id), cache.rate(at), Source.COINGECKO, observed_at)
            if isinstance(result, PriceQuote):
                quotes[key] = result
    return [replace(q, observed_at=observed_at) for q in quotes.values()]


def _token_by_contract(conn: Any, chain: str, address: str) -> store.KnownToken | None:
    rows = conn.run("SELECT token_key FROM token_contracts WHERE chain = :c AND address = :a", c=chain, a=address)
    if not rows:
        return None
    return store.tokens_by_key(conn, [rows[0][0]]).get(rows[0][0])


def _tokens_by_coingecko_ids(conn: Any, ids: Iterable[str]) -> list[tuple[str, str, str]]:
    # The top-100 members carrying these ids, as the live job priced them.
    return [tuple(r) for r in conn.run(
        "SELECT t.token_key, t.symbol, t.coingecko_id FROM tokens t JOIN token_set_members m"
        " ON m.token_key = t.token_key AND m.token_set = 'top100' AND m.left_at IS NULL"
        " WHERE t.coingecko_id = ANY(CAST(:ids AS text[])) AND NOT t.is_stablecoin", ids=list(ids))]
