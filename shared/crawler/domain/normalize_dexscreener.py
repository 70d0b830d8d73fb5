"""DexScreener payloads -> pools, token profiles, USD prices and trending refs.

DexScreener is the first source for trending tokens. What its payloads
do that this module absorbs (see tests/fixtures/upstream/INDEX.md):

- envelopes differ: ``{pairs: [...]}``, ``{pairs: null}`` (not found), ``{pair: {...}}``,
  or a bare array (`pairs_from_payload` reads them all);
- any key may be missing: ``info``, ``liquidity``, ``priceUsd``, ``fdv``, ``marketCap``;
- EVM addresses come checksummed (mixed case); Solana mints are case-sensitive;
- a token appears as the *quote* of other tokens' pairs: such pairs say nothing about
  its price and are skipped for pricing (their quoteToken still names the token);
- a profile/boost ``icon`` may be a bare 64-hex image id instead of a URL. Then the logo
  is DexScreener's per-token image path,
  ``https://dd.dexscreener.com/ds-data/tokens/<chainId>/<address>.png`` (the form the
  token-profile samples use for the same tokens), not a guess at an image-id URL;
- ``links[]`` entries carry ``type`` (a social: twitter, telegram, ...), ``label``
  (a website: "Website", "Docs") or neither (a website).

Prices are decimal strings kept digit for digit ("0.00000000001234" stays exact).
Symbols are kept as the token defines them on chain ("babyDOJO"), not upper-cased.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from shared.crawler.domain import chains
from shared.crawler.domain.pools import dedupe_pools, select_main_pool, sorted_by_liquidity
from shared.crawler.domain.sources import Source
from shared.crawler.domain.tokens import canonical_address, canonical_pool_address, token_key
from shared.crawler.models import Contract, Pool, TokenFailure, TokenProfile
from shared.errors import BadWireValue
from shared.wire import (
    as_dict,
    as_list,
    datetime_from_millis,
    text,
    to_decimal,
    to_positive_decimal,
)

__all__ = [
    "dedupe_pools",  # from shared.crawler.domain.pools, where pool choice lives for every source
    "icon_url",
    "normalize_dexscreener_pair",
    "normalize_dexscreener_pairs",
    "pairs_from_payload",
    "price_usd_from_pairs",
    "profile_from_dexscreener",
    "select_main_pool",  # from shared.crawler.domain.pools
    "trending_refs_from_boosts",
    "trending_refs_from_profiles",
]

TOKEN_IMAGE_URL = "https://dd.dexscreener.com/ds-data/tokens/{chain_id}/{address}.png"
_IMAGE_ID = re.compile(r"[0-9a-fA-F]{64}")
_WEBSITE_TYPES = frozenset({"website", "web", "homepage", "docs"})
_BAD_PAIR = "dexscreener pair: "  # the prefix of a pair failed by an absurd number (BadWireValue)


# --- envelopes and pairs -------------------------------------------------------------------


def pairs_from_payload(payload: Any) -> list[dict[str, Any]]:
    """The pair objects of any DexScreener pair envelope; ``[]`` when there are none."""
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, dict)]
    body = as_dict(payload)
    if isinstance(body.get("pairs"), list):
        return [p for p in body["pairs"] if isinstance(p, dict)]
    if isinstance(body.get("pair"), dict):
        return [body["pair"]]
    return []


def _non_negative(value: Any, field: str = "") -> Decimal | None:
    number = to_decimal(value, field)
    return number if number is not None and number >= 0 else None


def _url(value: Any) -> str | None:
    url = text(value)
    return url if url and url.lower().startswith(("https://", "http://")) else None


def normalize_dexscreener_pair(pair: Any) -> Pool | TokenFailure:
    """One pair object as a `Pool`, or a `TokenFailure` saying why it cannot be used.

    Unusable: unknown chain, missing/invalid base token address, missing pair address.
    Missing numbers are None (unknown), never zero.
    """
    pair = as_dict(pair)
    chain_id = text(pair.get("chainId"))
    pair_address = text(pair.get("pairAddress"))
    ref = f"{chain_id}:{pair_address}"[:160]
    chain = chains.chain_from_dexscreener(chain_id)
    if chain is None:
        return TokenFailure(ref, f"dexscreener pair on unsupported chain {chain_id!r}")
    base = as_dict(pair.get("baseToken"))
    quote = as_dict(pair.get("quoteToken"))
    if text(base.get("address")) is None:
        return TokenFailure(ref, "dexscreener pair without a base token address")
    try:
        base_address = canonical_address(chain, base["address"])
        pool_address = canonical_pool_address(chain, pair_address or "")
    except ValueError as exc:
        return TokenFailure(ref, f"dexscreener pair unusable: {exc}")
    try:
        quote_address: str | None = canonical_address(chain, quote.get("address") or "")
    except ValueError:
        quote_address = None
    try:
        return Pool(
            chain=chain,
            dex=text(pair.get("dexId")) or "unknown",
            pair_address=pool_address,
            base_address=base_address,
            quote_symbol=text(quote.get("symbol")) or "",
            quote_address=quote_address,
            price_usd=to_positive_decimal(pair.get("priceUsd"), "priceUsd"),
            price_native=to_positive_decimal(pair.get("priceNative"), "priceNative"),
            liquidity_usd=_non_negative(as_dict(pair.get("liquidity")).get("usd"), "liquidity.usd"),
            volume_24h_usd=_non_negative(as_dict(pair.get("volume")).get("h24"), "volume.h24"),
            fdv_usd=to_positive_decimal(pair.get("fdv"), "fdv"),
            market_cap_usd=to_positive_decimal(pair.get("marketCap"), "marketCap"),
            url=_url(pair.get("url")),
            created_at=datetime_from_millis(pair.get("pairCreatedAt"), "pairCreatedAt"),
        )
    except BadWireValue as exc:  # one absurd number: this pair is unusable, not the answer
        return TokenFailure(ref, f"{_BAD_PAIR}{exc}")


def normalize_dexscreener_pairs(pairs: Any) -> tuple[list[Pool], list[TokenFailure]]:
    """Every usable pair of a payload (any envelope) as pools, de-duplicated, plus failures."""
    pools: list[Pool] = []
    failures: list[TokenFailure] = []
    for raw in pairs_from_payload(pairs):
        result = normalize_dexscreener_pair(raw)
        if isinstance(result, TokenFailure):
            failures.append(result)
        else:
            pools.append(result)
    return dedupe_pools(pools), failures


# --- one token -----------------------------------------------------------------------------


def _token_side_pairs(
    chain: str, address: str, raw_pairs: list[dict[str, Any]], bad_data: list[str] | None = None
) -> tuple[list[tuple[Pool, dict[str, Any]]], list[dict[str, Any]]]:
    """(base-side pools with their raw pair, raw pairs where the token is the quote).

    `bad_data` collects why the token's own pairs were unusable for an absurd number, so the
    token's failure can say so instead of "no pair".
    """
    as_base: list[tuple[Pool, dict[str, Any]]] = []
    as_quote: list[dict[str, Any]] = []
    for raw in raw_pairs:
        pool = normalize_dexscreener_pair(raw)
        if isinstance(pool, TokenFailure):
            if bad_data is not None and pool.reason.startswith(_BAD_PAIR) and _base_is(raw, chain, address):
                bad_data.append(pool.reason)
            continue
        if pool.chain != chain:
            continue
        if pool.base_address == address:
            as_base.append((pool, raw))
        elif pool.quote_address == address:
            as_quote.append(raw)
    return as_base, as_quote


def price_usd_from_pairs(pairs: Any, chain: str, address: str) -> tuple[Decimal, Pool] | None:
    """``(price_usd, pool)`` of the token from its main pool that has a ``priceUsd``.

    Only pairs where the token is the *base* count; pairs without ``priceUsd`` are
    skipped; ``pairs: null`` or no usable pair gives None (no price, never zero).
    For a USDT-quoted main pool prefer `shared.crawler.domain.pricing.price_usdt_direct`.
    """
    found = chains.get_chain(chain)
    if found is None:
        return None
    try:
        canonical = canonical_address(found.slug, address)
    except ValueError:
        return None
    as_base, _ = _token_side_pairs(found.slug, canonical, pairs_from_payload(pairs))
    main = select_main_pool(pool for pool, _ in as_base if pool.price_usd is not None)
    if main is None or main.price_usd is None:
        return None
    return main.price_usd, main


def _links(item: dict[str, Any]) -> tuple[list[str], list[tuple[str, str]]]:
    websites: list[str] = []
    socials: list[tuple[str, str]] = []
    for link in as_list(item.get("links")):
        link = as_dict(link)
        url = _url(link.get("url"))
        if url is None:
            continue
        kind = (text(link.get("type")) or "").lower()
        if kind and kind not in _WEBSITE_TYPES:
            socials.append((kind, url))
        else:
            websites.append(url)
    return websites, socials


def _info_links(info: dict[str, Any]) -> tuple[list[str], list[tuple[str, str]]]:
    websites = [u for u in (_url(as_dict(w).get("url")) for w in as_list(info.get("websites"))) if u]
    socials: list[tuple[str, str]] = []
    for social in as_list(info.get("socials")):
        social = as_dict(social)
        url = _url(social.get("url"))
        kind = (text(social.get("type")) or "link").lower()
        if url:
            socials.append((kind, url))
    return websites, socials


def icon_url(chain: str, address: str, icon: Any) -> str | None:
    """A logo URL from a profile/boost ``icon``: the URL itself, or for a bare 64-hex image
    id DexScreener's per-token image path (module docstring); None otherwise."""
    if url := _url(icon):
        return url
    raw = text(icon)
    chain_id = chains.dexscreener_chain_id(chain)
    if raw and chain_id and _IMAGE_ID.fullmatch(raw):
        return TOKEN_IMAGE_URL.format(chain_id=chain_id, address=address)
    return None


