"""A block header as the stats need it, read off an `eth_getBlockByNumber` result.

Times are integer milliseconds. BSC (BEP-520 §4.1.1) keeps `timestamp` in seconds and the
millisecond part (0-999) in the last two bytes of `mixHash`: MilliTimestamp = timestamp *
1000 + ms. The bsc client also returns `milliTimestamp`; proxies may drop it, so it is
derived from `mixHash` then, and when both are there they must agree. An all-zero mixHash
is 0 ms, not "missing". On other chains mixHash is RANDAO (Ethereum, Base: L1 RANDAO) and
must not be read as milliseconds: `millis_in_mixhash` is per chain configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.errors import BadWireValue
from shared.hexwire import BadQuantity, parse_data, parse_quantity


class BadBlock(BadWireValue):
    """A block result that cannot be read (not an object, a field missing or inconsistent)."""


@dataclass(frozen=True)
class BlockHeader:
    """The fields the chain statistics use. `base_fee_wei` is None before EIP-1559."""

    number: int
    hash: str
    parent_hash: str
    timestamp_ms: int
    gas_used: int
    gas_limit: int
    base_fee_wei: int | None


def bep520_millis(mix_hash: Any) -> int:
    """The millisecond part BEP-520 stores in the last two bytes of mixHash (0-999)."""
    raw = parse_data(mix_hash, "mixHash", size=32)
    millis = int.from_bytes(raw[-2:], "big")
    if millis > 999:
        raise BadQuantity("mixHash", mix_hash, f"millisecond part {millis} is above 999 (BEP-520)")
    return millis


def block_header(result: Any, *, millis_in_mixhash: bool) -> BlockHeader:
    """Read one block result; `BadBlock`/`BadQuantity` rather than any guessed field."""
    if not isinstance(result, dict):
        raise BadBlock("block", type(result).__name__, "a block result must be a JSON object (null: unknown block)")
    for key in ("number", "hash", "parentHash", "timestamp", "gasUsed", "gasLimit"):
        if key not in result:
            raise BadBlock(key, "missing", "required block field")
    seconds = parse_quantity(result["timestamp"], "timestamp")
    timestamp_ms = seconds * 1000
    if millis_in_mixhash:
        timestamp_ms += bep520_millis(result.get("mixHash"))
        if "milliTimestamp" in result:
            reported = parse_quantity(result["milliTimestamp"], "milliTimestamp")
            if reported != timestamp_ms:
                raise BadBlock(
                    "milliTimestamp", result["milliTimestamp"], f"disagrees with timestamp+mixHash ({timestamp_ms} ms)"
                )
    gas_used = parse_quantity(result["gasUsed"], "gasUsed")
    gas_limit = parse_quantity(result["gasLimit"], "gasLimit")
    if gas_used > gas_limit:
        raise BadBlock("gasUsed", result["gasUsed"], f"above gasLimit {gas_limit}")
    base_fee = result.get("baseFeePerGas")
    return BlockHeader(
        number=parse_quantity(result["number"], "number"),
        hash=parse_data(result["hash"], "hash", size=32).hex(),
        parent_hash=parse_data(result["parentHash"], "parentHash", size=32).hex(),
        timestamp_ms=timestamp_ms,
        gas_used=gas_used,
        gas_limit=gas_limit,
        base_fee_wei=None if base_fee is None else parse_quantity(base_fee, "baseFeePerGas"),
    )
