"""Fixtures of the fault-injection suite: the whole system as processes on infra of its own.

    private_infra   PrivateInfra   Kafka + PostgreSQL of this session only (restartable)  (session)
    market          SimulatedMarket  in-process, clock frozen: every API quotes one exact price (session)
    system          RunningSystem  price/metadata/audit functions + eventing plane, top-100 set seeded (session)
    ledger          Ledger         reads job_logs and the price tables                      (session)

Every test prints `RESILIENCE ...` figures; they are repeated at the end of the run by
`pytest_terminal_summary`, so they appear in `make test` output without `-s`.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator

import pytest

from local import services
from local.market.server import SimulatedMarket
from tests.resilience.harness import (
    FIGURES,
    METADATA_TOPIC,
    Ledger,
    PrivateInfra,
    RunningSystem,
    utc_now_iso,
)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES.lines:
        terminalreporter.section("resilience figures")
        for line in FIGURES.lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def private_infra() -> Iterator[PrivateInfra]:
    # Under .local/ rather than a private temp dir: PostgreSQL runs as the `postgres` OS user.
    state_dir = services.LOCAL_DIR / f"resilience-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    state_dir.mkdir(parents=True, mode=0o755)
    state_dir.chmod(0o755)
    infra = PrivateInfra(state_dir)
    try:
        infra.start()
    except Exception as exc:
        infra.close()
        shutil.rmtree(state_dir, ignore_errors=True)
        pytest.fail(f"the private Kafka/PostgreSQL of the resilience suite cannot start: {exc}", pytrace=False)
    yield infra
    infra.close()
    if not os.environ.get("RESILIENCE_KEEP_STATE"):  # set it to keep the logs of a failing run
        shutil.rmtree(state_dir, ignore_errors=True)


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
    running = RunningSystem(private_infra, market, private_infra.state_dir / "system")
    running.start()
    try:
        job_id = f"seed-metadata-{uuid.uuid4().hex[:8]}"
        running.produce(
            METADATA_TOPIC,
            {
                "job_type": "metadata",
                "token_type": "top100",
                "symbols": [],
                "timestamp": utc_now_iso(),
                "job_id": job_id,
            },
        )
        row = ledger.wait_final(job_id, timeout=90)
        assert row["status"] == "succeeded", row
    except BaseException:
        print(running.log_tails(["metadata", "eventing"]))
        running.stop()
        raise
    yield running
    running.stop()


@pytest.fixture
def healthy(system: RunningSystem, market: SimulatedMarket) -> RunningSystem:
    """The system with no fault armed, every function ready, market counters zeroed."""
    market.faults.clear()
    system.wait_ready()
    market.stats.reset()
    return system
