"""Replay: rebuild silver for a time range from bronze, producing the rows the live path produced.

The archive is read job by job and attempt by attempt (the archived job message starts each
attempt; a request answered again starts one too). What each kind of job is, is read from
its archived job message; every row is derived with the live code from the same bytes:

- a top-100 metadata refresh (`/coins/markets` + `/coins/list` + the stablecoin category)
  → `top100_profiles` → `upsert_tokens` + the top-100 membership;
- a coin detail (`/coins/{id}`) → `apply_coin_detail` → `upsert_tokens`;
- a top-100 price job: the live `job_tokens` and `fetch_prices` run on the archived answers
  (Binance, then DexScreener for the tokens still unpriced, then CoinGecko), so pair
  selection against the Binance listing the job had (the archived `exchangeInfo`, up to an
  hour old), source order and the USDT/USD conversion (the archived tether answer the live
  cache held, or the override) are the live ones → the live plausibility screen →
  `insert_prices` (its ticks folded into the gold candles);
- a trending job (discovery or named tokens): the live `gather_trending` runs on the
  archived answers (`ArchivedUpstream`: the live clients fed from bronze), so discovery,
  source order, profile merging and pricing are the live ones → `commit_trending` (tokens,
  screened prices, and for discovery the trending membership);
- an audit job: the live `fetch_audits` on the archived GoPlus answers, for the named
  tokens the live job asked GoPlus about → `upsert_audits` (`token_audits`).

Observation time: the `observed_at` the job published in its log context (trending and
audit jobs do; an audit's `audited_at` is it), else the attempt's first fetch time.
Responses the live path could not have used (non-2xx, undecodable) are skipped like the
live path skipped them. Reported as skipped, with the reason: trending, audit and top-100
price jobs archived without their job message (written before job messages
were archived); attempts the live path committed nothing from (every source failed); an
all-pairs answer whose Binance listing is not in bronze. A replay that asked something bronze
has no answer for, or left archived answers unasked, is listed under `diverged`.
Writing is idempotent: prices already stored are left as they are, tokens and audits are
upserted.

Plausibility: every replayed price passes the live screen (`screen_against_stored`, the same
rule, log line and `crawler_prices_suspect` count), judged against the token's last stored
price *before* its observation, the reference the live job had (`historical`): a replay runs
after the fact, and today's latest price says nothing about what was plausible then. A suspect
is held back (counted in `prices_suspect`, listed under `suspect`), never written.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from shared.archive.archived_upstream import ArchivedUpstream, archived_request_key
from shared.archive.bronze import JOB_SOURCE, ArchivedResponse, BronzeArchive
from shared.config import Settings
from shared.crawler import store
from shared.crawler.domain import chains
from shared.crawler.domain.normalize_coingecko import (
    TETHER_ID,
    apply_coin_detail,
    top100_profiles,
)
from shared.crawler.domain.pricing import SuspectPrice
from shared.crawler.jobs import JobMessage, parse_job_message
from shared.crawler.models import PriceQuote, TokenProfile
from shared.crawler.pipelines.audit import GOPLUS_SOLANA, AuditTarget, fetch_audits, requested_keys
from shared.crawler.pipelines.plausibility import plausibility_limits, screen_against_stored
from shared.crawler.pipelines.source_ledger import SourceLedger
from shared.crawler.pipelines.top100_prices import fetch_prices, job_tokens
from shared.crawler.pipelines.trending import commit_trending, gather_trending
from shared.crawler.pipelines.usdt_rate import fetch_usdt_usd_rate
from shared.db.connection import ConnectionPool
from shared.errors import BadMessage, CrawlerError
from shared.upstream import binance, coingecko, goplus
from shared.upstream.jsonbody import decode_json

log = logging.getLogger(__name__)

SOURCES = ["binance", "coingecko", "dexscreener", "geckoterminal", "goplus"]
DEX_TOKENS_PREFIX = "/tokens/v1/"
GOPLUS_EVM_PREFIX = "/api/v1/token_security/"
# The live Binance client keeps its listing (exchangeInfo) this long (BinanceClient's default).
BINANCE_LISTING_TTL = timedelta(hours=1)
# Endpoints only trending discovery and audits call: an attempt archived without its job message
# (before job messages were archived) that touched one is not a top-100 job.
FOREIGN_ENDPOINTS = (
    ("dexscreener", "/token-boosts/"),
    ("dexscreener", "/token-profiles/"),
    ("geckoterminal", "/"),
    ("goplus", "/"),
    ("coingecko", coingecko.TRENDING_PATH),
)
# Responses the live clients cache across jobs; replay looks this far back for them.
CACHED_LOOKBACK = timedelta(seconds=coingecko.STABLECOINS_TTL_SECONDS)


@dataclass
class ReplayReport:
    """What a replay did."""

    responses: int = 0
    jobs: int = 0
    prices_inserted: int = 0
    tokens_upserted: int = 0
    audits_upserted: int = 0
    prices_suspect: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (job id, reason)
    # (job id, what differed): requests the live job got no archived answer to, answers left unasked.
    diverged: list[tuple[str, str]] = field(default_factory=list)
    suspect: list[tuple[str, str, str]] = field(default_factory=list)  # (job id, token key, reason)

    def held_back(self, job_id: str, suspects: list[SuspectPrice]) -> None:
        """Note the prices the plausibility screen held back in one job."""
        self.prices_suspect += len(suspects)
        self.suspect += [(job_id, s.quote.token_key, s.reason) for s in suspects]

    def summary(self) -> dict[str, Any]:
        return {
            "responses": self.responses,
            "jobs": self.jobs,
            "prices_inserted": self.prices_inserted,
            "tokens_upserted": self.tokens_upserted,
            "audits_upserted": self.audits_upserted,
            "prices_suspect": self.prices_suspect,
            "skipped": [{"job_id": j, "reason": r} for j, r in self.skipped],
            "diverged": [{"job_id": j, "detail": d} for j, d in self.diverged],
            "suspect": [{"job_id": j, "token_key": k, "reason": r} for j, k, r in self.suspect],
        }


class NotReplayable(Exception):
    """An attempt whose rows cannot be derived from what bronze holds (the reason is the message)."""


class _DryRun(Exception):
    """Rolls back a dry run's transaction."""


