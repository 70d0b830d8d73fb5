"""Top-100 prices: Binance first, then DexScreener by contract, then CoinGecko.

Binance is asked once per batch (one `ticker/price?symbols=[...]` request); the tokens
it cannot price fall back to DexScreener (one request per 30 contracts per chain), and
what is still missing to CoinGecko `/simple/price` (one request). USD prices become USDT
with the current rate. Every price is written in one transaction, after the plausibility
screen (docs/pricing.md): a price far from the token's last stored one is held back as
suspect, a per-token failure of the job with the reason, and neither stored nor announced.
The price.updated event is staged in the same transaction (shared/crawler/event_outbox.py).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from functools import partial

from shared.config import Settings
from shared.crawler import store
from shared.crawler.domain import chains
from shared.crawler.domain.normalize_binance import binance_pairs, parse_binance_ticker_prices
from shared.crawler.domain.normalize_coingecko import usd_prices_from_simple_price
from shared.crawler.domain.normalize_dexscreener import pairs_from_payload, price_usd_from_pairs
from shared.crawler.domain.pricing import quote_from_pool, quote_from_usd
from shared.crawler.domain.sources import Source
from shared.crawler.domain.tokens import configured_stablecoin_rule
from shared.crawler.job_runner import JobContext, JobOutcome
from shared.crawler.jobs import JobMessage
from shared.crawler.models import Pool, PriceQuote, TokenFailure
from shared.crawler.pipelines.plausibility import plausibility_limits, screen_against_stored
from shared.crawler.pipelines.price_events import publish_price_batch, stage_price_batch
from shared.crawler.pipelines.source_ledger import LazyUsdtRate, SourceLedger
from shared.crawler.pipelines.usdt_rate import usdt_usd_rate_of
from shared.errors import CrawlerError, PrerequisiteMissing
from shared.observability.logging import log_context
from shared.upstream import UpstreamClients
from shared.upstream.dexscreener import POOL_PAIRS

log = logging.getLogger(__name__)


def price_top100(ctx: JobContext) -> JobOutcome:
    """Price the job's symbols (or the whole top-100 set when it names none)."""
    settings = ctx.resources.settings
    job = ctx.job
    failures: list[TokenFailure] = []

    requested = list(job.symbols)
    stable = {s: rule for s in requested if (rule := configured_stablecoin_rule(settings, s)) is not None}
    failures += [TokenFailure(s, f"{rule}: never priced") for s, rule in stable.items()]
    wanted = [s for s in requested if s not in stable]
    # Top-100 jobs name tokens by symbol; a job naming only contracts or keys is not "the whole set".
    misdirected = [c.address for c in job.contracts] + list(job.token_keys)
    failures += [
        TokenFailure(ref, "top-100 price jobs name tokens by symbol; use a trending job for contracts")
        for ref in misdirected
    ]

    with ctx.resources.db.connection() as conn:
        tokens = job_tokens(conn, job, settings)
        # Asked only when nothing matched: one round trip less for every job that has tokens.
        if not tokens and not store.has_members(conn, "top100"):
            raise PrerequisiteMissing("no top-100 set yet: the metadata job has not completed")
    failures += [
        TokenFailure(s, f"unknown symbol {s}: not in the current top-100 set") for s in wanted if s not in tokens
    ]

    ledger = SourceLedger()
    observed_at = ctx.observed_at  # a redelivery repeats the first attempt's observation
    upstream = ctx.resources.upstream
    # Published so bronze keeps it with each answer: a replay stamps the prices with the same time.
    with log_context(observed_at=observed_at.isoformat()):
        quotes, source_failures = (
            fetch_prices(upstream, list(tokens.values()), ledger, observed_at, usdt_usd_rate_of(ctx.resources).current)
            if tokens
            else ([], [])
        )
    failures += source_failures
    if tokens and not quotes and (error := ledger.retryable_error()):
        # Nothing could be priced because sources failed: let the delivery policy retry.
        raise error

    with ctx.resources.db.transaction() as conn:
        quotes, suspects = screen_against_stored(conn, quotes, plausibility_limits(settings), "top100")
        written = store.write_prices(conn, quotes, ctx.job_id)
        event = stage_price_batch(conn, ctx, "top100", written.stored)
    inserted, quotes = written.inserted, written.stored
    failures += [TokenFailure(s.quote.token_key, s.reason) for s in suspects]
    publish_price_batch(ctx, event)
    by_source: dict[str, int] = defaultdict(int)
    for quote in quotes:
        by_source[quote.source] += 1
    return JobOutcome(
        requested=len(requested) + len(misdirected) or len(tokens),
        succeeded=len(quotes),
        failures=failures,
        rows_upserted={"token_prices": inserted},
        details={"inserted": inserted, "sources": dict(by_source), "suspect": len(suspects)},
    )


def job_tokens(conn: store.Conn, job: JobMessage, settings: Settings) -> dict[str, store.KnownToken]:
    """The top-100 members a price job prices: its symbols (stablecoins never), or the whole
    set when it names nothing (keyed by token then: two members may share a symbol)."""
    if job.symbols or job.contracts or job.token_keys:
        wanted = [s for s in job.symbols if s not in settings.stablecoin_symbols]
        return store.tokens_by_symbol(conn, wanted, "top100")
    return {t.key: t for t in store.set_members(conn, "top100", settings.top100_size)}


