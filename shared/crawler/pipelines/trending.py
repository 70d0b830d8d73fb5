"""Trending tokens, every minute: profiles and USDT prices fetched together, then the audit request.

One job:

1. **Which tokens.** A job naming contracts or token keys crawls those; a job naming none
   (the scheduler's tick) discovers the trending set (`trending_discovery`: DexScreener,
   then GeckoTerminal, then CoinGecko). Trending tokens are DEX tokens, named by contract:
   a job naming them only by symbol is rejected (a symbol is not unique on DEXes).
2. **Profile and price**, source by source, each asked only for the tokens still missing:
   DexScreener ``/tokens/v1`` (30 addresses per request and chain) gives the profile — name,
   symbol, logo, socials, websites, every market and the main pool — and the price of the
   most liquid priced pool; then GeckoTerminal ``tokens/multi`` (profile and price); then
   CoinGecko ``/simple/token_price`` (price only, for tokens that have a profile). A USD
   price becomes USDT with the current USDT/USD rate; a pool quoted in the chain's USDT
   gives the USDT price directly. Every number stays a Decimal, digit for digit.
3. **Commit**, one transaction: profiles upserted (identity resolved by contract, so a
   top-100 token that trends stays one row), prices inserted after the plausibility screen
   every price batch passes (docs/pricing.md; a suspect price is a token failure, not
   stored, not announced, not audited), and for a discovery job the
   trending membership replaced: tokens that left get ``left_at``, never deleted. A
   discovery that priced no token at all keeps the current set (the job log says why).
4. **After commit**: the ``price.updated`` event, then ONE completion event on the audit
   topic naming the committed tokens, in the standard job format, so the audit function
   runs only for tokens whose price and profile are in the database. A publish failure
   raises (503): the redelivered job redoes its idempotent writes and publishes again.

Steps 1 and 2 are `gather_trending`, which writes nothing (the bronze replay runs it on the
archived responses); step 3 is `commit_trending`.

A token is committed only with both a profile and a price: the trending set is what can be
shown with a fresh price. Anything else is a `TokenFailure` naming each source's reason.
When nothing could be crawled because sources failed, the job raises the most telling
error (429 before 503) and KafkaSource retries it per its delivery policy.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from shared.config import Settings
from shared.crawler import store
from shared.crawler.contracts import JOB_MESSAGE_SCHEMA
from shared.crawler.domain import chains
from shared.crawler.domain.normalize_coingecko import usd_prices_from_token_price
from shared.crawler.domain.normalize_dexscreener import profile_from_dexscreener
from shared.crawler.domain.normalize_geckoterminal import profiles_from_tokens_multi
from shared.crawler.domain.pricing import (
    PlausibilityLimits,
    SuspectPrice,
    price_usdt_direct,
    quote_from_pool,
    quote_from_usd,
)
from shared.crawler.domain.sources import Source
from shared.crawler.domain.tokens import NATIVE_PREFIX, configured_stablecoin_rule, token_key
from shared.crawler.job_runner import JobContext, JobOutcome
from shared.crawler.jobs import JobMessage
from shared.crawler.models import Contract, PriceQuote, TokenFailure, TokenProfile
from shared.crawler.pipelines.plausibility import plausibility_limits, screen_against_stored
from shared.crawler.pipelines.price_events import publish_price_batch, stage_price_batch
from shared.crawler.pipelines.source_ledger import LazyUsdtRate, SourceLedger, pricing_pool
from shared.crawler.pipelines.trending_discovery import TrendingDiscovery, discover_trending, ref_key
from shared.crawler.pipelines.usdt_rate import usdt_usd_rate_of
from shared.errors import BadMessage, CrawlerError
from shared.events import OutboundEvent
from shared.observability.logging import log_context
from shared.upstream import UpstreamClients

log = logging.getLogger(__name__)

TOKEN_SET = "trending"
TRENDING_COMMITTED_TYPE = "price-crawler.trending.committed"
# JobMessage.job_id is at most 128 characters; the audit job id derives from ours.
_JOB_ID_MAX = 128


@dataclass
class TrendingCrawl:
    """What the sources gave so far in one job: profiles and quotes by token key."""

    observed_at: datetime
    profiles: dict[str, TokenProfile] = field(default_factory=dict)
    quotes: dict[str, PriceQuote] = field(default_factory=dict)

    def unpriced(self, refs: Iterable[Contract]) -> list[Contract]:
        return [r for r in refs if ref_key(r) not in self.quotes]


@dataclass
class TrendingGathered:
    """What one trending job learned from its sources, before writing anything."""

    refs: list[Contract]  # the tokens crawled, best first
    discovery: TrendingDiscovery | None  # None: the job named its tokens
    crawl: TrendingCrawl | None  # None: discovery named no token, nothing was crawled
    ready: list[str]  # keys of the tokens with a profile and a price, in `refs` order
    failures: list[TokenFailure]
    requested: int

    @property
    def replaces_membership(self) -> bool:
        """A discovery job's tokens are the whole trending set; named tokens leave it alone."""
        return self.discovery is not None