@contextmanager
def _silver(pool: ConnectionPool, dry_run: bool) -> Iterator[Any]:
    """One transaction for an attempt's rows: committed, or rolled back on a dry run."""
    try:
        with pool.transaction() as conn:
            yield conn
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass


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
    """Split one job's records into attempts: a request answered again starts a new attempt.

    The archived job message starts each attempt (it is archived again on redelivery). A
    retried request inside an attempt (5xx, then 200) is not a repeat: only a request
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


def _cache_ttl(record: ArchivedResponse, settings: Settings) -> timedelta | None:
    """How long a live client keeps serving this response to later jobs (None: it does not)."""
    if record.source == "coingecko" and record.path == coingecko.COINS_LIST_PATH:
        return timedelta(seconds=coingecko.COINS_LIST_TTL_SECONDS)
    if (
        record.source == "coingecko"
        and record.path == coingecko.MARKETS_PATH
        and record.params.get("category") == "stablecoins"
    ):
        return timedelta(seconds=coingecko.STABLECOINS_TTL_SECONDS)
    if (
        record.source == "coingecko"
        and record.path == coingecko.SIMPLE_PRICE_PATH
        and record.params.get("ids") == TETHER_ID
    ):
        return timedelta(seconds=settings.usdt_usd_max_age_seconds)
    if record.source == "binance" and record.path == binance.EXCHANGE_INFO_PATH:
        return BINANCE_LISTING_TTL
    return None


class _Cache:
    """Responses the live clients reuse across jobs, by fetch time (latest wins)."""

    def __init__(self, settings: Settings, archive: BronzeArchive, start: datetime):
        self.settings = settings
        self.coins_lists: list[tuple[datetime, Any]] = []
        self.stablecoin_ids: list[tuple[datetime, frozenset[str]]] = []
        self.cached: dict[str, list[ArchivedResponse]] = defaultdict(list)  # request key -> usable responses
        self._archive = archive
        self._start = start
        self._binance_before_start = False

    def offer(self, record: ArchivedResponse) -> None:
        body = _body(record)
        if body is None or _cache_ttl(record, self.settings) is None:
            return
        self.cached[archived_request_key(record)].append(record)
        if record.source != "coingecko":
            return
        if record.path == coingecko.COINS_LIST_PATH and isinstance(body, list):
            self.coins_lists.append((record.fetched_at, body))
        elif record.path == coingecko.MARKETS_PATH and record.params.get("category") == "stablecoins":
            ids = frozenset(c["id"] for c in body if isinstance(c, dict) and isinstance(c.get("id"), str))
            self.stablecoin_ids.append((record.fetched_at, ids))

    def earlier(self, key: str, at: datetime) -> ArchivedResponse | None:
        """The response a live client's cache would have served for this request at `at`."""
        if not self._binance_before_start and json.loads(key)[0] == "binance":
            # Binance's listing is the only Binance answer kept across jobs: read the hour before the range once.
            self._binance_before_start = True
            for record in self._archive.responses(["binance"], self._start - BINANCE_LISTING_TTL, self._start):
                if record.path == binance.EXCHANGE_INFO_PATH:
                    self.offer(record)
        found = [
            r
            for r in self.cached.get(key, ())
            if r.fetched_at <= at and at - r.fetched_at <= (_cache_ttl(r, self.settings) or timedelta(0))
        ]
        return max(found, key=lambda r: r.fetched_at) if found else None

    @staticmethod
    def _latest(items: list[tuple[datetime, Any]], at: datetime, max_age: timedelta | None = None) -> Any | None:
        found = [(t, v) for t, v in items if t <= at and (max_age is None or at - t <= max_age)]
        return max(found, key=lambda tv: tv[0])[1] if found else None

    def coins_list(self, at: datetime) -> Any | None:
        return self._latest(self.coins_lists, at)

    def stablecoins(self, at: datetime) -> frozenset[str]:
        return self._latest(self.stablecoin_ids, at) or frozenset()


