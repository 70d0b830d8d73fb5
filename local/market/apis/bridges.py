"""LI.FI, Relay and 1inch quotes in their real formats, each with its own latency and budget.

- `/lifi/v1/quote` (GET, LI.FI's query): one Step as in tests/fixtures/upstream/lifi.quote.openapi_example.json
  (`action`, `estimate` with base-unit decimal strings, `executionDuration` seconds, `feeCosts`,
  `gasCosts` with `amountUSD`, `transactionRequest` hex); unknown token or chain: 404
  `{"message": "No available quotes for the requested transfer", "code": 1002}`.
- `/relay/quote/v2` (POST, Relay's JSON body): `{steps, fees, details, protocol}` as in
  relay.quote_v2.base_to_optimism_eth.json (`fees.relayer` = `relayerGas` + `relayerService`,
  `details.timeEstimate` seconds); unknown currency: 400 relay.error.invalid_input_currency.json.
- `/oneinch/swap/v6.0/{chain}/quote` (GET): `{"dstAmount": "<base units>"}` only; no
  `Authorization: Bearer` key: 401; the two tokens must be on that chain.

Latency: each provider answers after a log-normal delay of its own (LI.FI slowest, it
aggregates many bridges; 1inch fastest), seeded so runs repeat; `configure(latency_scale=0)`
turns it off. Budgets, per caller IP: LI.FI 75 quotes per 2 h (its keyless limit), Relay 50
per minute, 1inch 1 per second; beyond them 429 with the provider's error envelope
(bodies DERIVED: no recorded 429 body exists for these three). Prices: USDC/USDT 1 USD, ETH/WETH 2100 USD.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Any

from local.market.apis.base import Api, ApiError, Request, Response, json_response, retry_after_header
from local.market.clock import SimClock
from local.market.universe import Universe

NATIVE = "0x0000000000000000000000000000000000000000"


@dataclass(frozen=True)
class SimToken:
    chain_id: int
    address: str
    symbol: str
    name: str
    decimals: int
    price_usd: Decimal


TOKENS = {
    (t.chain_id, t.address.lower()): t
    for t in (
        SimToken(1, "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", "USDC", "USD Coin", 6, Decimal(1)),
        SimToken(1, "0xdAC17F958D2ee523a2206206994597C13D831ec7", "USDT", "Tether USD", 6, Decimal(1)),
        SimToken(1, "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", "WETH", "Wrapped Ether", 18, Decimal(2100)),
        SimToken(1, NATIVE, "ETH", "Ether", 18, Decimal(2100)),
        SimToken(8453, "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", "USDC", "USD Coin", 6, Decimal(1)),
        SimToken(8453, NATIVE, "ETH", "Ether", 18, Decimal(2100)),
        SimToken(56, "0x55d398326f99059fF775485246999027B3197955", "USDT", "Tether USD", 18, Decimal(1)),
        SimToken(10, NATIVE, "ETH", "Ether", 18, Decimal(2100)),
    )
}
NATIVE_OF = {1: TOKENS[(1, NATIVE)], 8453: TOKENS[(8453, NATIVE)], 56: None, 10: TOKENS[(10, NATIVE)]}
# Bridging time estimates (seconds) by (from chain, to chain): L1 -> L2 deposits are slower.
LIFI_DURATION = {(1, 8453): 180, (1, 56): 420, (8453, 10): 40}
RELAY_DURATION = {(1, 8453): 12, (1, 56): 20, (8453, 10): 2}


class LogNormalLatency:
    """A seeded log-normal delay around `median_ms`, capped, scaled by `scale` (0: none)."""

    def __init__(self, median_ms: float, sigma: float, cap_ms: float, seed: int) -> None:
        self.median_ms, self.sigma, self.cap_ms, self.scale = median_ms, sigma, cap_ms, 1.0
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def draw_seconds(self) -> float:
        with self._lock:
            value = self.median_ms * math.exp(self._random.gauss(0, self.sigma))
        return min(value, self.cap_ms) * self.scale / 1000


class CallerBudget:
    """At most `limit` calls per `period` seconds per caller, on the real monotonic clock."""

    def __init__(self, limit: int, period: float) -> None:
        self.limit, self.period = limit, period
        self._calls: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def admit(self, caller: str) -> tuple[bool, int, float]:
        """(admitted, remaining, seconds until a slot frees)."""
        now = time.monotonic()
        with self._lock:
            calls = self._calls.setdefault(caller, deque())
            while calls and calls[0] <= now - self.period:
                calls.popleft()
            if len(calls) >= self.limit:
                return False, 0, calls[0] + self.period - now
            calls.append(now)
            return True, self.limit - len(calls), 0.0

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()


def _token(chain_id: Any, address: Any) -> SimToken | None:
    try:
        return TOKENS.get((int(chain_id), str(address).lower()))
    except (TypeError, ValueError):
        return None


def _output_base_units(source: SimToken, target: SimToken, amount: int, fee_usd: Decimal, drift: Decimal) -> int:
    usd_in = Decimal(amount).scaleb(-source.decimals) * source.price_usd
    usd_out = max(Decimal(0), usd_in * (1 + drift) - fee_usd)
    return int((usd_out / target.price_usd).scaleb(target.decimals).to_integral_value(ROUND_DOWN))


def _drift(now: float, seed: int) -> Decimal:
    """A slow price wobble of a few basis points (well inside the stats' output tolerance)."""
    return Decimal(repr(round(0.0004 * math.sin(now / 900 + seed), 8)))


class QuoteApi(Api):
    """What the three providers share: latency, a per-caller budget, configuration."""

    def __init__(self, universe: Universe, clock: SimClock, latency: LogNormalLatency, budget: CallerBudget) -> None:
        super().__init__(universe, clock)
        self.latency = latency
        self.budget = budget
        self.slow_factor = Decimal(1)  # multiplies every duration estimate (tests: a bridge slowing down)

    def configure(
        self,
        latency_scale: float | None = None,
        budget: int | None = None,
        reset: bool = False,
        slow_factor: Decimal | None = None,
    ) -> None:
        """Change behaviour at run time (tests); `reset` forgets the calls counted against the budget."""
        if latency_scale is not None:
            self.latency.scale = latency_scale
        if budget is not None:
            self.budget.limit = budget
        if slow_factor is not None:
            self.slow_factor = slow_factor
        if reset:
            self.budget.reset()

    def _wait(self) -> None:
        delay = self.latency.draw_seconds()
        if delay > 0:
            time.sleep(delay)

    def _caller(self, request: Request) -> str:
        return request.headers.get("X-Forwarded-For", "local")


class LifiApi(QuoteApi):
    name = "lifi"

    def __init__(self, universe: Universe, clock: SimClock) -> None:
        super().__init__(universe, clock, LogNormalLatency(450, 0.5, 4000, seed=11), CallerBudget(75, 7200))
        self.route("GET", "/v1/quote", self.quote)

    def error_response(self, status: int, retry_after: int | None) -> Response:
        if status == 429:
            return self._limited(retry_after or 60)
        return json_response({"message": f"Internal server error (HTTP {status})", "code": 1006}, status)

    def _limited(self, seconds: float) -> Response:
        body = {"message": f"Too many requests. Retry in {math.ceil(seconds)} seconds.", "code": 1005}
        headers = [("ratelimit-limit", str(self.budget.limit)), ("ratelimit-remaining", "0")]
        return json_response(body, 429, headers + [("ratelimit-reset", str(math.ceil(seconds)))])

    def quote(self, request: Request) -> Response:
        self._wait()
        admitted, remaining, wait = self.budget.admit(self._caller(request))
        if not admitted:
            return self._limited(wait)
        source = _token(request.param("fromChain"), request.param("fromToken"))
        target = _token(request.param("toChain"), request.param("toToken"))
        amount_text = request.param("fromAmount") or ""
        if not amount_text.isdigit() or not request.param("fromAddress"):
            return json_response(
                {"message": "Invalid request: fromAmount and fromAddress are required", "code": 1011}, 400
            )
        if source is None or target is None:
            return json_response({"message": "No available quotes for the requested transfer", "code": 1002}, 404)
        amount = int(amount_text)
        gas_usd, fee_usd = Decimal("1.84"), Decimal("0.25")
        out = _output_base_units(source, target, amount, gas_usd + fee_usd, _drift(self.clock.now(), 1))
        gas_token = NATIVE_OF.get(source.chain_id) or source
        duration = LIFI_DURATION.get((source.chain_id, target.chain_id), 30) * self.slow_factor
        same_chain = source.chain_id == target.chain_id
        tool = "1inch" if same_chain else "across"
        step_id = str(uuid.UUID(int=random.Random(amount + source.chain_id).getrandbits(128)))
        body = {
            "id": step_id,
            "type": "lifi",
            "tool": tool,
            "toolDetails": {
                "key": tool,
                "name": tool,
                "logoURI": f"https://raw.githubusercontent.com/lifinance/types/main/src/assets/icons/bridges/{tool}.svg",
            },
            "action": {
                "fromChainId": source.chain_id,
                "toChainId": target.chain_id,
                "fromToken": _lifi_token(source),
                "toToken": _lifi_token(target),
                "fromAmount": str(amount),
                "slippage": Decimal("0.003"),
                "fromAddress": request.param("fromAddress"),
                "toAddress": request.param("fromAddress"),
            },
            "estimate": {
                "tool": tool,
                "fromAmount": str(amount),
                "toAmount": str(out),
                "toAmountMin": str(out * 997 // 1000),
                "approvalAddress": "0x1231DEB6f5749EF6cE6943a275A1D3E7486F4EaE",
                "executionDuration": duration,
                "feeCosts": [
                    {
                        "name": "LIFI Fixed Fee",
                        "description": "Fixed fee charged by LI.FI",
                        "percentage": "0.0025",
                        "token": _lifi_token(source),
                        "amount": str(int(fee_usd / source.price_usd * 10**source.decimals)),
                        "amountUSD": str(fee_usd),
                        "included": True,
                    }
                ],
                "gasCosts": [
                    {
                        "type": "SEND",
                        "price": "12000000000",
                        "estimate": "150000",
                        "limit": "187500",
                        "amount": str(int(gas_usd / gas_token.price_usd * 10**gas_token.decimals)),
                        "amountUSD": str(gas_usd),
                        "token": _lifi_token(gas_token),
                    }
                ],
            },
            "integrator": "price-crawler-stats",
            "transactionRequest": {
                "from": request.param("fromAddress"),
                "to": "0x1231DEB6f5749EF6cE6943a275A1D3E7486F4EaE",
                "chainId": source.chain_id,
                "data": "0x",
                "value": "0x0",
                "gasPrice": "0x2cb417800",
                "gasLimit": "0x2dc6c",
            },
            "includedSteps": [],
        }
        headers = [("ratelimit-limit", str(self.budget.limit)), ("ratelimit-remaining", str(remaining))]
        return json_response(body, headers=headers)


def _lifi_token(token: SimToken) -> dict[str, Any]:
    return {
        "address": token.address,
        "symbol": token.symbol,
        "decimals": token.decimals,
        "chainId": token.chain_id,
        "name": token.name,
        "coinKey": token.symbol,
        "priceUSD": str(token.price_usd),
        "logoURI": f"https://static.debank.com/image/token/logo_url/{token.symbol.lower()}.png",
    }


class RelayApi(QuoteApi):
    name = "relay"

    def __init__(self, universe: Universe, clock: SimClock) -> None:
        super().__init__(universe, clock, LogNormalLatency(180, 0.4, 2000, seed=12), CallerBudget(50, 60))
        self.route("POST", "/quote/v2", self.quote)

    def error_response(self, status: int, retry_after: int | None) -> Response:
        if status == 429:
            return json_response(
                {"message": "Rate limit exceeded", "errorCode": "RATE_LIMITED"}, 429, retry_after_header(retry_after)
            )
        if status == 503:
            return json_response(
                {"message": "Service unavailable", "errorCode": "SERVICE_UNAVAILABLE"},
                503,
                retry_after_header(retry_after),
            )
        return json_response({"message": "Internal error", "errorCode": "INTERNAL_ERROR"}, status)

    def quote(self, request: Request) -> Response:
        self._wait()
        admitted, _, wait = self.budget.admit(self._caller(request))
        if not admitted:
            return self.error_response(429, math.ceil(wait))
        try:
            asked = json.loads(request.body or b"{}")
        except ValueError:
            raise ApiError(
                json_response({"message": "Invalid JSON body", "errorCode": "INVALID_REQUEST"}, 400)
            ) from None
        if not isinstance(asked, dict) or not str(asked.get("amount", "")).isdigit():
            raise ApiError(json_response({"message": "amount is required", "errorCode": "INVALID_REQUEST"}, 400))
        source = _token(asked.get("originChainId"), asked.get("originCurrency"))
        target = _token(asked.get("destinationChainId"), asked.get("destinationCurrency"))
        if source is None or target is None:
            return json_response(
                {"message": "Invalid input or output currency", "errorCode": "INVALID_INPUT_CURRENCY"}, 400
            )
        amount = int(asked["amount"])
        gas_token = NATIVE_OF.get(source.chain_id) or source
        gas_usd, relayer_gas_usd, service_usd = Decimal("0.92"), Decimal("0.31"), Decimal("0.40")
        out = _output_base_units(source, target, amount, relayer_gas_usd + service_usd, _drift(self.clock.now(), 2))
        user = str(asked.get("user", NATIVE))
        request_id = "0x" + uuid.UUID(int=random.Random(amount).getrandbits(128)).hex * 2

        def fee(usd: Decimal, token: SimToken) -> dict[str, Any]:
            base = int(usd / token.price_usd * 10**token.decimals)
            return {
                "currency": _relay_currency(token),
                "amount": str(base),
                "amountFormatted": str(Decimal(base).scaleb(-token.decimals)),
                "amountUsd": str(usd),
                "minimumAmount": str(base),
            }

        def amount_of(token: SimToken, base: int) -> dict[str, Any]:
            return {
                "currency": _relay_currency(token),
                "amount": str(base),
                "amountFormatted": str(Decimal(base).scaleb(-token.decimals)),
                "amountUsd": str(
                    (Decimal(base).scaleb(-token.decimals) * token.price_usd).quantize(Decimal("0.000001"))
                ),
                "minimumAmount": str(base * 98 // 100),
            }

        relayer_gas, relayer_service = fee(relayer_gas_usd, source), fee(service_usd, source)
        relayer = fee(relayer_gas_usd + service_usd, source)
        relayer["amount"] = str(int(relayer_gas["amount"]) + int(relayer_service["amount"]))  # the real sum, exactly
        body = {
            "steps": [
                {
                    "id": "deposit",
                    "action": "Confirm transaction in your wallet",
                    "description": f"Depositing funds to the relayer to bridge {source.symbol}",
                    "kind": "transaction",
                    "items": [
                        {
                            "status": "incomplete",
                            "data": {
                                "from": user,
                                "to": "0xa5f565650890fba1824ee0f21ebbbf660a179934",
                                "data": "0x",
                                "value": "0",
                                "chainId": source.chain_id,
                                "gas": "61000",
                            },
                            "check": {"endpoint": f"/intents/status/v3?requestId={request_id}", "method": "GET"},
                        }
                    ],
                    "requestId": request_id,
                }
            ],
            "fees": {
                "gas": fee(gas_usd, gas_token),
                "relayer": relayer,
                "relayerGas": relayer_gas,
                "relayerService": relayer_service,
                "app": fee(Decimal(0), source),
                "subsidized": fee(Decimal(0), source),
            },
            "details": {
                "operation": "swap",
                "sender": user,
                "recipient": user,
                "currencyIn": amount_of(source, amount),
                "currencyOut": amount_of(target, out),
                "refundCurrency": amount_of(source, amount),
                "totalImpact": {"usd": "-0.71", "percent": "-0.07"},
                "swapImpact": {"usd": "0", "percent": "0"},
                "rate": str(
                    (Decimal(out).scaleb(-target.decimals) / Decimal(amount).scaleb(-source.decimals)).quantize(
                        Decimal("1e-16")
                    )
                ),
                "timeEstimate": int(RELAY_DURATION.get((source.chain_id, target.chain_id), 10) * self.slow_factor),
                "userBalance": "0",
                "isFixedRate": False,
                "route": {"origin": {"router": "relay"}, "destination": {"router": "relay"}},
            },
        }
        return json_response(body)


def _relay_currency(token: SimToken) -> dict[str, Any]:
    return {
        "chainId": token.chain_id,
        "address": token.address,
        "symbol": token.symbol,
        "name": token.name,
        "decimals": token.decimals,
        "metadata": {"logoURI": f"https://assets.relay.link/icons/{token.chain_id}/light.png", "verified": True},
    }


class OneInchApi(QuoteApi):
    name = "oneinch"

    def __init__(self, universe: Universe, clock: SimClock) -> None:
        super().__init__(universe, clock, LogNormalLatency(90, 0.3, 1000, seed=13), CallerBudget(1, 1.0))
        self.route("GET", "/swap/v6.0/{chain}/quote", self.quote)

    def error_response(self, status: int, retry_after: int | None) -> Response:
        reasons = {429: "Too Many Requests", 401: "Unauthorized"}
        return json_response(
            {
                "error": reasons.get(status, "Internal Server Error"),
                "description": reasons.get(status, "internal error"),
                "statusCode": status,
            },
            status,
            retry_after_header(retry_after),
        )

    def quote(self, request: Request, chain: str) -> Response:
        self._wait()
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return self.error_response(401, None)
        admitted, _, _ = self.budget.admit(request.headers["Authorization"])
        if not admitted:
            return self.error_response(429, None)
        source, target = _token(chain, request.param("src")), _token(chain, request.param("dst"))
        amount = request.param("amount") or ""
        if source is None or target is None or not amount.isdigit():
            return json_response({"error": "Bad Request", "description": "cannot estimate", "statusCode": 400}, 400)
        out = _output_base_units(source, target, int(amount), Decimal("0.60"), _drift(self.clock.now(), 3))
        return json_response({"dstAmount": str(out)})
