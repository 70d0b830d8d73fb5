"""1inch Classic Swap `GET /swap/v6.0/{chainId}/quote` read as a `BridgeEstimate` (oneinch.swap_v6.quote.arbitrum_weth_usdc.json).

Same-chain only: the aggregator check beside the bridges. Without the include* flags the
answer is only `{"dstAmount": "<base units>"}`: the output, no duration, no USD fees. The
tokens are the ones asked in the path and query (nothing in the answer names them).
"""

from __future__ import annotations

from typing import Any

from .bridges import BridgeEstimate, BridgeRoute, QuoteAnomaly, base_units_field, field_of, units


def quote_path(route: BridgeRoute) -> str:
    """The path of the quote for `route` (chain id in the path)."""
    return f"/swap/v6.0/{route.source.chain_id}/quote"


def quote_params(route: BridgeRoute) -> dict[str, str]:
    return {"src": route.source.token, "dst": route.destination.token, "amount": str(route.base_units)}


def parse_quote(body: Any, route: BridgeRoute) -> BridgeEstimate:
    """The estimate of one 1inch quote for `route`; `QuoteAnomaly` when it is none."""
    if not isinstance(body, dict):
        raise QuoteAnomaly("answer is not an object")
    out = base_units_field(field_of(body, "dstAmount"), "dstAmount")
    return BridgeEstimate(
        output_amount=units(out, route.destination.decimals),
        output_base_units=out,
        duration_seconds=None,
        fees_usd=None,
        tool=None,
    )