def _base_is(raw: dict[str, Any], chain: str, address: str) -> bool:
    try:
        base = text(as_dict(raw.get("baseToken")).get("address")) or ""
        return (
            chains.chain_from_dexscreener(text(raw.get("chainId"))) == chain
            and canonical_address(chain, base) == address
        )
    except ValueError:
        return False


def _item_matches(item: dict[str, Any], chain: str, address: str) -> bool:
    if chains.chain_from_dexscreener(item.get("chainId")) != chain:
        return False
    try:
        return canonical_address(chain, text(item.get("tokenAddress")) or "") == address
    except ValueError:
        return False


def profile_from_dexscreener(
    chain: str, address: str, pairs: Any, profile_item: Any = None
) -> TokenProfile | TokenFailure:
    """The token's profile from its pairs and, optionally, its token-profile or boost item.

    - name/symbol: from ``baseToken`` of its main pair (else any pair where it is base;
      else a pair where it is the quote, which still names it);
    - logo, websites, socials: from the main pair's ``info``, then from `profile_item`
      (ignored unless it is for the same chain and address);
    - markets: the pairs where it is base, most liquid first; ``main_pool`` the first.

    A token no pair names cannot be profiled (no symbol): that is a `TokenFailure`.
    """
    found = chains.get_chain(chain)
    if found is None:
        return TokenFailure(f"{chain}:{address}"[:160], f"unsupported chain {chain!r}")
    try:
        canonical = canonical_address(found.slug, address)
    except ValueError as exc:
        return TokenFailure(f"{chain}:{address}"[:160], str(exc))
    key = token_key(found.slug, canonical)
    bad_data: list[str] = []
    as_base, as_quote = _token_side_pairs(found.slug, canonical, pairs_from_payload(pairs), bad_data)
    markets = sorted_by_liquidity(pool for pool, _ in as_base)
    main_pool = markets[0] if markets else None
    raw_by_pool = {(p.chain, p.pair_address): raw for p, raw in as_base}
    ordered_raw = [raw_by_pool[(p.chain, p.pair_address)] for p in markets]

    if ordered_raw:
        named = as_dict(ordered_raw[0].get("baseToken"))
    elif as_quote:
        named = as_dict(as_quote[0].get("quoteToken"))
    else:
        named = {}
    symbol = text(named.get("symbol"))
    if symbol is None:
        if bad_data:
            return TokenFailure(key, "; ".join(dict.fromkeys(bad_data)))
        return TokenFailure(key, "no dexscreener pair names this token (no symbol)")

    info = next((as_dict(raw.get("info")) for raw in ordered_raw if as_dict(raw.get("info"))), {})
    websites, socials = _info_links(info)
    item = as_dict(profile_item)
    if item and not _item_matches(item, found.slug, canonical):
        item = {}
    item_websites, item_socials = _links(item)
    logo = _url(info.get("imageUrl")) or icon_url(found.slug, canonical, item.get("icon"))

    return TokenProfile(
        key=key,
        symbol=symbol,
        name=text(named.get("name")),
        chain=found.slug,
        address=canonical,
        contracts=(Contract(found.slug, canonical),),
        logo_url=logo,
        websites=tuple(dict.fromkeys([*websites, *item_websites])),
        socials=tuple(dict.fromkeys([*socials, *item_socials])),
        market_cap_usd=main_pool.market_cap_usd if main_pool else None,
        markets=markets,
        main_pool=main_pool,
        source=Source.DEXSCREENER.value,
    )