def crawl_trending(ctx: JobContext) -> JobOutcome:
    """Discover (or take the job's) trending tokens, commit profiles and prices, request their audits."""
    settings, upstream = ctx.resources.settings, ctx.resources.upstream
    gathered = gather_trending(
        ctx.job, upstream, settings, usdt_usd_rate_of(ctx.resources).current, clock=lambda: ctx.observed_at
    )  # a redelivery repeats the first observation
    if gathered.crawl is None:
        # Every source answered, none named a token: keep the current set rather than empty it.
        return JobOutcome(
            0, 0, message="no source named any trending token; trending set unchanged", details={"discovery": None}
        )

    with ctx.resources.db.transaction() as conn:
        commit = commit_trending(conn, gathered, ctx.job_id, plausibility_limits(settings))
        event = stage_price_batch(conn, ctx, TOKEN_SET, commit.stored)  # announced even if Kafka refuses it now
    committed, inserted = commit.stored, commit.inserted
    failures = gathered.failures + [TokenFailure(s.quote.token_key, s.reason) for s in commit.suspects]
    publish_price_batch(ctx, event)
    request_audits(ctx, [q.token_key for q in committed])

    message = None
    if gathered.replaces_membership and not committed and not commit.suspects:
        message = (
            f"no trending token could be priced ({len(failures)} unusable, reasons per token); trending set unchanged"
        )
    sources: dict[str, int] = defaultdict(int)
    for quote in committed:
        sources[quote.source] += 1
    discovery = gathered.discovery
    return JobOutcome(
        requested=gathered.requested,
        succeeded=len(committed),
        failures=failures,
        message=message,
        rows_upserted={"tokens": len(committed), "token_prices": inserted},
        details={
            "discovery": discovery.source if discovery else None,
            "sources": dict(sources),
            "inserted": inserted,
            "suspect": len(commit.suspects),
            "audit_requested": len(committed),
        },
    )


