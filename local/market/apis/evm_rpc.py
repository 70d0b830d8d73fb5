"""EVM JSON-RPC nodes: POST /rpc/{node} with a single call or a batch, in geth's format.

Each chain has a block clock (a fixed pattern of intervals repeated from an anchor block):
- Ethereum: 12-s slots, one slot in 16 missed (a 24-s interval), as evm.* blocks show on mainnet;
- Base: 2-s blocks (before Denim; INDEX.md), mixHash an L1 RANDAO-like hash;
- BSC: 0.45-s blocks (Fermi), the milliseconds in the last two bytes of mixHash (BEP-520) and
  the bsc client's `milliTimestamp`; several blocks share one seconds `timestamp`.
Block objects follow evm.eth_getBlockByNumber.*.json (hex QUANTITY strings, geth key names).

Nodes (the `{node}` of the path): `ethereum`, `ethereum-2`, `base`, `base-2`, `bsc`, `bsc-2`
answer the truth; `<chain>-lagging` is a replica 300 blocks behind; `<chain>-wrongchain` a
node on another chain (Ethereum's chain id and heads); `<chain>-limited` answers every
call with Infura's -32005 "project ID request rate exceeded" inside an HTTP 200
(evm.error.infura_429_project_rate_exceeded.json). An HTTP 429 fault (/_sim/faults) gets the
same body with a 429. Unknown methods get geth's -32601 (evm.error.method_not_found.geth.json).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from local.market.apis.base import Api, ApiError, Request, Response, json_response, retry_after_header
from local.market.clock import SimClock
from local.market.universe import Universe


@dataclass(frozen=True)
class ChainClock:
    """Block `anchor` at `anchor_ms`, then `intervals_ms` repeated."""

    name: str
    chain_id: int
    anchor: int
    anchor_ms: int
    intervals_ms: tuple[int, ...]
    millis_in_mixhash: bool
    gas_limit: int
    base_fee_wei: int

    @property
    def period_ms(self) -> int:
        return sum(self.intervals_ms)

    def timestamp_ms(self, number: int) -> int:
        offset = number - self.anchor
        periods, rest = divmod(offset, len(self.intervals_ms))
        return self.anchor_ms + periods * self.period_ms + sum(self.intervals_ms[:rest])

    def head(self, now_ms: int) -> int:
        """The highest block produced by `now_ms`."""
        periods = (now_ms - self.anchor_ms) // self.period_ms
        number = self.anchor + periods * len(self.intervals_ms)
        while self.timestamp_ms(number + 1) <= now_ms:
            number += 1
        return number


CHAINS = {
    clock.name: clock
    for clock in (
        ChainClock("ethereum", 1, 23_000_000, 1_750_000_000_000, (12_000,) * 15 + (24_000,), False, 45_000_000, 0),
        ChainClock("base", 8453, 50_000_000, 1_750_000_000_000, (2_000,), False, 400_000_000, 5_000_000),
        ChainClock("bsc", 56, 75_000_000, 1_750_000_000_000, (450,), True, 55_000_000, 0),
    )
}
LAG_BLOCKS = 300
RATE_EXCEEDED = {
    "code": -32005,
    "message": "project ID request rate exceeded",
    "data": {
        "see": "https://infura.io/docs/ethereum/jsonrpc/ratelimits",
        "current_rps": Decimal("13.333"),
        "allowed_rps": Decimal("10.0"),
        "backoff_seconds": Decimal("30.0"),
    },
}


def _hash(chain: str, number: int) -> str:
    return "0x" + hashlib.sha256(f"{chain}:{number}".encode()).hexdigest()


def block(clock: ChainClock, number: int) -> dict[str, Any]:
    """Block `number` of `clock`'s chain in geth's key order (alphabetical)."""
    millis = clock.timestamp_ms(number)
    seed = int(hashlib.sha256(f"{clock.name}:gas:{number}".encode()).hexdigest()[:8], 16)
    gas_used = clock.gas_limit * (30 + seed % 40) // 100  # 30-70 % full
    mix_hash = (
        "0x" + "00" * 30 + f"{millis % 1000:04x}" if clock.millis_in_mixhash else _hash(f"{clock.name}-mix", number)
    )
    result: dict[str, Any] = {
        "baseFeePerGas": hex(clock.base_fee_wei + (seed % 1000 if clock.base_fee_wei else 0)),
        "difficulty": "0x2" if clock.name == "bsc" else "0x0",
        "extraData": "0x",
        "gasLimit": hex(clock.gas_limit),
        "gasUsed": hex(gas_used),
        "hash": _hash(clock.name, number),
        "miner": "0x4200000000000000000000000000000000000011" if clock.name == "base" else "0x" + "00" * 20,
        "mixHash": mix_hash,
        "nonce": "0x0000000000000000",
        "number": hex(number),
        "parentHash": _hash(clock.name, number - 1),
        "timestamp": hex(millis // 1000),
        "transactions": [],
        "uncles": [],
    }
    if clock.millis_in_mixhash:
        result["milliTimestamp"] = hex(millis)
    return result


class EvmRpcApi(Api):
    """JSON-RPC nodes of Ethereum, Base and BSC, honest and faulty (module docstring)."""

    name = "rpc"

    def __init__(self, universe: Universe, clock: SimClock) -> None:
        super().__init__(universe, clock)
        self.route("POST", "/{node}", self.serve)
        self.route("POST", "/{node}/", self.serve)  # httpx joins a base URL and "" with a slash

    def error_response(self, status: int, retry_after: int | None) -> Response:
        error = RATE_EXCEEDED if status == 429 else {"code": -32603, "message": "internal error"}
        return json_response({"jsonrpc": "2.0", "id": None, "error": error}, status, retry_after_header(retry_after))

    def serve(self, request: Request, node: str) -> Response:
        chain_name, _, kind = node.partition("-")
        if chain_name not in CHAINS or kind not in ("", "2", "lagging", "wrongchain", "limited"):
            raise ApiError(json_response({"error": f"no node {node}"}, 404))
        try:
            calls = json.loads(request.body)
        except ValueError:
            return json_response({"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}})
        clock = CHAINS["ethereum" if kind == "wrongchain" else chain_name]
        lag = LAG_BLOCKS if kind == "lagging" else 0
        head = clock.head(int(self.clock.now() * 1000)) - lag
        answer = [self._answer(c, clock, head, kind) for c in calls] if isinstance(calls, list) else None
        return json_response(answer if answer is not None else self._answer(calls, clock, head, kind))

    def _answer(self, call: Any, clock: ChainClock, head: int, kind: str) -> dict[str, Any]:
        if not isinstance(call, dict) or "method" not in call:
            return {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "invalid request"}}
        envelope = {"jsonrpc": "2.0", "id": call.get("id")}
        if kind == "limited":
            return {**envelope, "error": RATE_EXCEEDED}
        method, params = call["method"], call.get("params") or []
        if method == "eth_chainId":
            return {**envelope, "result": hex(clock.chain_id)}
        if method == "eth_blockNumber":
            return {**envelope, "result": hex(head)}
        if method == "eth_getBlockByNumber" and params:
            tag = params[0]
            number = head if tag in ("latest", "safe", "finalized", "pending") else _quantity(tag)
            return {**envelope, "result": block(clock, number) if number is not None and number <= head else None}
        message = f"the method {method} does not exist/is not available"
        return {**envelope, "error": {"code": -32601, "message": message}}


def _quantity(value: Any) -> int | None:
    try:
        return int(value, 16) if isinstance(value, str) and value.startswith("0x") else None
    except ValueError:
        return None
