"""DefiLlama DEX volume: `GET /overview/dexs/{chain}` in the dimensions-overview envelope.

The envelope of tests/fixtures/upstream/defillama.overview_options.ethereum.openapi_example.json
(`chain`, `allChains`, `total24h`, `total48hto24h`, `total7d`, `total30d`, `change_1d`, ...,
`protocols[]`; USD volumes as JSON numbers, change_* as percentage numbers). Without
`excludeTotalDataChart=true` the answer carries the daily chart `[[unix seconds, volume]]` too.
Volumes drift slowly (a few percent over hours) around a level per chain. An unknown chain is
HTTP 400 with a plain-text body, as DefiLlama answers an unknown slug (INDEX.md). Answers
after a log-normal delay of its own (median 120 ms); `configure(latency_scale=0)` turns it off.
"""

from __future__ import annotations

import math
import time
from decimal import Decimal

from local.market.apis.base import Api, Request, Response, json_response
from local.market.apis.bridges import LogNormalLatency
from local.market.clock import SimClock
from local.market.universe import Universe

DAY = 86400
# Rough 24 h DEX volume levels (USD) per DefiLlama chain name.
LEVELS = {"Ethereum": 1_850_000_000, "Base": 1_100_000_000, "BSC": 2_400_000_000, "Arbitrum": 650_000_000}


def volume_24h(chain: str, at: float) -> int:
    """The chain's 24 h volume at unix time `at` (whole dollars, moving by at most ~3 %)."""
    seed = sum(map(ord, chain))
    return int(LEVELS[chain] * (1 + 0.03 * math.sin(at / 21600 + seed)))


class DefiLlamaApi(Api):
    name = "defillama"

    def __init__(self, universe: Universe, clock: SimClock) -> None:
        super().__init__(universe, clock)
        self.latency = LogNormalLatency(120, 0.4, 2000, seed=14)
        self.route("GET", "/overview/dexs/{chain}", self.overview)

    def configure(self, latency_scale: float | None = None) -> None:
        if latency_scale is not None:
            self.latency.scale = latency_scale

    def error_response(self, status: int, retry_after: int | None) -> Response:
        return Response(status, f"HTTP {status}".encode(), "text/plain; charset=utf-8")

    def overview(self, request: Request, chain: str) -> Response:
        delay = self.latency.draw_seconds()
        if delay:
            time.sleep(delay)
        if chain not in LEVELS:
            return Response(400, f"Chain {chain} not supported".encode(), "text/plain; charset=utf-8")
        now = self.clock.now()
        day, before = volume_24h(chain, now), volume_24h(chain, now - DAY)
        week = sum(volume_24h(chain, now - i * DAY) for i in range(7))
        body: dict[str, object] = {
            "breakdown24h": None,
            "breakdown30d": None,
            "chain": chain,
            "allChains": sorted(LEVELS),
            "total24h": day,
            "total48hto24h": before,
            "total7d": week,
            "total14dto7d": sum(volume_24h(chain, now - i * DAY) for i in range(7, 14)),
            "total30d": sum(volume_24h(chain, now - i * DAY) for i in range(30)),
            "change_1d": (Decimal(day - before) / before * 100).quantize(Decimal("0.01")),
            "protocols": [
                {
                    "name": "Uniswap V3",
                    "slug": "uniswap-v3",
                    "category": "Dexs",
                    "total24h": day // 3,
                    "total7d": week // 3,
                }
            ],
        }
        if not request.flag("excludeTotalDataChart", False):
            body["totalDataChart"] = [
                [int(now // DAY * DAY - i * DAY), volume_24h(chain, now - i * DAY)] for i in range(30, 0, -1)
            ]
        if not request.flag("excludeTotalDataChartBreakdown", False):
            body["totalDataChartBreakdown"] = []
        return json_response(body)
