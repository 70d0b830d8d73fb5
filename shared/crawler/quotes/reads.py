"""Read models of the quotes API: token references, profiles, audits, token lists.

A client names a token by a **token reference**, one of:

- its token key: `native:bitcoin`, `ethereum:0x514910771af9ca656af840dff83e8264ecf986ca`;
- a contract it is known by, `<chain>:<address>` (a chain slug of shared.crawler.domain.chains and,
  on EVM, any case: `bsc:0xF8A0...51bD`), looked up in `token_contracts`;
- a symbol (no colon): `BTC`. Symbols do not identify tokens (a Solana "PEPE" is not the
  ERC-20 PEPE): the current top-100 member with the symbol wins; otherwise a symbol carried by
  one stored token resolves to it, and by several is ambiguous (the candidates are returned).

Every lookup is by an index: tokens' primary key, token_contracts' (chain, address),
`idx_tokens_symbol` (upper(symbol)), token_audits' and token_latest_prices' primary keys.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from shared.crawler.domain import tokens as token_ids
from shared.db.connection import Connection

Conn = Connection  # what the pool lends: pg8000 with cached statement translation

MAX_SYMBOL_LENGTH = 64
MAX_REF_LENGTH = 200
AMBIGUOUS_CANDIDATES = 10


class BadReference(ValueError):
    """A token reference that can never name a token (malformed key, address or symbol)."""


@dataclass(frozen=True, slots=True)
class ParsedRef:
    """A token reference, parsed: `key` is tried first, then `contract`, or `symbol`."""

    ref: str
    key: str | None = None
    contract: tuple[str, str] | None = None
    symbol: str | None = None


def parse_ref(ref: str) -> ParsedRef:
    """Parse one token reference; BadReference with the reason if it is malformed."""
    text = ref.strip()
    if not text:
        raise BadReference("empty token reference")
    if len(text) > MAX_REF_LENGTH:
        raise BadReference(f"token reference longer than {MAX_REF_LENGTH} characters")
    if ":" not in text:
        if len(text) > MAX_SYMBOL_LENGTH or not text.isprintable():
            raise BadReference(f"{text[:80]!r} is not a symbol (printable, at most {MAX_SYMBOL_LENGTH} characters)")
        return ParsedRef(ref, symbol=text.upper())
    prefix, rest = text.split(":", 1)
    try:
        if prefix.lower() == token_ids.NATIVE_PREFIX:
            return ParsedRef(ref, key=token_ids.native_token_key(rest))
        key = token_ids.token_key(prefix.lower(), rest)
    except ValueError as exc:
        raise BadReference(f"{text[:80]!r} is neither a token key nor a <chain>:<address> contract: {exc}") from None
    chain, address = key.split(":", 1)
    return ParsedRef(ref, key=key, contract=(chain, address))


@dataclass(frozen=True, slots=True)
class Resolution:
    """What a reference resolved to: a token key, or why not (HTTP status and reason)."""

    ref: str
    token_key: str | None
    status: int = 200
    reason: str = ""
    candidates: tuple[str, ...] = ()


def resolve_refs(conn: Conn, refs: Sequence[ParsedRef]) -> dict[str, Resolution]:
    """Resolve parsed references (three indexed queries at most, whatever their number)."""
    keys = [r.key for r in refs if r.key]
    found_keys = (
        {row[0] for row in conn.run("SELECT token_key FROM tokens WHERE token_key = ANY(CAST(:k AS text[]))", k=keys)}
        if keys
        else set()
    )

    contracts = [r.contract for r in refs if r.contract and r.key not in found_keys]
    by_contract: dict[tuple[str, str], str] = {}
    if contracts:
        rows = conn.run(
            "SELECT tc.chain, tc.address, tc.token_key FROM unnest(CAST(:c AS text[]), CAST(:a AS text[])) AS x(c, a)"
            " JOIN token_contracts tc ON tc.chain = x.c AND tc.address = x.a",
            c=[c for c, _ in contracts],
            a=[a for _, a in contracts],
        )
        by_contract = {(r[0], r[1]): r[2] for r in rows}

    symbols = sorted({r.symbol for r in refs if r.symbol})
    by_symbol: dict[str, list[tuple[str, int | None]]] = {}
    if symbols:
        rows = conn.run(
            "SELECT upper(t.symbol), t.token_key, m.rank FROM tokens t"
            " LEFT JOIN token_set_members m ON m.token_key = t.token_key AND m.token_set = 'top100'"
            " AND m.left_at IS NULL"
            " WHERE upper(t.symbol) = ANY(CAST(:s AS text[]))"
            " ORDER BY upper(t.symbol), m.rank NULLS LAST, t.market_cap_rank NULLS LAST, t.token_key",
            s=symbols,
        )
        for symbol, key, rank in rows:
            by_symbol.setdefault(symbol, []).append((key, rank))

    out: dict[str, Resolution] = {}
    for r in refs:
        if r.key in found_keys:
            out[r.ref] = Resolution(r.ref, r.key)
        elif r.contract and r.contract in by_contract:
            out[r.ref] = Resolution(r.ref, by_contract[r.contract])
        elif r.symbol:
            out[r.ref] = _by_symbol(r, by_symbol.get(r.symbol, []))
        else:
            what = "token key" if r.contract is None else "token key or contract"
            out[r.ref] = Resolution(r.ref, None, 404, f"unknown token: no {what} {r.key!r} is stored")
    return out


def _by_symbol(ref: ParsedRef, candidates: list[tuple[str, int | None]]) -> Resolution:
    if not candidates:
        return Resolution(ref.ref, None, 404, f"unknown token: no stored token has the symbol {ref.symbol!r}")
    key, rank = candidates[0]
    if rank is not None or len(candidates) == 1:
        return Resolution(ref.ref, key)
    keys = tuple(k for k, _ in candidates[:AMBIGUOUS_CANDIDATES])
    return Resolution(
        ref.ref,
        None,
        409,
        f"ambiguous symbol {ref.symbol!r}: {len(candidates)} tokens carry it and none is in the "
        "top 100; name one by token key or contract",
        keys,
    )


# --- profiles -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Audit:
    """A token's current audit by one provider."""

    provider: str
    score: Decimal
    is_verified: bool
    is_honeypot: bool | None
    buy_tax: Decimal | None
    sell_tax: Decimal | None
    report_url: str | None
    flags: dict[str, Any]
    audited_at: datetime