def gather_trending(
    job: JobMessage,
    upstream: UpstreamClients,
    settings: Settings,
    usdt_usd_rate: Callable[[], Decimal],
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
) -> TrendingGathered:
    """Which tokens, then their profiles and prices source by source; writes nothing.

    The live job and the bronze replay both run this: `usdt_usd_rate` gives the rate when
    a USD price needs converting (raising `CrawlerError` when there is none), `clock` the
    observation time stamped on the prices, which is published in the log context as
    `observed_at` while the prices are fetched (bronze keeps it with each response).
    Raises `BadMessage` for a job naming tokens by symbol only, and the most telling source
    error when nothing could be crawled because sources failed.
    """
    ledger = SourceLedger()
    failures: list[TokenFailure] = []
    discovery: TrendingDiscovery | None = None

    if job.contracts or job.token_keys:
        refs, named_failures = refs_from_job(job)
        failures += named_failures
        failures += [
            TokenFailure(s, "trending tokens are named by contract or token key, not by symbol") for s in job.symbols
        ]
    elif job.symbols:
        raise BadMessage(
            "trending jobs name tokens by contract or token key (a symbol is not unique on DEXes), "
            "or name none to crawl the trending set"
        )
    else:
        discovery = discover_trending(upstream, settings.trending_set_size, ledger)
        if discovery.source is None:
            if error := ledger.retryable_error():
                raise error
            return TrendingGathered([], discovery, None, [], [], 0)
        refs = discovery.refs
        failures += discovery.failures

    named_elsewhere = len(failures)  # tokens rejected before crawling still count as requested
    crawl = TrendingCrawl(observed_at=clock())
    rate = LazyUsdtRate(usdt_usd_rate, ledger)
    items = discovery.dexscreener_items if discovery else {}
    seeds = discovery.coingecko_profiles if discovery else {}
    with log_context(observed_at=crawl.observed_at.isoformat()):
        _crawl_dexscreener(upstream, refs, crawl, ledger, items, rate)
        _crawl_geckoterminal(upstream, crawl.unpriced(refs), crawl, ledger, rate)
        for key, seed in seeds.items():  # CoinGecko discovery: its entry is the profile of last resort
            crawl.profiles[key] = _with_coingecko_identity(crawl.profiles[key], seed) if key in crawl.profiles else seed
        _crawl_coingecko(
            upstream, [r for r in crawl.unpriced(refs) if ref_key(r) in crawl.profiles], crawl, ledger, rate
        )

    ready: list[str] = []
    for key in (ref_key(r) for r in refs):
        profile = crawl.profiles.get(key)
        rule = (
            configured_stablecoin_rule(settings, profile.symbol, profile.coingecko_id, profile.tags)
            if profile
            else None
        )
        if rule is not None:
            failures.append(TokenFailure(key, f"{rule}: never priced"))
        elif profile is not None and key in crawl.quotes:
            ready.append(key)
        else:
            failures.append(ledger.failure(key))
    if refs and not ready and (error := ledger.retryable_error()):
        raise error  # nothing crawled because sources failed: the delivery policy retries
    return TrendingGathered(refs, discovery, crawl, ready, failures, len(refs) + named_elsewhere)


# --- which tokens ----------------------------------------------------------------------------


def refs_from_job(job: JobMessage) -> tuple[list[Contract], list[TokenFailure]]:
    """Canonical contract refs of the tokens a job names (contracts, then token keys), each once."""
    refs: dict[str, Contract] = {}
    failures: list[TokenFailure] = []
    named = [(c.chain, c.address, f"{c.chain}:{c.address}") for c in job.contracts]
    for key in job.token_keys:
        chain, address = key.split(":", 1)
        named.append((chain, address, key))
    for chain, address, ref in named:
        if chain == NATIVE_PREFIX:
            failures.append(TokenFailure(ref, "native coin: trending tokens are DEX tokens with a contract"))
            continue
        known = chains.get_chain(chain)
        if known is None:
            failures.append(TokenFailure(ref, f"unsupported chain {chain!r}: not in the chain mapping"))
            continue
        try:
            key = token_key(known.slug, address)
        except ValueError as exc:
            failures.append(TokenFailure(ref, str(exc)))
            continue
        refs.setdefault(key, Contract(known.slug, key.split(":", 1)[1]))
    return list(refs.values()), failures


def _by_chain(refs: Iterable[Contract]) -> dict[str, list[Contract]]:
    grouped: dict[str, list[Contract]] = defaultdict(list)
    for ref in refs:
        grouped[ref.chain].append(ref)
    return grouped


def _reason(source: Source, reason: str) -> str:
    return reason if reason.startswith(source.value) else f"{source.value}: {reason}"


def _fetch_per_chain(
    refs: Sequence[Contract],
    source: Source,
    ledger: SourceLedger,
    upstream_chain: Callable[[str], str | None],
    fetch: Callable[[str, list[str]], Any],
) -> Iterator[tuple[str, list[Contract], list[str], Any]]:
    """Ask `source` once per chain (the client batches by its address limit); yield
    (chain, refs, keys, payload) for each chain it answered. Chains the source does not cover,
    a source already down in this job, and failed requests are recorded in `ledger`."""
    for chain, members in _by_chain(refs).items():
        keys = [ref_key(r) for r in members]
        chain_id = upstream_chain(chain)
        if chain_id is None:
            for key in keys:
                ledger.token_failed(key, f"{source.value} does not cover chain {chain}")
            continue
        if ledger.is_down(source.value):
            ledger.skipped(source.value, keys)
            continue
        try:
            payload = fetch(chain_id, [r.address for r in members])
        except CrawlerError as exc:
            ledger.source_failed(source.value, exc, keys)
            continue
        yield chain, members, keys, payload