def replay(
    pool: ConnectionPool,
    archive: BronzeArchive,
    settings: Settings,
    start: datetime,
    end: datetime,
    *,
    dry_run: bool = False,
) -> ReplayReport:
    """Rebuild silver from the jobs archived in [start, end); one transaction per job attempt."""
    if start >= end:
        raise ValueError("the start of the range must be before its end")
    report = ReplayReport()
    records = archive.responses([*SOURCES, JOB_SOURCE], start, end)
    cache = _Cache(settings, archive, start)
    for record in archive.responses(["coingecko"], start - CACHED_LOOKBACK, start):
        cache.offer(record)
    by_job: dict[str, list[ArchivedResponse]] = defaultdict(list)
    for record in records:
        if record.source != JOB_SOURCE:
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
            try:
                _replay_attempt(pool, job_id, attempt, cache, settings, report, dry_run)
            except NotReplayable as exc:
                report.skipped.append((job_id, str(exc)))
    if not dry_run:
        with pool.connection() as conn:  # the replayed ticks reach the gold candles before we return
            store.fold_candle_ticks(conn)
    return report


def _replay_attempt(
    pool: ConnectionPool,
    job_id: str,
    attempt: list[ArchivedResponse],
    cache: _Cache,
    settings: Settings,
    report: ReplayReport,
    dry_run: bool,
) -> None:
    job = _job_message(attempt, settings)
    responses = [r for r in attempt if r.source != JOB_SOURCE]
    if job is not None and job.job_type == "audit":
        return _replay_audit(pool, job_id, job, attempt, cache, settings, report, dry_run)
    if job is not None and job.token_type == "trending":
        return _replay_trending(pool, job_id, job, attempt, cache, settings, report, dry_run)
    if job is None and any(_is_foreign(r) for r in responses):
        raise NotReplayable(
            "trending or audit job archived without its job message (archived before job "
            "messages were): which tokens it asked for is unknown"
        )
    if not responses:
        return
    if job is None and any(_is_price_answer(r) for r in responses):
        raise NotReplayable(
            "top-100 price job archived without its job message (archived before job messages "
            "were): which tokens it priced is unknown"
        )
    observed_at = _observed_at(attempt)
    with _silver(pool, dry_run) as conn:
        profiles, membership = _metadata(conn, responses, cache, settings)
        profiles += _details(conn, responses)
        quotes = (
            _top100_prices(conn, job_id, job, responses, cache, settings, observed_at, report)
            if job is not None and job.job_type == "price"
            else []
        )
        report.jobs += 1
        if profiles:
            keys = store.upsert_tokens(conn, profiles)
            report.tokens_upserted += len(profiles)
            if membership is not None:
                store.set_membership(conn, "top100", [keys[p.key] for p in membership], complete=True)
        # The live screen, against the prices of the observation's own time (module docstring).
        quotes, suspects = screen_against_stored(conn, quotes, plausibility_limits(settings), "top100", historical=True)
        report.held_back(job_id, suspects)
        report.prices_inserted += store.insert_prices(conn, quotes, job_id)


