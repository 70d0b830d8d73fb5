"""Head agreement across one chain's RPC URLs.

Each URL is asked its chain id and head. A URL answering for another chain id is
`wrong_chain`; one whose head is more than `max_lag_blocks` behind the reference is
`lagging`; one that failed is `error`. Those are reported and ignored: the reference head
is the highest head among the URLs on the right chain. With three or more of them, a head
more than `max_lag_blocks` above their median is `ahead` (a node on a fork, or lying) and
ignored too: the majority decides. With one or two there is no majority, and the higher
head is believed (a replica falling behind is the common failure, a node running ahead on
the right chain id is not). One wrong-chain node cannot make every honest node look 30 M
blocks behind (eRPC's known failure): its head never enters the comparison.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

MAJORITY = 3


class UrlStatus(StrEnum):
    OK = "ok"
    WRONG_CHAIN = "wrong_chain"
    LAGGING = "lagging"
    AHEAD = "ahead"
    ERROR = "error"


@dataclass(frozen=True)
class UrlObservation:
    """What one URL answered in this cycle: chain id and head, or the error; its latency."""

    url: str
    latency_seconds: float
    chain_id: int | None = None
    head: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class UrlVerdict:
    url: str
    status: UrlStatus
    head: int | None
    lag_blocks: int | None
    latency_seconds: float
    detail: str = ""


@dataclass(frozen=True)
class HeadAgreement:
    """The reference head (None when no URL is usable) and a verdict per URL."""

    reference_head: int | None
    verdicts: tuple[UrlVerdict, ...]

    @property
    def agreeing(self) -> tuple[UrlVerdict, ...]:
        return tuple(v for v in self.verdicts if v.status is UrlStatus.OK)

    def best_url(self) -> str | None:
        """The agreeing URL with the highest head, the fastest among equals: where to read blocks."""
        usable = sorted(self.agreeing, key=lambda v: (-(v.head or 0), v.latency_seconds))
        return usable[0].url if usable else None


def agree(observations: Sequence[UrlObservation], expected_chain_id: int, max_lag_blocks: int) -> HeadAgreement:
    """Judge every URL against the others; see the module docstring."""
    on_chain = [o for o in observations if o.error is None and o.chain_id == expected_chain_id and o.head is not None]
    heads = [o.head for o in on_chain if o.head is not None]
    # No majority among fewer than three: nobody is "ahead" (median = the highest head).
    median = statistics.median_high(heads) if len(heads) >= MAJORITY else max(heads, default=None)
    plausible = [h for h in heads if median is not None and h - median <= max_lag_blocks]
    reference = max(plausible) if plausible else None
    verdicts = []
    for o in observations:
        if o.error is not None or o.head is None:
            verdicts.append(UrlVerdict(o.url, UrlStatus.ERROR, None, None, o.latency_seconds, o.error or "no head"))
        elif o.chain_id != expected_chain_id:
            detail = f"chain id {o.chain_id}, expected {expected_chain_id}"
            verdicts.append(UrlVerdict(o.url, UrlStatus.WRONG_CHAIN, o.head, None, o.latency_seconds, detail))
        elif reference is None or median is None:  # unreachable: this URL is on chain, so plausible is non-empty
            verdicts.append(UrlVerdict(o.url, UrlStatus.ERROR, o.head, None, o.latency_seconds, "no reference"))
        elif o.head - median > max_lag_blocks:
            detail = f"{o.head - median} blocks above the median head {median}"
            verdicts.append(UrlVerdict(o.url, UrlStatus.AHEAD, o.head, reference - o.head, o.latency_seconds, detail))
        elif reference - o.head > max_lag_blocks:
            detail = f"{reference - o.head} blocks behind (more than {max_lag_blocks})"
            verdicts.append(UrlVerdict(o.url, UrlStatus.LAGGING, o.head, reference - o.head, o.latency_seconds, detail))
        else:
            verdicts.append(UrlVerdict(o.url, UrlStatus.OK, o.head, reference - o.head, o.latency_seconds))
    return HeadAgreement(reference, tuple(verdicts))