# --- sources ---------------------------------------------------------------------------------


def _crawl_dexscreener(
    upstream: UpstreamClients,
    refs: Sequence[Contract],
    crawl: TrendingCrawl,
    ledger: SourceLedger,
    items: dict[str, dict[str, Any]],
    rate: LazyUsdtRate,
) -> None:
    """Profiles and prices from DexScreener /tokens/v1, one request per 30 tokens of a chain."""
    source = Source.DEXSCREENER
    for chain, members, keys, pairs in _fetch_per_chain(
        refs, source, ledger, chains.dexscreener_chain_id, upstream.dexscreener.token_pairs
    ):
        for ref, key in zip(members, keys):
            profile = profile_from_dexscreener(chain, ref.address, pairs, items.get(key))
            if isinstance(profile, TokenFailure):
                ledger.token_failed(key, _reason(source, profile.reason))
                continue
            crawl.profiles.setdefault(key, profile)
            pool = pricing_pool(profile.markets)
            if pool is None:
                ledger.token_failed(key, "dexscreener: no pair with a price and liquidity")
                continue
            usdt_usd = None if price_usdt_direct(pool) is not None else rate.get()
            quote = quote_from_pool(key, profile.symbol, pool, usdt_usd, source.value, crawl.observed_at)
            if isinstance(quote, TokenFailure):
                ledger.token_failed(key, quote.reason)
            else:
                crawl.quotes[key] = quote


def _crawl_geckoterminal(
    upstream: UpstreamClients, refs: Sequence[Contract], crawl: TrendingCrawl, ledger: SourceLedger, rate: LazyUsdtRate
) -> None:
    """Profiles (where still missing) and USD prices from GeckoTerminal tokens/multi."""
    source = Source.GECKOTERMINAL
    for chain, _, keys, payload in _fetch_per_chain(
        refs, source, ledger, chains.geckoterminal_network, upstream.geckoterminal.tokens_multi
    ):
        network = chains.geckoterminal_network(chain)
        if network is None:  # never: _fetch_per_chain yields only chains the API knows
            continue
        found = profiles_from_tokens_multi(network, payload)
        by_key = {p.key: p for p in found.profiles}
        reported = set()
        for failure in found.failures:
            if failure.ref in keys:
                ledger.token_failed(failure.ref, _reason(source, failure.reason))
                reported.add(failure.ref)
        for key in keys:
            profile = by_key.get(key)
            if profile is None:
                if key not in reported:
                    ledger.token_failed(key, "geckoterminal: token not found")
                continue
            profile = crawl.profiles.setdefault(key, profile)
            usd = found.usd_prices.get(key)
            if usd is None:
                continue  # the normalizer reported why
            quote = quote_from_usd(key, profile.symbol, usd, rate.get(), source.value, crawl.observed_at)
            if isinstance(quote, TokenFailure):
                ledger.token_failed(key, quote.reason)
            else:
                crawl.quotes[key] = quote


def _crawl_coingecko(
    upstream: UpstreamClients, refs: Sequence[Contract], crawl: TrendingCrawl, ledger: SourceLedger, rate: LazyUsdtRate
) -> None:
    """USD prices by contract from CoinGecko /simple/token_price, for tokens that have a profile."""
    source = Source.COINGECKO
    for chain, _, keys, payload in _fetch_per_chain(
        refs, source, ledger, chains.coingecko_platform, upstream.coingecko.token_prices
    ):
        platform = chains.coingecko_platform(chain)
        if platform is None:  # never: _fetch_per_chain yields only chains the API knows
            continue
        prices, price_failures = usd_prices_from_token_price(platform, payload)
        for failure in price_failures:
            if failure.ref in keys:
                ledger.token_failed(failure.ref, _reason(source, failure.reason))
        for key in keys:
            usd = prices.get(key)
            if usd is None:
                ledger.token_failed(key, "coingecko: no USD price for this contract")
                continue
            quote = quote_from_usd(key, crawl.profiles[key].symbol, usd, rate.get(), source.value, crawl.observed_at)
            if isinstance(quote, TokenFailure):
                ledger.token_failed(key, quote.reason)
            else:
                crawl.quotes[key] = quote