# --- trending ------------------------------------------------------------------------------


def _refs_from_items(items: Any, what: str) -> tuple[list[Contract], list[TokenFailure]]:
    if isinstance(items, dict):
        items = [items]
    refs: dict[str, Contract] = {}
    failures: list[TokenFailure] = []
    for raw in as_list(items):
        item = as_dict(raw)
        chain_id = text(item.get("chainId"))
        raw_address = text(item.get("tokenAddress"))
        ref = f"{chain_id}:{raw_address}"[:160]
        chain = chains.chain_from_dexscreener(chain_id)
        if chain is None:
            failures.append(TokenFailure(ref, f"dexscreener {what} on unsupported chain {chain_id!r}"))
            continue
        try:
            key = token_key(chain, raw_address or "")
        except ValueError as exc:
            failures.append(TokenFailure(ref, f"dexscreener {what}: {exc}"))
            continue
        if key not in refs:
            refs[key] = Contract(chain, key.split(":", 1)[1])
    return list(refs.values()), failures


def trending_refs_from_boosts(items: Any) -> tuple[list[Contract], list[TokenFailure]]:
    """Tokens of ``/token-boosts/{latest,top}/v1`` in API order, each once; unknown chains fail."""
    return _refs_from_items(items, "boost")


def trending_refs_from_profiles(items: Any) -> tuple[list[Contract], list[TokenFailure]]:
    """Tokens of ``/token-profiles/latest/v1`` in API order, each once; unknown chains fail."""
    return _refs_from_items(items, "token profile")
