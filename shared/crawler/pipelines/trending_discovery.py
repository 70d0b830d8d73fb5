"""Which tokens are trending: DexScreener first, GeckoTerminal trending pools, CoinGecko trending last.

DexScreener's signal comes from three lists — top boosts (most boosted), latest boosts and
latest token profiles. They are merged **round-robin** (1st of each list, then 2nd of
each, ...), each token once, and cut at the trending set size: every signal is represented
even when one list alone would fill the set.

DexScreener counts as failed when any of its three lists fails. A partial list would be
taken as the whole trending set and mark every token of the missing lists as having left
the set, only for them to rejoin a minute later. A source that fails (`CrawlerError`) or
answers no usable token hands over to the next one; the failures of the source that is
finally used (items on chains we do not map, unusable addresses) are reported per token.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.crawler.domain import chains
from shared.crawler.domain.normalize_coingecko import (
    TrendingCoin,
    contracts_from_platforms,
    primary_contract,
    trending_coins,
)
from shared.crawler.domain.normalize_dexscreener import trending_refs_from_boosts, trending_refs_from_profiles
from shared.crawler.domain.normalize_geckoterminal import trending_refs_from_pools
from shared.crawler.domain.sources import Source
from shared.crawler.domain.tokens import token_key
from shared.crawler.models import Contract, TokenFailure, TokenProfile
from shared.crawler.pipelines.source_ledger import SourceLedger
from shared.errors import CrawlerError
from shared.upstream import UpstreamClients
from shared.wire import as_dict, text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrendingDiscovery:
    """The trending tokens one source named, best first."""

    source: str | None  # None: no source named any token
    refs: list[Contract]
    failures: list[TokenFailure] = field(default_factory=list)
    # DexScreener: token key -> its token-profile (else boost) item, for links and icon.
    dexscreener_items: dict[str, dict[str, Any]] = field(default_factory=dict)
    # CoinGecko: token key -> a profile from the trending entry (symbol, name, logo, contracts).
    coingecko_profiles: dict[str, TokenProfile] = field(default_factory=dict)


def ref_key(ref: Contract) -> str:
    """The token key of a canonical contract ref."""
    return f"{ref.chain}:{ref.address}"


def merge_round_robin(lists: Sequence[Sequence[Contract]], limit: int) -> list[Contract]:
    """First of each list, then second of each, ...; each token once (first place kept); at most `limit`."""
    merged: dict[str, Contract] = {}
    longest = max((len(items) for items in lists), default=0)
    for position in range(longest):
        for items in lists:
            if position < len(items):
                merged.setdefault(ref_key(items[position]), items[position])
    return list(merged.values())[: max(limit, 0)]


def discover_trending(upstream: UpstreamClients, limit: int, ledger: SourceLedger) -> TrendingDiscovery:
    """The trending set from the first source that names tokens; source errors go to `ledger`."""
    finders: tuple[tuple[Source, Callable[[UpstreamClients, int], TrendingDiscovery]], ...] = (
        (Source.DEXSCREENER, _from_dexscreener),
        (Source.GECKOTERMINAL, _from_geckoterminal),
        (Source.COINGECKO, _from_coingecko),
    )
    for source, find in finders:
        try:
            found = find(upstream, limit)
        except CrawlerError as exc:
            ledger.source_failed(source.value, exc)
            continue
        if found.refs:
            log.info("trending set from %s: %d tokens", source.value, len(found.refs))
            return found
        log.warning("%s named no usable trending token (%d unusable)", source.value, len(found.failures))
    return TrendingDiscovery(source=None, refs=[])


def _from_dexscreener(upstream: UpstreamClients, limit: int) -> TrendingDiscovery:
    client = upstream.dexscreener
    top, latest, profiles = client.top_boosts(), client.latest_boosts(), client.latest_profiles()
    top_refs, top_failures = trending_refs_from_boosts(top)
    latest_refs, latest_failures = trending_refs_from_boosts(latest)
    profile_refs, profile_failures = trending_refs_from_profiles(profiles)
    refs = merge_round_robin([top_refs, latest_refs, profile_refs], limit)
    # A token-profile item carries labelled links; a boost item is the fallback.
    items: dict[str, dict[str, Any]] = {}
    for item in (*profiles, *top, *latest):
        key = _dexscreener_item_key(item)
        if key is not None:
            items.setdefault(key, item)
    wanted = {ref_key(r) for r in refs}
    failures = _unique_failures([*top_failures, *latest_failures, *profile_failures])
    return TrendingDiscovery(Source.DEXSCREENER.value, refs, failures, {k: v for k, v in items.items() if k in wanted})


def _dexscreener_item_key(item: Any) -> str | None:
    item = as_dict(item)
    chain = chains.chain_from_dexscreener(item.get("chainId"))
    if chain is None:
        return None
    try:
        return token_key(chain, text(item.get("tokenAddress")) or "")
    except ValueError:
        return None


def _from_geckoterminal(upstream: UpstreamClients, limit: int) -> TrendingDiscovery:
    refs, failures = trending_refs_from_pools(upstream.geckoterminal.trending_pools())
    return TrendingDiscovery(Source.GECKOTERMINAL.value, refs[: max(limit, 0)], failures)


def _from_coingecko(upstream: UpstreamClients, limit: int) -> TrendingDiscovery:
    coins, failures = trending_coins(upstream.coingecko.trending())
    if not coins:
        return TrendingDiscovery(Source.COINGECKO.value, [], failures)
    # /search/trending names coins by id only; their contracts come from the (cached) coin list.
    platforms = {
        text(as_dict(c).get("id")): as_dict(c).get("platforms") for c in upstream.coingecko.coins_list_with_platforms()
    }
    refs: list[Contract] = []
    profiles: dict[str, TokenProfile] = {}
    for coin in coins:
        contracts = contracts_from_platforms(platforms.get(coin.coingecko_id))
        primary = primary_contract(contracts)
        if primary is None:
            failures.append(
                TokenFailure(
                    coin.coingecko_id,
                    "coingecko trending coin has no contract on a supported "
                    "chain: trending tokens are priced by contract",
                )
            )
            continue
        key = token_key(primary.chain, primary.address)
        if key in profiles:
            continue
        refs.append(Contract(primary.chain, primary.address))
        profiles[key] = profile_from_trending_coin(key, coin, contracts)
    refs = refs[: max(limit, 0)]
    wanted = {ref_key(r) for r in refs}
    return TrendingDiscovery(
        Source.COINGECKO.value, refs, failures, coingecko_profiles={k: p for k, p in profiles.items() if k in wanted}
    )


def profile_from_trending_coin(key: str, coin: TrendingCoin, contracts: Sequence[Contract]) -> TokenProfile:
    """A token profile from a CoinGecko trending entry and the coin's contracts (primary first)."""
    primary = contracts[0]
    return TokenProfile(
        key=key,
        symbol=coin.symbol,
        name=coin.name,
        chain=primary.chain,
        address=primary.address,
        contracts=tuple(contracts),
        logo_url=coin.logo_url,
        coingecko_id=coin.coingecko_id,
        market_cap_usd=coin.market_cap_usd,
        market_cap_rank=coin.market_cap_rank,
        source=Source.COINGECKO.value,
    )


def _unique_failures(failures: Sequence[TokenFailure]) -> list[TokenFailure]:
    first: dict[str, TokenFailure] = {}
    for failure in failures:  # a token on several lists fails once
        first.setdefault(failure.ref, failure)
    return list(first.values())