def _is_price_answer(record: ArchivedResponse) -> bool:
    return (
        (record.source == "binance" and record.path == binance.TICKER_PRICE_PATH)
        or (record.source == "dexscreener" and record.path.startswith(DEX_TOKENS_PREFIX))
        or (
            record.source == "coingecko"
            and record.path == coingecko.SIMPLE_PRICE_PATH
            and record.params.get("ids") != TETHER_ID
        )
    )


def _top100_prices(
    conn: Any,
    job_id: str,
    job: JobMessage,
    responses: list[ArchivedResponse],
    cache: _Cache,
    settings: Settings,
    observed_at: datetime,
    report: ReplayReport,
) -> list[PriceQuote]:
    """A top-100 price job: the live `job_tokens` and `fetch_prices` on the archived answers."""
    tokens = job_tokens(conn, job, settings)
    if not tokens:
        return []
    at = responses[-1].fetched_at if responses else observed_at
    upstream = ArchivedUpstream(settings, responses, lambda key: cache.earlier(key, at))
    ledger = SourceLedger()
    try:
        quotes, _ = fetch_prices(
            upstream.clients, list(tokens.values()), ledger, observed_at, lambda: _usdt_usd_rate(settings, upstream)
        )
    finally:
        upstream.close()
    if not quotes and (error := ledger.retryable_error()):  # the live attempt raised: it committed nothing
        raise NotReplayable(f"the live attempt committed nothing: {error.reason}")
    _note_divergence(report, job_id, upstream)
    return quotes


def _job_message(attempt: list[ArchivedResponse], settings: Settings) -> JobMessage | None:
    """The attempt's archived job message (None for archives written before job messages were)."""
    record = next((r for r in attempt if r.source == JOB_SOURCE), None)
    if record is None:
        return None
    try:
        return parse_job_message(
            record.body, max_bytes=settings.job_max_body_bytes, max_symbols=settings.job_max_symbols
        )
    except BadMessage as exc:  # the live path rejected it too, before any fetch
        raise NotReplayable(f"archived job message is not a valid job: {exc.reason}") from exc


def _observed_at(attempt: list[ArchivedResponse]) -> datetime:
    """The observation time the job published in its log context, else its first fetch time."""
    published = next((r.observed_at for r in attempt if r.observed_at), None)
    if published is not None:
        return published
    fetched = [r.fetched_at for r in attempt if r.source != JOB_SOURCE] or [attempt[0].fetched_at]
    return fetched[0]


def _replay_trending(
    pool: ConnectionPool,
    job_id: str,
    job: JobMessage,
    attempt: list[ArchivedResponse],
    cache: _Cache,
    settings: Settings,
    report: ReplayReport,
    dry_run: bool,
) -> None:
    """A trending job: the live `gather_trending` on the archived answers, then `commit_trending`."""
    observed_at = _observed_at(attempt)
    at = attempt[-1].fetched_at
    upstream = ArchivedUpstream(
        settings, [r for r in attempt if r.source != JOB_SOURCE], lambda key: cache.earlier(key, at)
    )
    try:
        gathered = gather_trending(
            job, upstream.clients, settings, lambda: _usdt_usd_rate(settings, upstream), clock=lambda: observed_at
        )
    except CrawlerError as exc:  # the live attempt raised too: it committed nothing
        raise NotReplayable(f"the live attempt committed nothing: {exc.reason}") from exc
    finally:
        upstream.close()
    _note_divergence(report, job_id, upstream)
    report.jobs += 1
    with _silver(pool, dry_run) as conn:
        commit = commit_trending(conn, gathered, job_id, plausibility_limits(settings), historical=True)
    report.held_back(job_id, commit.suspects)
    report.tokens_upserted += len(commit.stored)
    report.prices_inserted += commit.inserted


def _usdt_usd_rate(settings: Settings, upstream: ArchivedUpstream) -> Decimal:
    # As UsdtUsdRate.current, whose cache is bronze's earlier tether answers here.
    if settings.usdt_usd_rate_override is not None:
        return settings.usdt_usd_rate_override
    return fetch_usdt_usd_rate(upstream.clients)


