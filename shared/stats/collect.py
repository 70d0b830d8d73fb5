"""One chain-performance cycle of one chain: ask every URL, agree on the head, measure.

Per URL one batch (`eth_chainId`, `eth_blockNumber`); then one batch of the last
`window_blocks` blocks from the best agreeing URL. Requests per cycle per chain:
len(rpc_urls) + 1 POSTs (a batch counts once against a URL's budget).
Failures of a URL are observations, never exceptions: the chain is judged from the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from shared.errors import CrawlerError
from shared.hexwire import parse_quantity
from shared.upstream.jsonrpc import JsonRpcClient

from .agreement import HeadAgreement, UrlObservation, agree
from .blocks import block_header
from .health import HealthThresholds, HealthVerdict, judge
from .performance import BlockWindowAnomaly, ChainPerformance, measure


class ChainConfig(BaseModel):
    """One monitored EVM chain (configuration; any EVM chain by adding one)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    chain_id: int = Field(gt=0)
    rpc_urls: tuple[str, ...] = Field(min_length=1)
    window_blocks: int = Field(default=10, ge=2, le=100)
    max_lag_blocks: int = Field(default=10, ge=0)
    millis_in_mixhash: bool = False  # BSC since BEP-520; never on chains where mixHash is RANDAO
    thresholds: HealthThresholds = HealthThresholds()
    # DefiLlama's name of the chain for its DEX volume (the overview); None: no volume asked.
    defillama_name: str | None = Field(default=None, min_length=1, max_length=64)


@dataclass(frozen=True)
class ChainReading:
    chain: str
    agreement: HeadAgreement
    performance: ChainPerformance | None
    verdict: HealthVerdict
    anomaly: str | None
    observed_ms: int


def observe_url(url: str, client: JsonRpcClient, clock: Callable[[], float] = time.monotonic) -> UrlObservation:
    """Chain id and head of one URL, with its latency; an error is recorded, not raised."""
    started = clock()
    try:
        chain_id, head = client.batch([("eth_chainId", []), ("eth_blockNumber", [])])
        return UrlObservation(
            url, clock() - started, chain_id=parse_quantity(chain_id, "chainId"), head=parse_quantity(head, "head")
        )
    except CrawlerError as exc:
        return UrlObservation(url, clock() - started, error=exc.reason[:300])


def read_chain(
    chain: ChainConfig,
    clients: Mapping[str, JsonRpcClient],
    now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
) -> ChainReading:
    """One cycle for `chain` (module docstring); `clients` maps each of its URLs to a client."""
    observations = [observe_url(url, clients[url]) for url in chain.rpc_urls]
    agreement = agree(observations, chain.chain_id, chain.max_lag_blocks)
    performance, anomaly = None, None
    best = agreement.best_url()
    if best is not None and agreement.reference_head is not None:
        first = max(0, agreement.reference_head - chain.window_blocks + 1)
        calls = [("eth_getBlockByNumber", [hex(n), False]) for n in range(first, agreement.reference_head + 1)]
        try:
            results = clients[best].batch(calls)
            performance = measure([block_header(r, millis_in_mixhash=chain.millis_in_mixhash) for r in results])
        except BlockWindowAnomaly as exc:
            anomaly = str(exc)
        except CrawlerError as exc:  # a bad block, or the URL failing between the two batches
            anomaly = exc.reason[:300]
    observed = now_ms()
    verdict = judge(chain.thresholds, agreement, performance, observed, anomaly)
    return ChainReading(chain.name, agreement, performance, verdict, anomaly, observed)
