"""GeckoTerminal payloads (JSON:API) -> trending refs, profiles, pools and USD prices.

GeckoTerminal is the first fallback after DexScreener for trending tokens. Its quirks:

- resource ids are ``<network>_<address>`` and network ids may contain underscores
  (``polygon_pos``), so ids are split on the longest known network prefix;
- every amount is a decimal string, sometimes with 60+ significant digits: kept exact;
- ``price_usd`` is null for launchpad bonding-curve tokens: no price, never zero;
- Solana mints keep their case; EVM addresses are canonicalised (lower-case).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, NamedTuple

from shared.crawler.domain import chains
from shared.crawler.domain.pools import sorted_by_liquidity
from shared.crawler.domain.sources import Source
from shared.crawler.domain.tokens import canonical_address, canonical_pool_address, token_key
from shared.crawler.models import Contract, Pool, TokenFailure, TokenProfile
from shared.errors import BadWireValue
from shared.wire import (
    as_dict,
    as_list,
    datetime_from_iso,
    text,
    to_decimal,
    to_int,
    to_positive_decimal,
)

POOL_URL = "https://www.geckoterminal.com/{network}/pools/{address}"


class GeckoTerminalTokens(NamedTuple):
    """Result of `profiles_from_tokens_multi`."""

    profiles: list[TokenProfile]
    usd_prices: dict[str, Decimal]  # token key -> USD price; tokens without a price are absent
    failures: list[TokenFailure]  # unusable entries, and tokens that have no USD price


def split_resource_id(resource_id: Any) -> tuple[str, str] | None:
    """``("polygon_pos", "0xabc")`` from ``"polygon_pos_0xabc"``; None if no known network prefix."""
    raw = text(resource_id)
    if raw is None:
        return None
    matches = [n for n in chains.geckoterminal_networks() if raw.startswith(n + "_")]
    if not matches:
        return None
    network = max(matches, key=len)
    address = raw[len(network) + 1 :]
    return (network, address) if address else None


def _relationship_id(resource: dict[str, Any], name: str) -> str | None:
    return text(as_dict(as_dict(as_dict(resource.get("relationships")).get(name)).get("data")).get("id"))


def _included_by_id(payload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    included: dict[str, dict[str, Any]] = {}
    for resource in as_list(payload.get("included")):
        resource = as_dict(resource)
        if rid := text(resource.get("id")):
            included.setdefault(rid, resource)
    return included


def _token_ref(token_id: str | None, included: dict[str, dict[str, Any]]) -> tuple[str, str] | str:
    """(chain, canonical address) of a token resource id, or the reason it is unusable."""
    split = split_resource_id(token_id)
    if split is None:
        return f"geckoterminal token id {token_id!r} has no known network"
    network, address = split
    chain = chains.chain_from_geckoterminal(network)
    if chain is None:  # cannot happen for a known prefix; kept for safety
        return f"geckoterminal network {network!r} is not supported"
    # The included token's own address is authoritative; the id suffix is the fallback.
    address = text(as_dict(as_dict(included.get(token_id or "")).get("attributes")).get("address")) or address
    try:
        return chain, canonical_address(chain, address)
    except ValueError as exc:
        return f"geckoterminal token {token_id!r}: {exc}"


def _data_list(payload: dict[str, Any]) -> list[dict[str, Any]]:
    data = payload.get("data")
    if isinstance(data, dict):
        return [data]
    return [d for d in as_list(data) if isinstance(d, dict)]


def trending_refs_from_pools(payload: Any) -> tuple[list[Contract], list[TokenFailure]]:
    """Base tokens of ``trending_pools`` (global or per network), in order, each once."""
    body = as_dict(payload)
    included = _included_by_id(body)
    refs: dict[str, Contract] = {}
    failures: list[TokenFailure] = []
    for pool in _data_list(body):
        base_id = _relationship_id(pool, "base_token")
        if base_id is None:
            failures.append(TokenFailure(str(pool.get("id"))[:160], "geckoterminal pool without a base token"))
            continue
        ref = _token_ref(base_id, included)
        if isinstance(ref, str):
            failures.append(TokenFailure(base_id[:160], ref))
            continue
        chain, address = ref
        refs.setdefault(f"{chain}:{address}", Contract(chain, address))
    return list(refs.values()), failures


def pool_from_geckoterminal(resource: Any, included: dict[str, dict[str, Any]] | None = None) -> Pool | TokenFailure:
    """A ``pool`` resource as a `Pool` (price and liquidity in USD), or why it is unusable."""
    resource = as_dict(resource)
    included = included or {}
    attributes = as_dict(resource.get("attributes"))
    pool_id = text(resource.get("id")) or ""
    split = split_resource_id(pool_id)
    base = _token_ref(_relationship_id(resource, "base_token"), included)
    if split is None:
        return TokenFailure(pool_id[:160], "geckoterminal pool id without a known network")
    if isinstance(base, str):
        return TokenFailure(pool_id[:160], base)
    network, id_address = split
    chain, base_address = base
    try:
        pool_address = canonical_pool_address(chain, text(attributes.get("address")) or id_address)
    except ValueError as exc:
        return TokenFailure(pool_id[:160], f"geckoterminal pool unusable: {exc}")
    quote_id = _relationship_id(resource, "quote_token")
    quote = _token_ref(quote_id, included)
    quote_attributes = as_dict(as_dict(included.get(quote_id or "")).get("attributes"))
    name_parts = (text(attributes.get("name")) or "").split(" / ")
    quote_symbol = text(quote_attributes.get("symbol")) or (name_parts[1].strip() if len(name_parts) == 2 else "")
    try:
        return Pool(
            chain=chain,
            dex=_relationship_id(resource, "dex") or "unknown",
            pair_address=pool_address,
            base_address=base_address,
            quote_symbol=quote_symbol,
            quote_address=None if isinstance(quote, str) else quote[1],
            price_usd=to_positive_decimal(attributes.get("base_token_price_usd"), "base_token_price_usd"),
            price_native=to_positive_decimal(
                attributes.get("base_token_price_quote_token"), "base_token_price_quote_token"
            ),
            liquidity_usd=_non_negative(attributes.get("reserve_in_usd"), "reserve_in_usd"),
            volume_24h_usd=_non_negative(as_dict(attributes.get("volume_usd")).get("h24"), "volume_usd.h24"),
            fdv_usd=to_positive_decimal(attributes.get("fdv_usd"), "fdv_usd"),
            market_cap_usd=to_positive_decimal(attributes.get("market_cap_usd"), "market_cap_usd"),
            url=POOL_URL.format(network=network, address=pool_address),
            created_at=datetime_from_iso(attributes.get("pool_created_at")),
        )
    except BadWireValue as exc:  # one absurd number: this pool is unusable, not the answer
        return TokenFailure(pool_id[:160], f"geckoterminal pool: {exc}")


def _non_negative(value: Any, field: str = "") -> Decimal | None:
    number = to_decimal(value, field)
    return number if number is not None and number >= 0 else None


def profiles_from_tokens_multi(network: str, payload: Any) -> GeckoTerminalTokens:
    """Profiles and USD prices from ``/networks/{network}/tokens/multi/{addresses}``.

    Also reads the single-token endpoint (``data`` as one object). Markets are the
    token's ``top_pools`` found in ``included`` where it is the base token. A null
    ``price_usd`` (bonding-curve tokens) means no price: the token gets a profile, no
    entry in ``usd_prices``, and a failure saying why.
    """
    chain = chains.chain_from_geckoterminal(network)
    if chain is None:
        return GeckoTerminalTokens([], {}, [TokenFailure(str(network)[:80], "unsupported geckoterminal network")])
    body = as_dict(payload)
    included = _included_by_id(body)
    profiles: list[TokenProfile] = []
    prices: dict[str, Decimal] = {}
    failures: list[TokenFailure] = []
    seen: set[str] = set()
    for resource in _data_list(body):
        attributes = as_dict(resource.get("attributes"))
        raw_address = text(attributes.get("address")) or (split_resource_id(resource.get("id")) or ("", ""))[1]
        try:
            address = canonical_address(chain, raw_address)
        except ValueError as exc:
            failures.append(TokenFailure(f"{chain}:{raw_address}"[:160], f"geckoterminal: {exc}"))
            continue
        key = token_key(chain, address)
        symbol = text(attributes.get("symbol"))
        if symbol is None:
            failures.append(TokenFailure(key, "geckoterminal token without a symbol"))
            continue
        if key in seen:
            continue
        seen.add(key)
        pools: list[Pool] = []
        for pool_ref in as_list(as_dict(as_dict(resource.get("relationships")).get("top_pools")).get("data")):
            pool_resource = included.get(text(as_dict(pool_ref).get("id")) or "")
            pool = pool_from_geckoterminal(pool_resource, included) if pool_resource else None
            if isinstance(pool, Pool) and pool.base_address == address:
                pools.append(pool)
        markets = sorted_by_liquidity(pools)
        try:
            decimals = to_int(attributes.get("decimals"), "decimals")
            market_cap = to_positive_decimal(attributes.get("market_cap_usd"), "market_cap_usd")
            price = to_positive_decimal(attributes.get("price_usd"), "price_usd")
        except BadWireValue as exc:
            failures.append(TokenFailure(key, f"geckoterminal: {exc}"))
            continue
        profiles.append(
            TokenProfile(
                key=key,
                symbol=symbol,
                name=text(attributes.get("name")),
                chain=chain,
                address=address,
                contracts=(Contract(chain, address, decimals),),
                decimals=decimals,
                logo_url=_image(attributes.get("image_url")),
                coingecko_id=text(attributes.get("coingecko_coin_id")),
                market_cap_usd=market_cap,
                markets=markets,
                main_pool=markets[0] if markets else None,
                source=Source.GECKOTERMINAL.value,
            )
        )
        if price is None:
            failures.append(TokenFailure(key, f"geckoterminal: no USD price ({attributes.get('price_usd')!r})"))
        else:
            prices[key] = price
    return GeckoTerminalTokens(profiles, prices, failures)


def _image(value: Any) -> str | None:
    url = text(value)
    # GeckoTerminal answers "missing.png" for tokens without a logo: that is no logo.
    if not url or not url.lower().startswith(("https://", "http://")) or url.endswith("missing.png"):
        return None
    return url


def usd_prices_from_simple_token_price(network: str, payload: Any) -> tuple[dict[str, Decimal], list[TokenFailure]]:
    """``/simple/networks/{network}/token_price/{addresses}`` -> ``{token key: USD price}``.

    Unknown addresses are silently dropped by the API, so a token absent here is simply
    not priced; a present but null/zero price is a failure.
    """
    chain = chains.chain_from_geckoterminal(network)
    if chain is None:
        return {}, [TokenFailure(str(network)[:80], "unsupported geckoterminal network")]
    attributes = as_dict(as_dict(as_dict(payload).get("data")).get("attributes"))
    prices: dict[str, Decimal] = {}
    failures: list[TokenFailure] = []
    for address, raw in as_dict(attributes.get("token_prices")).items():
        try:
            key = token_key(chain, address)
        except ValueError as exc:
            failures.append(TokenFailure(f"{chain}:{address}"[:160], f"geckoterminal: {exc}"))
            continue
        try:
            price = to_positive_decimal(raw, "token_prices")
        except BadWireValue as exc:
            failures.append(TokenFailure(key, f"geckoterminal: {exc}"))
            continue
        if price is None:
            failures.append(TokenFailure(key, f"geckoterminal: no USD price ({raw!r})"))
        else:
            prices[key] = price
    return prices, failures
