"""Relay `POST /quote/v2` answers read as a `BridgeEstimate` (tests/fixtures/upstream/relay.quote_v2.base_to_optimism_eth.json).

`details.currencyIn` / `currencyOut` hold `{currency: {chainId, address, decimals}, amount}`
with amounts in base units as decimal strings; `details.timeEstimate` is a number of seconds;
`fees.gas`, `fees.relayer` and `fees.app` carry `amountUsd` (decimal strings). `relayer` is
`relayerGas` + `relayerService` (the sample adds up exactly), so those two are not counted
again. Errors are `{"message", "errorCode"}` with string codes (relay.error.invalid_input_currency.json).
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

QUOTE_PATH = "/quote/v2"
# Relay's "no quote for this" codes (handling-errors.mdx); INVALID_INPUT_CURRENCY and the
# like mean our configuration is wrong and stay errors. PRICE_FETCH_FAILED and
# SERVICE_UNAVAILABLE come with 503 and are provider errors.
NO_ROUTE_CODES = frozenset(
    {"NO_QUOTES", "NO_SWAP_ROUTES_FOUND", "INSUFFICIENT_LIQUIDITY", "AMOUNT_TOO_LOW", "CHAIN_DISABLED"}
)
FEE_PARTS = ("gas", "relayer", "app")


def quote_request(route: BridgeRoute) -> dict[str, Any]:
    """The JSON body of `POST /quote/v2` for `route` (an exact-input quote)."""
    return {
        "user": route.quote_address,
        "originChainId": route.source.chain_id,
        "destinationChainId": route.destination.chain_id,
        "originCurrency": route.source.token,
        "destinationCurrency": route.destination.token,
        "amount": str(route.base_units),
        "tradeType": "EXACT_INPUT",
    }


def parse_quote(body: Any, route: BridgeRoute) -> BridgeEstimate:
    """The estimate of one Relay quote for `route`; `QuoteAnomaly` when it is none."""
    details = field_of(body, "details")
    for key, side in (("currencyIn", route.source), ("currencyOut", route.destination)):
        currency = field_of(body, "details", key, "currency")
        check_token(currency.get("chainId"), currency.get("address"), currency.get("decimals"), side, f"details.{key}")
    asked = base_units_field(field_of(body, "details", "currencyIn", "amount"), "details.currencyIn.amount")
    if asked != route.base_units:
        raise QuoteAnomaly(f"quote is for {asked} base units in, not the {route.base_units} asked")
    out = base_units_field(field_of(body, "details", "currencyOut", "amount"), "details.currencyOut.amount")
    duration = decimal_field(field_of(body, "details", "timeEstimate"), "details.timeEstimate")
    fees = field_of(body, "fees")
    total = Decimal(0)
    for part in FEE_PARTS:
        if part in fees:
            total += decimal_field(field_of(body, "fees", part, "amountUsd"), f"fees.{part}.amountUsd") or 0
    router = (
        details.get("route", {}).get("origin", {}).get("router") if isinstance(details.get("route"), dict) else None
    )
    return BridgeEstimate(
        output_amount=units(out, route.destination.decimals),
        output_base_units=out,
        duration_seconds=duration,
        fees_usd=total,
        tool=router if isinstance(router, str) else "relay",
    )