def fetch_prices(
    upstream: UpstreamClients,
    tokens: list[store.KnownToken],
    ledger: SourceLedger,
    observed_at: datetime,
    usdt_usd_rate: Callable[[], Decimal],
) -> tuple[list[PriceQuote], list[TokenFailure]]:
    """USDT quotes for these tokens along the source order, observed at `observed_at`; writes nothing.

    The live job and the bronze replay both run this (the replay on `ArchivedUpstream`):
    `usdt_usd_rate` gives the rate when a USD price needs converting (raising `CrawlerError`
    when there is none). Failures carry every source's reason; source errors are in `ledger`.
    """
    quotes: dict[str, PriceQuote] = {}
    rate = LazyUsdtRate(usdt_usd_rate, ledger)

    # 1. Binance: one request for every token with a trading <SYMBOL>USDT pair.
    try:
        listed = upstream.binance.usdt_symbols()
    except CrawlerError as exc:
        listed = frozenset()
        ledger.source_failed(Source.BINANCE.value, exc, [t.key for t in tokens])
    pair_to_key = binance_pairs(tokens, listed)
    if pair_to_key:
        try:
            rows = upstream.binance.ticker_prices(list(pair_to_key))
            symbols = {pair: pair[: -len("USDT")] for pair in pair_to_key}
            found, missing = parse_binance_ticker_prices(rows, pair_to_key, symbols, observed_at)
            quotes.update({q.token_key: q for q in found})
            for failure in missing:
                ledger.token_failed(failure.ref, failure.reason)
        except CrawlerError as exc:
            ledger.source_failed(Source.BINANCE.value, exc, list(pair_to_key.values()))
    for token in tokens:
        if token.key not in quotes and token.key not in pair_to_key.values():
            ledger.token_failed(token.key, "binance: no trading USDT pair")

    # 2. DexScreener by contract, 30 addresses per request per chain.
    rest = [t for t in tokens if t.key not in quotes]
    if rest:
        _price_on_dexscreener(upstream, rest, observed_at, quotes, ledger, rate)

    # 3. CoinGecko by id, one request.
    rest = [t for t in tokens if t.key not in quotes and t.coingecko_id]
    if rest:
        try:
            payload = upstream.coingecko.simple_price([t.coingecko_id for t in rest if t.coingecko_id])
        except CrawlerError as exc:
            ledger.source_failed(Source.COINGECKO.value, exc, [t.key for t in rest])
        else:
            usd, _ = usd_prices_from_simple_price(payload)
            for token in rest:
                result = quote_from_usd(
                    token.key,
                    token.symbol,
                    usd.get(token.coingecko_id or ""),
                    rate.get(),
                    Source.COINGECKO,
                    observed_at,
                )
                if isinstance(result, PriceQuote):
                    quotes[token.key] = result
                else:
                    ledger.token_failed(token.key, result.reason)

    failures = [
        TokenFailure(t.key, "; ".join(ledger.reasons[t.key]) or "no price source")
        for t in tokens
        if t.key not in quotes
    ]
    return list(quotes.values()), failures


def _price_on_dexscreener(
    upstream: UpstreamClients,
    tokens: list[store.KnownToken],
    observed_at: datetime,
    quotes: dict[str, PriceQuote],
    ledger: SourceLedger,
    rate: LazyUsdtRate,
) -> None:
    by_chain: dict[str, list[tuple[store.KnownToken, str]]] = defaultdict(list)
    for token in tokens:
        for chain, address in chains.dexscreener_contracts(token.chain, token.contract, token.contracts):
            by_chain[chain].append((token, address))
            break
        else:
            ledger.token_failed(token.key, "dexscreener: no contract on a supported chain")
    for chain, members in by_chain.items():
        chain_id = chains.dexscreener_chain_id(chain)
        if chain_id is None:  # never: dexscreener_contracts yields only chains DexScreener lists
            continue
        try:
            answers = upstream.dexscreener.token_pairs_per_batch(
                chain_id, [a for _, a in members], partial(_main_pools, chain, members), shape=POOL_PAIRS
            )
        except CrawlerError as exc:
            ledger.source_failed(Source.DEXSCREENER.value, exc, [t.key for t, _ in members])
            continue
        main_pools = {key: found for answer in answers for key, found in answer.items()}
        for token, _ in members:
            found = main_pools.get(token.key)
            if found is None:
                ledger.token_failed(token.key, "dexscreener: no pair with a USD price")
                continue
            _, pool = found
            result = quote_from_pool(token.key, token.symbol, pool, rate.get(), Source.DEXSCREENER, observed_at)
            if isinstance(result, PriceQuote):
                quotes[token.key] = result
            else:
                ledger.token_failed(token.key, result.reason)


def _main_pools(
    chain: str, members: list[tuple[store.KnownToken, str]], pairs: list[dict]
) -> dict[str, tuple[Decimal, Pool]]:
    """Token key -> (USD price, main pool) for the members one DexScreener answer prices.

    Each token reads only its own pairs: matching every token against the whole answer
    re-normalised each pair once per token (a third of the CPU at 4,000 tokens).
    """
    own_pairs = _pairs_by_base_address(pairs)
    found = {}
    for token, address in members:
        own = own_pairs.get(address.strip().lower())
        if own:
            main = price_usd_from_pairs(own, chain, address)
            if main is not None:
                found[token.key] = main
    return found


def _pairs_by_base_address(payload: object) -> dict[str, list[dict]]:
    """Raw pairs grouped by lower-cased base-token address: a cheap pre-filter only, since
    `price_usd_from_pairs` still matches the canonical address exactly (Solana keeps its case)."""
    grouped: dict[str, list[dict]] = defaultdict(list)
    for pair in pairs_from_payload(payload):
        base = pair.get("baseToken")
        address = base.get("address") if isinstance(base, dict) else None
        if isinstance(address, str):
            grouped[address.strip().lower()].append(pair)
    return grouped
