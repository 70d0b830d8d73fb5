"""CoinGecko payloads -> token profiles, USD prices and the USDT/USD rate.

CoinGecko is the source of the top-100 list and its metadata. Its coin ids
are stable, but a coin's *key* is its primary contract (`shared.crawler.domain.tokens`): the
contracts come from ``/coins/list?include_platform=true`` (or ``/coins/{id}``), and the
primary one is chosen by `shared.crawler.domain.chains.chain_preference` (ethereum, bsc, solana,
base, arbitrum, polygon, avalanche, optimism, ...). A coin without any contract on a chain
we know (BTC, or a ``platforms`` of ``{"": ""}`` as ``/coins/{id}`` returns for native
coins) is keyed ``native:<coingecko id>``.

CoinGecko lower-cases symbols (``"btc"``); profiles carry them upper-cased, the usual
ticker form that job messages use.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from shared.crawler.domain import chains
from shared.crawler.domain.sources import Source
from shared.crawler.domain.tokens import canonical_address, native_token_key, stablecoin_rule, token_key
from shared.crawler.models import Contract, TokenFailure, TokenProfile
from shared.errors import BadWireValue
from shared.wire import (
    as_dict,
    as_list,
    parse_display_number,
    text,
    to_decimal,
    to_int,
    to_positive_decimal,
)

TETHER_ID = "tether"
# A USDT/USD rate outside this band is a glitch, not a market: converting every USD price
# with it would corrupt them all, so it is refused (prices then wait for a sane rate).
USDT_USD_PLAUSIBLE_MIN = Decimal("0.5")
USDT_USD_PLAUSIBLE_MAX = Decimal("1.5")


@dataclass(frozen=True, slots=True)
class TrendingCoin:
    """One entry of CoinGecko ``/search/trending`` (no contracts there: resolve by id)."""

    coingecko_id: str
    symbol: str
    name: str | None
    market_cap_rank: int | None
    logo_url: str | None
    price_usd: Decimal | None
    market_cap_usd: Decimal | None
    volume_24h_usd: Decimal | None
    position: int  # 0-based rank in the trending list


# --- contracts -----------------------------------------------------------------------------


def contracts_from_platforms(platforms: Any, detail_platforms: Any = None) -> tuple[Contract, ...]:
    """Contracts on chains we know, from a CoinGecko ``platforms`` map, preferred chain first.

    Unknown platforms, the native-coin quirk ``{"": ""}`` and invalid addresses are
    skipped. `detail_platforms` (from ``/coins/{id}``) adds ``decimal_place`` per chain.
    """
    details = as_dict(detail_platforms)
    found: dict[tuple[str, str], Contract] = {}
    for platform_id, raw_address in as_dict(platforms).items():
        chain = chains.chain_from_coingecko_platform(platform_id)
        address = text(raw_address)
        if chain is None or address is None:
            continue
        try:
            address = canonical_address(chain, address)
        except ValueError:
            continue
        try:
            decimals = to_int(as_dict(details.get(platform_id)).get("decimal_place"), "decimal_place")
        except BadWireValue:  # the contract stands; its decimals are unknown
            decimals = None
        found.setdefault((chain, address), Contract(chain, address, decimals))
    return tuple(sorted(found.values(), key=lambda c: (chains.chain_preference(c.chain), c.address)))


def primary_contract(contracts: Iterable[Contract]) -> Contract | None:
    """The contract that keys the token: the one on the most preferred chain."""
    ordered = sorted(contracts, key=lambda c: (chains.chain_preference(c.chain), c.address))
    return ordered[0] if ordered else None


def _key_for(coingecko_id: str, contracts: tuple[Contract, ...]) -> tuple[str, Contract | None]:
    primary = primary_contract(contracts)
    if primary is None:
        return native_token_key(coingecko_id), None
    return token_key(primary.chain, primary.address), primary


def _platforms_by_id(coins_list: Any) -> dict[str, Any]:
    if isinstance(coins_list, Mapping):
        return dict(coins_list)
    by_id: dict[str, Any] = {}
    for entry in as_list(coins_list):
        entry = as_dict(entry)
        coin_id = text(entry.get("id"))
        if coin_id:
            by_id.setdefault(coin_id, entry.get("platforms"))
    return by_id


def _rank_sort_key(row: dict[str, Any]) -> tuple[int, Decimal]:
    try:
        rank = to_int(row.get("market_cap_rank"), "market_cap_rank")
        cap = to_decimal(row.get("market_cap"), "market_cap") or Decimal(0)
    except BadWireValue:  # sorted last here; the row itself then fails with the reason
        return (1 << 31, Decimal(0))
    return (rank if rank is not None and rank > 0 else 1 << 30, -cap)


# --- top 100 -------------------------------------------------------------------------------


def top100_profiles(
    markets: Any,
    coins_list: Any,
    stablecoins: frozenset[str],
    stablecoin_ids: frozenset[str] = frozenset(),
    limit: int = 100,
    *,
    variant_pattern: re.Pattern[str] | None = None,
    excluded: list[TokenFailure] | None = None,
) -> tuple[list[TokenProfile], list[TokenFailure]]:
    """The top `limit` non-stablecoin coins by market-cap rank, as profiles.

    - `markets`: ``/coins/markets?vs_currency=usd`` rows (several pages concatenated).
    - `coins_list`: ``/coins/list?include_platform=true`` rows, or a ready map
      ``{coin id: platforms}``. A coin missing from it is a failure, not a native coin:
      guessing ``native:`` for an ERC-20 would fork its identity once the list catches up.

    Stablecoins are dropped before counting, so the result holds `limit` tradable coins
    when the markets hold that many; `excluded` (when given) collects each with the rule
    that excluded it (`shared.crawler.domain.tokens.stablecoin_rule`; `variant_pattern` catches
    bridged/wrapped variants such as USDC.e). Two coins resolving to one key keep the better rank.
    """
    platforms_by_id = _platforms_by_id(coins_list)
    rows = sorted((as_dict(r) for r in as_list(markets)), key=_rank_sort_key)
    profiles: list[TokenProfile] = []
    failures: list[TokenFailure] = []
    seen_ids: set[str] = set()
    seen_keys: dict[str, str] = {}
    for row in rows:
        if len(profiles) >= limit:
            break
        coin_id = text(row.get("id"))
        symbol = text(row.get("symbol"))
        if coin_id is None or symbol is None:
            ref = coin_id or symbol or "coins/markets row"
            failures.append(TokenFailure(ref[:80], "coingecko market row without id or symbol"))
            continue
        if coin_id in seen_ids:
            continue
        seen_ids.add(coin_id)
        rule = stablecoin_rule(symbol, stablecoins, coin_id, stablecoin_ids, variant_pattern=variant_pattern)
        if rule is not None:
            if excluded is not None:
                excluded.append(TokenFailure(coin_id, rule))
            continue
        if coin_id not in platforms_by_id:
            failures.append(TokenFailure(coin_id, "not in coingecko coins/list: contracts unknown, skipped"))
            continue
        try:
            contracts = contracts_from_platforms(platforms_by_id[coin_id])
            key, primary = _key_for(coin_id, contracts)
        except ValueError as exc:
            failures.append(TokenFailure(coin_id, f"no usable identity: {exc}"))
            continue
        if key in seen_keys:
            failures.append(TokenFailure(coin_id, f"same key {key} as coingecko id {seen_keys[key]}; skipped"))
            continue
        try:
            market_cap = to_positive_decimal(row.get("market_cap"), "market_cap")
            rank = to_int(row.get("market_cap_rank"), "market_cap_rank")
        except BadWireValue as exc:
            failures.append(TokenFailure(coin_id, f"coingecko: {exc}"))
            continue
        seen_keys[key] = coin_id
        profiles.append(
            TokenProfile(
                key=key,
                symbol=symbol.upper(),
                name=text(row.get("name")),
                chain=primary.chain if primary else None,
                address=primary.address if primary else None,
                contracts=contracts,
                logo_url=_url(row.get("image")),
                coingecko_id=coin_id,
                market_cap_usd=market_cap,
                market_cap_rank=rank,
                source=Source.COINGECKO.value,
            )
        )
    return profiles, failures


# --- /coins/{id} ---------------------------------------------------------------------------


def _url(value: Any) -> str | None:
    url = text(value)
    return url if url and url.lower().startswith(("https://", "http://")) else None


def _urls(values: Any) -> list[str]:
    if isinstance(values, str):
        values = [values]
    return [u for u in (_url(v) for v in as_list(values)) if u]


def _socials_from_links(links: dict[str, Any]) -> list[tuple[str, str]]:
    socials: list[tuple[str, str]] = []
    if handle := text(links.get("twitter_screen_name")):
        socials.append(("twitter", f"https://x.com/{handle}"))
    if channel := text(links.get("telegram_channel_identifier")):
        socials.append(("telegram", f"https://t.me/{channel}"))
    if user := text(links.get("facebook_username")):
        socials.append(("facebook", f"https://www.facebook.com/{user}"))
    reddit = _url(links.get("subreddit_url"))
    if reddit and reddit.rstrip("/").lower() not in ("https://www.reddit.com", "https://reddit.com"):
        socials.append(("reddit", reddit))
    for chat in _urls(links.get("chat_url")):
        socials.append(("discord" if "discord" in chat.lower() else "chat", chat))
    for forum in _urls(links.get("official_forum_url")):
        socials.append(("forum", forum))
    for repo in _urls(as_dict(links.get("repos_url")).get("github")):
        socials.append(("github", repo))
    for paper in _urls(links.get("whitepaper")):
        socials.append(("whitepaper", paper))
    return socials


def _merge_unique(first: Iterable[Any], second: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(dict.fromkeys([*first, *second]))


def apply_coin_detail(profile: TokenProfile, detail: Any) -> TokenProfile:
    """The profile enriched with ``/coins/{id}``: websites, socials, tags, decimals, logo.

    - websites: ``links.homepage``; socials as ``(kind, url)``: twitter, telegram,
      facebook, reddit, discord/chat, forum, github, whitepaper;
    - tags: ``categories``; decimals: ``detail_platforms[*].decimal_place`` per contract,
      and the profile's own from its primary contract;
    - contracts found only in the detail are added, but the key never changes.

    A detail that is not an object, or is for another coin id, leaves the profile as is.
    """
    detail = as_dict(detail)
    if not detail or text(detail.get("id")) != profile.coingecko_id:
        return profile
    try:
        return _with_detail(profile, detail)
    except BadWireValue:  # an absurd number in the detail: the profile stays as the list had it
        return profile


def _with_detail(profile: TokenProfile, detail: dict[str, Any]) -> TokenProfile:
    links = as_dict(detail.get("links"))
    detail_contracts = contracts_from_platforms(detail.get("platforms"), detail.get("detail_platforms"))
    decimals_by_contract = {(c.chain, c.address): c.decimals for c in detail_contracts}
    merged: dict[tuple[str, str], Contract] = {}
    for contract in (*profile.contracts, *detail_contracts):
        ref = (contract.chain, contract.address)
        decimals = contract.decimals if contract.decimals is not None else decimals_by_contract.get(ref)
        if ref not in merged or merged[ref].decimals is None:
            merged[ref] = Contract(contract.chain, contract.address, decimals)
    contracts = tuple(sorted(merged.values(), key=lambda c: (chains.chain_preference(c.chain), c.address)))
    own_decimals = profile.decimals
    if profile.chain and profile.address:
        found_decimals = decimals_by_contract.get((profile.chain, profile.address))
        own_decimals = found_decimals if found_decimals is not None else own_decimals
    image = as_dict(detail.get("image"))
    logo = profile.logo_url or _url(image.get("large")) or _url(image.get("small")) or _url(image.get("thumb"))
    tags = [t for t in (text(c) for c in as_list(detail.get("categories"))) if t]
    return dataclasses.replace(
        profile,
        name=profile.name or text(detail.get("name")),
        contracts=contracts,
        decimals=own_decimals,
        logo_url=logo,
        websites=_merge_unique(profile.websites, _urls(links.get("homepage"))),
        socials=_merge_unique(profile.socials, _socials_from_links(links)),
        tags=_merge_unique(profile.tags, tags),
        market_cap_rank=profile.market_cap_rank or to_int(detail.get("market_cap_rank"), "market_cap_rank"),
    )


# --- prices --------------------------------------------------------------------------------


def usd_prices_from_simple_price(payload: Any) -> tuple[dict[str, Decimal], list[TokenFailure]]:
    """``/simple/price?vs_currencies=usd`` -> ``{coingecko id: USD price}``; unusable prices fail."""
    prices: dict[str, Decimal] = {}
    failures: list[TokenFailure] = []
    for coin_id, entry in as_dict(payload).items():
        raw = as_dict(entry).get("usd")
        try:
            price = to_positive_decimal(raw, "usd")
        except BadWireValue as exc:
            failures.append(TokenFailure(coin_id, f"coingecko: {exc}"))
            continue
        if price is None:
            failures.append(TokenFailure(coin_id, f"coingecko: unusable usd price {raw!r}"))
        else:
            prices[coin_id] = price
    return prices, failures


def usd_prices_from_token_price(platform_id: str, payload: Any) -> tuple[dict[str, Decimal], list[TokenFailure]]:
    """``/simple/token_price/{platform}`` -> ``{token key: USD price}``.

    Keys of the answer follow the address case CoinGecko chose; they are canonicalised
    here so the caller looks them up by token key.
    """
    chain = chains.chain_from_coingecko_platform(platform_id)
    if chain is None:
        return {}, [TokenFailure(str(platform_id), "unknown coingecko platform")]
    prices: dict[str, Decimal] = {}
    failures: list[TokenFailure] = []
    for address, entry in as_dict(payload).items():
        try:
            key = token_key(chain, address)
        except ValueError as exc:
            failures.append(TokenFailure(f"{chain}:{address}"[:160], str(exc)))
            continue
        raw = as_dict(entry).get("usd")
        try:
            price = to_positive_decimal(raw, "usd")
        except BadWireValue as exc:
            failures.append(TokenFailure(key, f"coingecko: {exc}"))
            continue
        if price is None:
            failures.append(TokenFailure(key, f"coingecko: unusable usd price {raw!r}"))
        else:
            prices[key] = price
    return prices, failures


def usdt_usd_rate(payload: Any) -> Decimal | None:
    """USD per 1 USDT from ``/simple/price?ids=tether&vs_currencies=usd``; None if unusable.

    A rate outside [0.5, 1.5] is treated as unusable (see `USDT_USD_PLAUSIBLE_MIN`).
    """
    try:
        rate = to_positive_decimal(as_dict(as_dict(payload).get(TETHER_ID)).get("usd"), "tether.usd")
    except BadWireValue:
        return None
    if rate is None or not USDT_USD_PLAUSIBLE_MIN <= rate <= USDT_USD_PLAUSIBLE_MAX:
        return None
    return rate


# --- /search/trending ----------------------------------------------------------------------


def trending_coins(payload: Any) -> tuple[list[TrendingCoin], list[TokenFailure]]:
    """Coins of ``/search/trending`` in their trending order.

    The payload mixes number types (exponent numbers, decimal strings, display strings
    like ``"$521,967,819"``); each is read tolerantly and an unreadable value is None.
    """
    coins: list[TrendingCoin] = []
    failures: list[TokenFailure] = []
    seen: set[str] = set()
    for position, wrapper in enumerate(as_list(as_dict(payload).get("coins"))):
        item = as_dict(as_dict(wrapper).get("item"))
        coin_id = text(item.get("id"))
        symbol = text(item.get("symbol"))
        if coin_id is None or symbol is None:
            failures.append(TokenFailure(f"trending#{position}", "coingecko trending item without id or symbol"))
            continue
        if coin_id in seen:
            continue
        seen.add(coin_id)
        data = as_dict(item.get("data"))
        try:
            coins.append(
                TrendingCoin(
                    coingecko_id=coin_id,
                    symbol=symbol.upper(),
                    name=text(item.get("name")),
                    market_cap_rank=to_int(item.get("market_cap_rank"), "market_cap_rank"),
                    logo_url=_url(item.get("large")) or _url(item.get("small")) or _url(item.get("thumb")),
                    price_usd=to_positive_decimal(data.get("price"), "data.price"),
                    market_cap_usd=parse_display_number(data.get("market_cap"), "data.market_cap"),
                    volume_24h_usd=parse_display_number(data.get("total_volume"), "data.total_volume"),
                    position=position,
                )
            )
        except BadWireValue as exc:
            failures.append(TokenFailure(coin_id, f"coingecko trending: {exc}"))
    return coins, failures