@dataclass(frozen=True, slots=True)
class Profile:
    """A stored token: identity, metadata, set memberships and current audits (newest first)."""

    token_key: str
    symbol: str
    name: str | None
    chain: str | None
    contract: str | None
    decimals: int | None
    logo_url: str | None
    contracts: dict[str, str]
    websites: list[str]
    socials: list[dict[str, str]]
    tags: list[str]
    coingecko_id: str | None
    market_cap_usd: Decimal | None
    market_cap_rank: int | None
    main_pool: dict[str, Any] | None
    is_stablecoin: bool
    source: str
    first_seen_at: datetime
    last_updated_at: datetime
    sets: dict[str, int | None] = field(default_factory=dict)  # token set -> rank
    audits: list[Audit] = field(default_factory=list)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def profile(conn: Conn, token_key: str) -> Profile | None:
    """The token's profile with its current set memberships and audits; None if unknown."""
    rows = conn.run(
        "SELECT token_key, symbol, name, chain, contract, decimals, logo_url, contracts, websites, socials, tags,"
        " coingecko_id, market_cap_usd, market_cap_rank, main_pool, is_stablecoin, source, first_seen_at,"
        " last_updated_at FROM tokens WHERE token_key = :k",
        k=token_key,
    )
    if not rows:
        return None
    r = rows[0]
    sets = {
        s: rank
        for s, rank in conn.run(
            "SELECT token_set, rank FROM token_set_members WHERE token_key = :k AND left_at IS NULL ORDER BY token_set",
            k=token_key,
        )
    }
    audits = [
        Audit(a[0], a[1], a[2], a[3], a[4], a[5], a[6], _json(a[7]) or {}, a[8])
        for a in conn.run(
            "SELECT audit_provider, audit_score, is_verified, is_honeypot, buy_tax, sell_tax, report_url, flags,"
            " audited_at FROM token_audits WHERE token_key = :k ORDER BY audited_at DESC, audit_provider",
            k=token_key,
        )
    ]
    return Profile(
        r[0],
        r[1],
        r[2],
        r[3],
        r[4],
        r[5],
        r[6],
        _json(r[7]) or {},
        _json(r[8]) or [],
        _json(r[9]) or [],
        list(r[10] or []),
        r[11],
        r[12],
        r[13],
        _json(r[14]),
        r[15],
        r[16],
        r[17],
        r[18],
        sets,
        audits,
    )


# --- lists --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListedToken:
    """One row of a token list: identity, rank in the listed set, latest price if any."""

    token_key: str
    symbol: str
    name: str | None
    chain: str | None
    contract: str | None
    rank: int | None
    market_cap_usd: Decimal | None
    price_usdt: Decimal | None
    observed_at: datetime | None
    sort_rank: int  # the paging position (rank, or a large number when unranked)


UNRANKED = 2**31 - 1


def list_tokens(conn: Conn, token_set: str | None, *, after: tuple[int, str] | None, limit: int) -> list[ListedToken]:
    """Current members of `token_set` by rank (or every token by key), after a paging position."""
    after_rank, after_key = after if after else (-1, "")
    if token_set:
        rows = conn.run(
            "SELECT t.token_key, t.symbol, t.name, t.chain, t.contract, m.rank, t.market_cap_usd, l.price_usdt,"
            " l.observed_at, COALESCE(m.rank, :unranked) AS pos"
            " FROM token_set_members m JOIN tokens t ON t.token_key = m.token_key"
            " LEFT JOIN token_latest_prices l ON l.token_key = t.token_key"
            " WHERE m.token_set = :set AND m.left_at IS NULL"
            " AND (COALESCE(m.rank, :unranked), t.token_key) > (:ar, :ak)"
            " ORDER BY pos, t.token_key LIMIT :n",
            set=token_set,
            unranked=UNRANKED,
            ar=after_rank,
            ak=after_key,
            n=limit,
        )
    else:
        rows = conn.run(
            "SELECT t.token_key, t.symbol, t.name, t.chain, t.contract, NULL, t.market_cap_usd, l.price_usdt,"
            " l.observed_at, 0 FROM tokens t LEFT JOIN token_latest_prices l ON l.token_key = t.token_key"
            " WHERE t.token_key > :ak ORDER BY t.token_key LIMIT :n",
            ak=after_key,
            n=limit,
        )
    return [ListedToken(*row) for row in rows]