def _replay_audit(
    pool: ConnectionPool,
    job_id: str,
    job: JobMessage,
    attempt: list[ArchivedResponse],
    cache: _Cache,
    settings: Settings,
    report: ReplayReport,
    dry_run: bool,
) -> None:
    """An audit job: the live `fetch_audits` on the archived GoPlus answers for the tokens it asked about.

    Which of the named tokens the live job sent to GoPlus depended on the database then
    (priced, audit still fresh); the archived requests say which it did.
    """
    keys, _ = requested_keys(job)
    goplus_answers = [r for r in attempt if r.source == "goplus"]
    asked = {(chain_id, address) for r in goplus_answers for chain_id, address in _goplus_asked(r)}
    with pool.connection() as conn:
        known = store.tokens_by_key(conn, keys)
    targets = [
        AuditTarget(key, token.chain, token.contract)
        for key in keys
        if (token := known.get(key)) is not None
        and token.chain
        and token.contract
        and (chains.goplus_chain_id(token.chain), token.contract) in asked
    ]
    upstream = ArchivedUpstream(settings, goplus_answers)
    try:
        reports = fetch_audits(upstream.clients.goplus, targets, SourceLedger(), _observed_at(attempt))
    finally:
        upstream.close()
    _note_divergence(report, job_id, upstream)
    report.jobs += 1
    with _silver(pool, dry_run) as conn:
        report.audits_upserted += store.upsert_audits(conn, reports, job_id)


def _goplus_asked(record: ArchivedResponse) -> list[tuple[str, str]]:
    """(GoPlus chain id, address) of each contract one archived GoPlus request asked about."""
    if record.path == goplus.SOLANA_PATH:
        chain_id = GOPLUS_SOLANA
    elif record.path.startswith(GOPLUS_EVM_PREFIX):
        chain_id = record.path[len(GOPLUS_EVM_PREFIX) :]
    else:
        return []
    addresses = str(record.params.get("contract_addresses", ""))
    return [(chain_id, a) for a in addresses.split(",") if a]


def _note_divergence(report: ReplayReport, job_id: str, upstream: ArchivedUpstream) -> None:
    if upstream.unanswered:
        report.diverged.append(
            (job_id, f"{len(upstream.unanswered)} request(s) without an archived answer, e.g. {upstream.unanswered[0]}")
        )
    if unused := upstream.unused():
        report.diverged.append(
            (job_id, f"{len(unused)} archived answer(s) not asked for, e.g. {unused[0].source} {unused[0].path}")
        )


def _metadata(
    conn: Any, attempt: list[ArchivedResponse], cache: _Cache, settings: Settings
) -> tuple[list[TokenProfile], list[TokenProfile] | None]:
    """A top-100 refresh: the profiles and the ranked membership, as refresh_top100_metadata derives them."""
    markets = [
        r
        for r in attempt
        if r.source == "coingecko"
        and r.path == coingecko.MARKETS_PATH
        and "category" not in r.params
        and _body(r) is not None
    ]
    if not markets:
        return [], None
    record = markets[-1]
    coins_list = cache.coins_list(attempt[-1].fetched_at)
    if coins_list is None:
        log.warning("replay: no /coins/list archived before %s; top-100 refresh skipped", record.fetched_at)
        return [], None
    profiles, _ = top100_profiles(
        _body(record),
        coins_list,
        settings.stablecoin_symbols,
        cache.stablecoins(attempt[-1].fetched_at),
        limit=settings.top100_size,
    )
    return list(profiles), list(profiles)


def _details(conn: Any, attempt: list[ArchivedResponse]) -> list[TokenProfile]:
    """Coin details applied to the stored tokens, as enrich_details does."""
    out = []
    for record in attempt:
        if record.source != "coingecko" or not record.path.startswith("/api/v3/coins/"):
            continue
        coin_id = record.path[len("/api/v3/coins/") :]
        body = _body(record)
        if "/" in coin_id or coin_id in ("list", "markets") or not isinstance(body, dict):
            continue
        for key, symbol, chain, contract in conn.run(
            "SELECT token_key, symbol, chain, contract FROM tokens WHERE coingecko_id = :id", id=coin_id
        ):
            base = TokenProfile(
                key=key,
                symbol=symbol,
                name=None,
                chain=chain,
                address=contract,
                coingecko_id=coin_id,
                source="coingecko",
            )
            out.append(apply_coin_detail(base, body))
    return out
