"""Token identity: canonical addresses and token keys (docs/architecture.md "Identity of a token").

- A token with a contract is ``<chain>:<address>``: ``chain`` is a canonical slug from
  `shared.crawler.domain.chains`; ``address`` is canonical for that chain:

  | chain kind | accepted                               | canonical form            |
  |------------|----------------------------------------|---------------------------|
  | EVM        | ``0x`` + 40 hex digits, any case        | lower-cased               |
  | Solana     | base58, 32-44 characters               | exactly as received       |
  | others     | any printable text without whitespace  | stripped, case kept       |

  Case is never folded outside EVM: base58 and bech32 addresses are case-sensitive.
- A native coin without a contract (BTC, ETH on Ethereum, SOL) is ``native:<coingecko id>``.

Invalid input raises ``ValueError`` with the reason; normalizers turn that into a
`TokenFailure` for the one token, never a crash of the job.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from shared.config import Settings
from shared.crawler.domain import chains

NATIVE_PREFIX = "native"
MAX_ADDRESS_LENGTH = 128  # same bound as the job contract (shared.crawler.jobs)

_EVM_ADDRESS = re.compile(r"0[xX][0-9a-fA-F]{40}")
# EVM pool ids: pair contracts (20 bytes) or Uniswap-v4 style pool ids (32 bytes).
_EVM_POOL_ID = re.compile(r"0[xX](?:[0-9a-fA-F]{40}|[0-9a-fA-F]{64})")
_BASE58_ADDRESS = re.compile(r"[1-9A-HJ-NP-Za-km-z]{32,44}")
_COINGECKO_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,127}")


def _require_chain(chain: str) -> str:
    found = chains.get_chain(chain)
    if found is None:
        raise ValueError(f"unknown chain {chain!r}")
    return found.slug


def _printable_without_spaces(address: str) -> bool:
    return address.isprintable() and not any(c.isspace() for c in address)


def canonical_address(chain: str, address: str) -> str:
    """The canonical form of a token contract address on `chain`; ValueError if invalid."""
    slug = _require_chain(chain)
    if not isinstance(address, str):
        raise ValueError(f"address must be a string, got {type(address).__name__}")
    stripped = address.strip()
    if not stripped:
        raise ValueError(f"empty address on {slug}")
    if chains.is_evm(slug):
        if not _EVM_ADDRESS.fullmatch(stripped):
            raise ValueError(f"{stripped[:80]!r} is not an EVM address (0x + 40 hex digits) on {slug}")
        return stripped.lower()
    if slug == "solana":
        if not _BASE58_ADDRESS.fullmatch(stripped):
            raise ValueError(f"{stripped[:80]!r} is not a Solana address (base58, 32-44 characters)")
        return stripped
    if len(stripped) > MAX_ADDRESS_LENGTH or not _printable_without_spaces(stripped):
        raise ValueError(f"{stripped[:80]!r} is not a usable address on {slug}")
    return stripped


def canonical_pool_address(chain: str, address: str) -> str:
    """The canonical id of a pool/pair on `chain` (EVM: 20- or 32-byte hex, lower-cased)."""
    slug = _require_chain(chain)
    if not isinstance(address, str) or not address.strip():
        raise ValueError(f"empty pool address on {slug}")
    stripped = address.strip()
    if chains.is_evm(slug):
        if not _EVM_POOL_ID.fullmatch(stripped):
            raise ValueError(f"{stripped[:80]!r} is not an EVM pool id on {slug}")
        return stripped.lower()
    if len(stripped) > MAX_ADDRESS_LENGTH or not _printable_without_spaces(stripped):
        raise ValueError(f"{stripped[:80]!r} is not a usable pool address on {slug}")
    return stripped


def token_key(chain: str, address: str) -> str:
    """``<chain>:<canonical address>``; one key however the address was cased on EVM."""
    slug = _require_chain(chain)
    return f"{slug}:{canonical_address(slug, address)}"


def native_token_key(coingecko_id: str) -> str:
    """``native:<coingecko id>`` for a coin without a contract (``native:bitcoin``)."""
    if not isinstance(coingecko_id, str):
        raise ValueError(f"coingecko id must be a string, got {type(coingecko_id).__name__}")
    cg_id = coingecko_id.strip().lower()
    if not _COINGECKO_ID.fullmatch(cg_id):
        raise ValueError(f"{coingecko_id[:80]!r} is not a CoinGecko coin id")
    return f"{NATIVE_PREFIX}:{cg_id}"


def split_token_key(key: str) -> tuple[str, str]:
    """``(chain, address)`` or ``("native", coingecko_id)`` from a token key; ValueError if invalid.

    The key is re-validated, so a key that parses is canonical.
    """
    if not isinstance(key, str) or ":" not in key:
        raise ValueError(f"{str(key)[:80]!r} is not a token key (<chain>:<address> or native:<id>)")
    prefix, rest = key.split(":", 1)
    canonical = native_token_key(rest) if prefix == NATIVE_PREFIX else token_key(prefix, rest)
    if canonical != key:
        raise ValueError(f"{key[:80]!r} is not canonical; expected {canonical!r}")
    return prefix, rest


def is_native_key(key: str) -> bool:
    """Whether a token key names a native coin (``native:<id>``)."""
    return key.startswith(NATIVE_PREFIX + ":")


def is_stablecoin(
    symbol: str | None,
    stablecoins: frozenset[str],
    coingecko_id: str | None = None,
    stablecoin_ids: frozenset[str] = frozenset(),
    *,
    variant_pattern: re.Pattern[str] | None = None,
    categories: frozenset[str] = frozenset(),
    tags: Iterable[str] = (),
) -> bool:
    """Whether a token is excluded as a stablecoin (never priced or scheduled); see
    `stablecoin_rule` for the rules and their arguments."""
    return (
        stablecoin_rule(
            symbol,
            stablecoins,
            coingecko_id,
            stablecoin_ids,
            variant_pattern=variant_pattern,
            categories=categories,
            tags=tags,
        )
        is not None
    )


def stablecoin_rule(
    symbol: str | None,
    stablecoins: frozenset[str],
    coingecko_id: str | None = None,
    stablecoin_ids: frozenset[str] = frozenset(),
    *,
    variant_pattern: re.Pattern[str] | None = None,
    categories: frozenset[str] = frozenset(),
    tags: Iterable[str] = (),
) -> str | None:
    """Which rule excludes the token as a stablecoin, or None when none does. In order:

    - ``STABLECOINS``: the symbol (case-insensitive) is on the configured list;
    - ``STABLECOIN_VARIANT_PATTERN``: the symbol is a bridged/wrapped variant of a listed
      one (``USDC.E``, ``USDT.e``, ``axlUSDC``): `variant_pattern` matches it and its
      ``base`` group is on the list;
    - the CoinGecko "stablecoins" category: `coingecko_id` is in `stablecoin_ids`;
    - ``STABLECOIN_CATEGORIES``: a CoinGecko category the token carries (its `tags`, such
      as "Bridged USDC") is one of `categories` (lower-case).
    """
    upper = symbol.strip().upper() if symbol else ""
    if upper and upper in stablecoins:
        return f"stablecoin {upper}: on the list (STABLECOINS)"
    if upper and variant_pattern is not None:
        match = variant_pattern.fullmatch(upper)
        base = match.groupdict().get("base") if match else None
        if base and base in stablecoins:
            return f"stablecoin {upper}: a bridged/wrapped {base} (STABLECOIN_VARIANT_PATTERN)"
    if coingecko_id and coingecko_id.strip().lower() in stablecoin_ids:
        return f"stablecoin {coingecko_id}: in CoinGecko's stablecoins category"
    for tag in tags:
        if tag.strip().lower() in categories:
            return f"stablecoin {upper or coingecko_id}: CoinGecko category {tag!r} (STABLECOIN_CATEGORIES)"
    return None


def configured_stablecoin_rule(
    settings: Settings, symbol: str | None, coingecko_id: str | None = None, tags: tuple[str, ...] = ()
) -> str | None:
    """Which of the configured rules (STABLECOINS, STABLECOIN_VARIANT_PATTERN, STABLECOIN_CATEGORIES)
    excludes this token as a stablecoin, or None (`stablecoin_rule` with the settings' values)."""
    return stablecoin_rule(
        symbol,
        settings.stablecoin_symbols,
        coingecko_id,
        variant_pattern=settings.stablecoin_variant_regex,
        categories=settings.stablecoin_category_names,
        tags=tags,
    )
