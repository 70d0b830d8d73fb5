"""Fixtures of the fault-injection suite: the whole system as processes on infra of its own.

    private_infra   PrivateInfra   Kafka + PostgreSQL of this session only (restartable)  (session)
    market          SimulatedMarket  in-process, clock frozen: every API quotes one exact price (session)
    system          RunningSystem  price/metadata/audit functions + eventing plane, top-100 set seeded (session)
    ledger          Ledger         reads job_logs and the price tables                      (session)

Every test prints `RESILIENCE ...` figures; they are repeated at the end of the run by
`pytest_terminal_summary`, so they appear in `make test` output without `-s`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local import services
from local.market.server import SimulatedMarket
from tests.resilience.harness import (
    FIGURES,
    Ledger,
    PrivateInfra,
    RunningSystem,
    private_infra_in,
    start_seeded_system,
)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES.lines:
        terminalreporter.section("resilience figures")
        for line in FIGURES.lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def private_infra() -> Iterator[PrivateInfra]:
    with private_infra_in(services.LOCAL_DIR) as infra:
        yield infra


@pytest.fixture(scope="session")
def market() -> Iterator[SimulatedMarket]:
    with SimulatedMarket() as simulated:
        simulated.clock.freeze()
        yield simulated


@pytest.fixture(scope="session")
def ledger(private_infra: PrivateInfra) -> Iterator[Ledger]:
    reader = Ledger(private_infra.database_url)
    yield reader
    reader.close()


@pytest.fixture(scope="session")
def system(private_infra: PrivateInfra, market: SimulatedMarket, ledger: Ledger) -> Iterator[RunningSystem]:
    running = start_seeded_system(private_infra, market, ledger)
    yield running
    running.stop()


@pytest.fixture
def healthy(system: RunningSystem, market: SimulatedMarket) -> RunningSystem:
    """The system with no fault armed, every function ready, market counters zeroed."""
    market.faults.clear()
    system.wait_ready()
    market.stats.reset()
    return system
