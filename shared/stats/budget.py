"""Keyless request budgets of the quote providers, and which routes one cycle may sample.

A provider allows `requests` per `window_seconds` (LI.FI without a key: 75 quotes per 2 h on
its current page, 200 on an older one; Relay: 50 quotes per minute; 1inch: 1 request per
second). The bridge-latency cycle runs every `cycle_seconds` (120), so a provider may be
asked `floor(requests × safety × cycle_seconds / window_seconds)` times per cycle.

When a provider's routes do not fit that, the routes **rotate**: cycle `n` samples
`per_cycle` of them, starting at `(n × per_cycle) mod len(routes)`, so every route is sampled
once every `ceil(len(routes) / per_cycle)` cycles and the budget is never exceeded. The cycle
number is the tick's time divided by the cycle length, so replicas and restarts agree without
any state. A budget below one request per cycle cannot be rotated into: the configuration is
refused at startup (`BudgetTooSmall`, naming the provider and the figures).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field


class BudgetTooSmall(ValueError):
    """A provider's budget allows less than one request per cycle."""


class ProviderBudget(BaseModel):
    """Requests a provider allows per window (its documented keyless limit)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    requests: int = Field(gt=0)
    window_seconds: int = Field(gt=0)
    # Headroom for replicas' clock skew, a restart's extra tick, a manual call.
    safety: Decimal = Field(default=Decimal("0.9"), gt=0, le=1)

    def per_cycle(self, cycle_seconds: int) -> int:
        """Requests one cycle may spend."""
        return math.floor(Decimal(self.requests) * self.safety * cycle_seconds / self.window_seconds)


@dataclass(frozen=True)
class ProviderPlan:
    """How one provider's routes are sampled: per cycle, and every how many cycles each route is."""

    provider: str
    routes: tuple[str, ...]
    per_cycle: int
    every_cycles: int

    def requests_per_window(self, budget: ProviderBudget, cycle_seconds: int) -> int:
        """Requests actually sent per budget window (at most the budget × safety)."""
        cycles = budget.window_seconds / cycle_seconds
        return math.ceil(min(self.per_cycle, len(self.routes)) * cycles)


def plan(provider: str, routes: Sequence[str], budget: ProviderBudget, cycle_seconds: int) -> ProviderPlan:
    """The sampling plan of `provider` over its `routes`; `BudgetTooSmall` if none fits."""
    per_cycle = budget.per_cycle(cycle_seconds)
    if routes and per_cycle < 1:
        raise BudgetTooSmall(
            f"{provider}: {budget.requests} requests per {budget.window_seconds} s (x{budget.safety} safety) allow"
            f" {Decimal(budget.requests) * budget.safety * cycle_seconds / budget.window_seconds:.2f} per"
            f" {cycle_seconds}-s cycle, fewer than one: lengthen the cycle, add a key with a larger budget,"
            " or drop the provider from the routes"
        )
    count = len(routes)
    return ProviderPlan(
        provider=provider,
        routes=tuple(routes),
        per_cycle=min(per_cycle, count),
        every_cycles=math.ceil(count / per_cycle) if count else 0,
    )


def routes_this_cycle(provider_plan: ProviderPlan, cycle: int) -> tuple[str, ...]:
    """The routes sampled in cycle number `cycle` (rotating when they do not all fit)."""
    routes, count = provider_plan.routes, len(provider_plan.routes)
    if count == 0 or provider_plan.per_cycle >= count:
        return routes
    start = (cycle * provider_plan.per_cycle) % count
    return tuple(routes[(start + i) % count] for i in range(provider_plan.per_cycle))


def cycle_number(tick_seconds: float, cycle_seconds: int) -> int:
    """The cycle a tick at unix time `tick_seconds` belongs to."""
    return int(tick_seconds // cycle_seconds)
