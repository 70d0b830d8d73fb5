"""DexScreener: trending discovery (boosts, profiles) and on-chain pair prices.

Budgets: 300 requests/min for pair endpoints, a separate 60/min for the boosts and
profiles endpoints (their own limiter, "profiles"). `/tokens/v1` takes up to 30
addresses per request and answers a bare array of pairs ([] when nothing is found).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TypedDict, TypeVar

from shared.config import DexScreenerSettings

from .batching import address_list_segment, chunks, path_segment, unique
from .http import UpstreamHttp
from .jsonbody import JsonShape
from .parallel import in_parallel

API = "dexscreener"
PROFILES_LIMITER = "profiles"
TOP_BOOSTS_PATH = "/token-boosts/top/v1"
LATEST_BOOSTS_PATH = "/token-boosts/latest/v1"
LATEST_PROFILES_PATH = "/token-profiles/latest/v1"
TOKENS_BATCH = 30

T = TypeVar("T")


# The fields of a pair a pool is made of (`normalize_dexscreener_pair`): a pricing answer is
# decoded into these alone. Of ~3.5 KB per token, `info`, `txns`, `priceChange` and most of
# `volume`/`liquidity` are skipped unread, and with them most of the numbers each decoded
# to a bounded Decimal. Every kept value is `Any`, so its type is still judged by the
# normaliser, pair by pair (`JsonShape`).
class _TokenSide(TypedDict, total=False):
    address: Any
    symbol: Any


class _Liquidity(TypedDict, total=False):
    usd: Any


class _Volume(TypedDict, total=False):
    h24: Any


class PoolFields(TypedDict, total=False):
    """What a pool needs of one pair object of `/tokens/v1`."""

    chainId: Any
    dexId: Any
    url: Any
    pairAddress: Any
    baseToken: _TokenSide
    quoteToken: _TokenSide
    priceNative: Any
    priceUsd: Any
    liquidity: _Liquidity
    volume: _Volume
    fdv: Any
    marketCap: Any
    pairCreatedAt: Any


POOL_PAIRS = JsonShape(list[PoolFields])
"""A `/tokens/v1` answer as pools read it: pass as `shape=` where only pools are made."""


class DexScreenerClient:
    """DexScreener REST client over one `UpstreamHttp`."""

    def __init__(self, http: UpstreamHttp):
        self.http = http

    @classmethod
    def from_settings(cls, settings: DexScreenerSettings, **http_options: Any) -> DexScreenerClient:
        """Build the client and its HTTP layer, with the second limiter for boosts/profiles."""
        limits = {PROFILES_LIMITER: settings.profiles_rate_limit_per_minute}
        return cls(UpstreamHttp(API, settings, extra_rate_limits=limits, **http_options))

    def top_boosts(self) -> list[dict[str, Any]]:
        """Tokens with the most active boosts: `[{chainId, tokenAddress, totalAmount, ...}]`."""
        return self._profiles_endpoint(TOP_BOOSTS_PATH)

    def latest_boosts(self) -> list[dict[str, Any]]:
        """The latest boosted tokens."""
        return self._profiles_endpoint(LATEST_BOOSTS_PATH)

    def latest_profiles(self) -> list[dict[str, Any]]:
        """The latest token profiles (icon, description, links)."""
        return self._profiles_endpoint(LATEST_PROFILES_PATH)

    def token_pairs(self, chain_id: str, addresses: Sequence[str]) -> list[dict[str, Any]]:
        """All pairs of the given tokens on one chain: one GET /tokens/v1 per 30 addresses, sent
        side by side, concatenated in order."""
        answers = self.token_pairs_per_batch(chain_id, addresses, lambda pairs: pairs)
        return [pair for answer in answers for pair in answer]

    def token_pairs_per_batch(
        self,
        chain_id: str,
        addresses: Sequence[str],
        handle: Callable[[list[dict[str, Any]]], T],
        *,
        shape: JsonShape | None = None,
    ) -> list[T]:
        """`handle` applied to each answer of `token_pairs`, in order.

        Each answer (~0.5 MB of decoded pairs per 30 addresses) is handled in the thread that
        received it and dropped once handled, so a job waiting for its last batch does not
        hold all the others: that was the price function's largest memory under rate limits.
        `shape=POOL_PAIRS` decodes only the fields pools are made of.
        """
        chain = path_segment(chain_id, "chain id")
        paths = [
            f"/tokens/v1/{chain}/{address_list_segment(batch)}" for batch in chunks(unique(addresses), TOKENS_BATCH)
        ]
        return in_parallel([partial(self._handled_answer, path, handle, shape) for path in paths])

    def _handled_answer(self, path: str, handle: Callable[[list[dict[str, Any]]], T], shape: JsonShape | None) -> T:
        return handle(self.http.get_json(path, expect=list, shape=shape))

    def _profiles_endpoint(self, path: str) -> list[dict[str, Any]]:
        body = self.http.get_json(path, limiter=PROFILES_LIMITER, expect=(list, dict))
        # The reference renders one object; the live API answers an array. Accept both.
        return body if isinstance(body, list) else [body]
