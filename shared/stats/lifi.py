"""LI.FI `GET /v1/quote` answers read as a `BridgeEstimate` (tests/fixtures/upstream/lifi.quote.openapi_example.json).

The answer is one Step: `action` names the tokens and chains, `estimate` the amounts in base
units as decimal strings, `executionDuration` in seconds (a number; old answers lack it),
`feeCosts[]` and `gasCosts[]` with their USD values as strings. The quote must be for the
tokens, chains and input amount asked, or it is a `QuoteAnomaly`. Errors are
`{"message", "code"}` (1002 NoQuoteError with HTTP 404): `no_route_code`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .bridges import (
    BridgeEstimate,
    BridgeRoute,
    QuoteAnomaly,
    base_units_field,
    check_token,
    decimal_field,
    field_of,
    units,
)

QUOTE_PATH = "/v1/quote"
# 1002 NoQuoteError; 1011 ValidationError is a configuration problem, not a missing route.
NO_ROUTE_CODES = frozenset({1002})


def quote_params(route: BridgeRoute) -> dict[str, str]:
    """The query of `GET /v1/quote` for `route`."""
    return {
        "fromChain": str(route.source.chain_id),
        "toChain": str(route.destination.chain_id),
        "fromToken": route.source.token,
        "toToken": route.destination.token,
        "fromAmount": str(route.base_units),
        "fromAddress": route.quote_address,
    }


def parse_quote(body: Any, route: BridgeRoute) -> BridgeEstimate:
    """The estimate of one LI.FI quote for `route`; `QuoteAnomaly` when it is none."""
    action = field_of(body, "action")
    estimate = field_of(body, "estimate")
    source, destination = field_of(body, "action", "fromToken"), field_of(body, "action", "toToken")
    check_token(source.get("chainId"), source.get("address"), source.get("decimals"), route.source, "fromToken")
    check_token(
        destination.get("chainId"),
        destination.get("address"),
        destination.get("decimals"),
        route.destination,
        "toToken",
    )
    if action.get("fromChainId") != route.source.chain_id or action.get("toChainId") != route.destination.chain_id:
        raise QuoteAnomaly(
            f"quote is for chains {action.get('fromChainId')!r} -> {action.get('toChainId')!r},"
            f" not {route.source.chain_id} -> {route.destination.chain_id}"
        )
    asked = base_units_field(field_of(body, "estimate", "fromAmount"), "estimate.fromAmount")
    if asked != route.base_units:
        raise QuoteAnomaly(f"quote is for {asked} base units in, not the {route.base_units} asked")
    out = base_units_field(field_of(body, "estimate", "toAmount"), "estimate.toAmount")
    duration = decimal_field(estimate.get("executionDuration"), "estimate.executionDuration", required=False)
    return BridgeEstimate(
        output_amount=units(out, route.destination.decimals),
        output_base_units=out,
        duration_seconds=duration,
        fees_usd=_costs_usd(estimate),
        tool=body.get("tool") if isinstance(body.get("tool"), str) else None,
    )


def _costs_usd(estimate: dict[str, Any]) -> Decimal | None:
    total, seen = Decimal(0), False
    for kind in ("feeCosts", "gasCosts"):
        costs = estimate.get(kind)
        if costs is None:
            continue
        if not isinstance(costs, list):
            raise QuoteAnomaly(f"estimate.{kind} is not a list")
        for i, cost in enumerate(costs):
            amount = decimal_field(field_of(cost, "amountUSD"), f"estimate.{kind}[{i}].amountUSD")
            total += amount or 0
            seen = True
    return total if seen or "gasCosts" in estimate else None