def _with_coingecko_identity(profile: TokenProfile, seed: TokenProfile) -> TokenProfile:
    """A DEX profile completed with what CoinGecko's trending entry adds: id, rank, other chains' contracts."""
    contracts = {(c.chain, c.address): c for c in (*profile.contracts, *seed.contracts)}
    return dataclasses.replace(
        profile,
        contracts=tuple(contracts.values()),
        coingecko_id=profile.coingecko_id or seed.coingecko_id,
        market_cap_rank=profile.market_cap_rank or seed.market_cap_rank,
        logo_url=profile.logo_url or seed.logo_url,
    )


# --- commit and events -----------------------------------------------------------------------


@dataclass(frozen=True)
class TrendingCommit:
    """What `commit_trending` wrote: the prices stored (under their stored token keys), the
    rows inserted, and the prices held back by the plausibility screen."""

    stored: list[PriceQuote]
    inserted: int
    suspects: list[SuspectPrice] = field(default_factory=list)


def commit_trending(
    conn: Any,
    gathered: TrendingGathered,
    job_id: str | None,
    limits: PlausibilityLimits | None = None,
    *,
    historical: bool = False,
) -> TrendingCommit:
    """Profiles, prices and (for discovery) the membership, in the caller's transaction.

    With `limits`, the prices pass the plausibility screen first (docs/pricing.md, the same
    rule as top-100 prices): a suspect price is neither stored nor returned, its token's last
    good price stays served, and the token stays a member (it trends; its profile is written).
    A discovery that could price no token leaves the membership as it is: sources that
    refuse every token (a permanent 4xx, no priced pair) say nothing about what trends.
    `historical` (the bronze replay): screened against the prices of the observation's own time.
    """
    crawl = gathered.crawl
    if crawl is None or not gathered.ready:
        return TrendingCommit([], 0)
    stored = store.upsert_tokens(conn, [crawl.profiles[k] for k in gathered.ready])
    quotes: dict[str, PriceQuote] = {}
    for key in gathered.ready:  # two contracts of one token: the better-ranked one prices it
        quotes.setdefault(stored[key], dataclasses.replace(crawl.quotes[key], token_key=stored[key]))
    if gathered.replaces_membership:
        store.set_membership(conn, TOKEN_SET, list(quotes), complete=True)
    plausible, suspects = list(quotes.values()), list[SuspectPrice]()
    if limits is not None:  # against the stored keys: a top-100 token that trends has its top-100 history
        plausible, suspects = screen_against_stored(conn, plausible, limits, TOKEN_SET, historical=historical)
    written = store.write_prices(conn, plausible, job_id)
    return TrendingCommit(written.stored, written.inserted, suspects)


def audit_job_id(job_id: str) -> str:
    """The audit job's id, derived from the trending job's: stable on redelivery, within 128 characters."""
    candidate = f"audit:{job_id}"
    if len(candidate) <= _JOB_ID_MAX:
        return candidate
    digest = hashlib.sha256(job_id.encode()).hexdigest()[:32]
    return f"audit:{job_id[: _JOB_ID_MAX - len('audit:') - 33]}:{digest}"


def request_audits(ctx: JobContext, token_keys: Sequence[str]) -> None:
    """Publish the completion event naming the committed tokens (none committed: no event)."""
    if not token_keys:
        return
    settings = ctx.resources.settings
    event = OutboundEvent(
        type=TRENDING_COMMITTED_TYPE,
        source=f"/price-crawler/{settings.function_name or 'price'}",
        subject=TOKEN_SET,
        key=TOKEN_SET,
        extensions={"traceparent": ctx.traceparent},
        dataschema=JOB_MESSAGE_SCHEMA,
        data={
            "job_type": "audit",
            "token_type": TOKEN_SET,
            "token_keys": list(token_keys),
            "symbols": [],
            "timestamp": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
            "job_id": audit_job_id(ctx.job_id),
        },
    )
    ctx.resources.producer.publish(settings.audit_topic, [event])
