"""DefiLlama DEX volume per chain: `GET /overview/dexs/{chain}` read as a `DexVolume`.

The dimensions-overview envelope (tests/fixtures/upstream/defillama.overview_options.ethereum.openapi_example.json,
the same envelope as /overview/dexs/{chain}): `chain`, `total24h`, `total7d` (USD numbers),
`change_1d` (a percentage number, may be null). `{chain}` is DefiLlama's chain name
(`Ethereum`, `Base`, `BSC`); `excludeTotalDataChart` and `excludeTotalDataChartBreakdown`
keep the daily history out of the answer. An answer for another chain, or without the
volumes, is a `VolumeAnomaly`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from shared.errors import BadWireValue
from shared.wire import to_decimal

QUERY = {"excludeTotalDataChart": "true", "excludeTotalDataChartBreakdown": "true"}


class VolumeAnomaly(ValueError):
    """An answer that is no DEX volume of the chain asked."""


@dataclass(frozen=True)
class DexVolume:
    """A chain's DEX volume in USD, exact as DefiLlama sends it."""

    chain: str  # DefiLlama's name
    volume_24h_usd: Decimal
    volume_7d_usd: Decimal
    change_1d_percent: Decimal | None


def overview_path(defillama_chain: str) -> str:
    """The path of the chain's DEX overview."""
    return f"/overview/dexs/{quote(defillama_chain, safe='')}"


def parse_dex_overview(body: Any, defillama_chain: str) -> DexVolume:
    """The chain's volumes from one answer; `VolumeAnomaly` when it is none."""
    if not isinstance(body, dict):
        raise VolumeAnomaly("answer is not an object")
    found = body.get("chain")
    # Case aside (DefiLlama's names are its display names), the answer must be for the chain asked.
    if not isinstance(found, str) or found.casefold() != defillama_chain.casefold():
        raise VolumeAnomaly(f"answer is for chain {str(body.get('chain'))[:40]!r}, not {defillama_chain!r}")

    def number(key: str, required: bool = True) -> Decimal | None:
        try:
            value = to_decimal(body.get(key), key)
        except (BadWireValue, TypeError) as exc:
            raise VolumeAnomaly(f"{key}: {exc}") from None
        if value is None and required:
            raise VolumeAnomaly(f"answer has no {key}")
        if value is not None and required and value < 0:
            raise VolumeAnomaly(f"{key} is negative: {value}")
        return value

    day, week = number("total24h"), number("total7d")
    assert day is not None and week is not None  # required above
    return DexVolume(defillama_chain, day, week, number("change_1d", required=False))
