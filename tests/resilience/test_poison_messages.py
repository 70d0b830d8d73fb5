"""1,000 generated bad messages through the running system: every one is dead-lettered with its
reason, nothing crashes, nothing is stored that should not be, and the partitions keep moving.

The messages (`poison.py`) go to the three request topics as plain records, the way any
Kafka client would write them. Each must come out on its source's dead-letter topic with
HTTP 400 and the function's reason (`knativeerrordata`), and never as a 5xx: an internal
error would mean an unhandled case, and would also hold an ordered partition for the
length of its retries. Afterwards the functions run on the same processes (no crash, no
worker restart), the database holds exactly what it held before (plus the job_logs rows
that record the rejections), and a valid job still goes through at once.
"""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest

from local.market.server import SimulatedMarket
from tests.resilience.harness import (
    DEAD_LETTER_TOPICS,
    FIGURES,
    FUNCTION_NAMES,
    PRICE_TOPIC,
    Ledger,
    RunningSystem,
    child_pids,
    read_dead_letters,
    reason_of,
    top100_job,
    wait_until,
)
from tests.resilience.poison import SQL, poison_messages

pytestmark = [pytest.mark.infra, pytest.mark.slow]

COUNT = 1000
DATA_TABLES = ("tokens", "token_contracts", "token_set_members", "token_prices", "token_latest_prices", "token_audits")


def table_counts(ledger: Ledger) -> dict[str, int]:
    return {table: ledger.value(f"SELECT count(*) FROM {table}") for table in DATA_TABLES}


@pytest.mark.timeout(400)
def test_a_thousand_poison_messages_are_dead_lettered_with_reasons(
    system: RunningSystem, market: SimulatedMarket, ledger: Ledger
) -> None:
    market.faults.clear()
    system.wait_ready()
    processes = {name: (system.function_pid(name), child_pids(system.function_pid(name))) for name in FUNCTION_NAMES}
    responses_before = {s: dict(c.get("responses", {})) for s, c in system.eventing_metrics().items()}
    before = table_counts(ledger)
    letters_before = {d.origin for d in read_dead_letters(system.infra.bootstrap, settle=0.5)}

    sent: dict[tuple[str, str], str] = {}  # (topic, event id) -> damage
    started = time.monotonic()
    for poison in poison_messages(COUNT):

        def confirmed(message, damage=poison.damage) -> None:
            sent[(message.topic(), f"partition:{message.partition()}/offset:{message.offset()}")] = damage

        system.produce(poison.topic, poison.value, flush=False, on_delivery=confirmed)
    system.flush()
    assert len(sent) == COUNT

    def all_dead_lettered() -> dict | None:
        letters = {
            d.origin: d
            for d in read_dead_letters(system.infra.bootstrap, settle=0.5)
            if d.origin in sent and d.origin not in letters_before
        }
        return letters if len(letters) == COUNT else None

    try:
        letters = wait_until(all_dead_lettered, 240, "every poison message on a dead-letter topic", interval=2)
    except AssertionError:
        letters = {d.origin: d for d in read_dead_letters(system.infra.bootstrap, settle=0.5) if d.origin in sent}
        missing = Counter(damage for origin, damage in sent.items() if origin not in letters)
        raise AssertionError(f"{COUNT - len(letters)} poison messages not dead-lettered: {dict(missing)}") from None
    seconds = time.monotonic() - started

    codes = Counter(d.error_code for d in letters.values())
    not_400 = {sent[o]: (d.error_code, reason_of(d)) for o, d in letters.items() if d.error_code != "400"}
    assert not_400 == {}, not_400
    reasons = {o: json.loads(d.error_data) for o, d in letters.items()}
    assert all(r.get("error") and r.get("retryable") is False for r in reasons.values())
    assert all(DEAD_LETTER_TOPICS[topic] == letters[(topic, event)].topic for topic, event in letters)

    # Zero crashes: the same processes (master and worker) serve; no 5xx was ever answered.
    after = {name: (system.function_pid(name), child_pids(system.function_pid(name))) for name in FUNCTION_NAMES}
    assert after == processes
    responses = {s: dict(c.get("responses", {})) for s, c in system.eventing_metrics().items()}
    server_errors = sum(
        n - responses_before.get(s, {}).get(status, 0)
        for s, counts in responses.items()
        for status, n in counts.items()
        if status.startswith("5")
    )
    assert server_errors == 0, responses
    # Nothing stored but the record of the rejections; the tables are all there.
    assert table_counts(ledger) == before
    tables_before = ledger.value("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
    logged = ledger.value(
        "SELECT count(*) FROM job_logs WHERE row_kind = 'job' AND status IN ('rejected', 'failed', 'dead_lettered')"
        " AND event_id = ANY(CAST(:ids AS text[]))",
        ids=[event for _, event in sent],
    )
    # The partitions kept moving: valid jobs right behind them are done at once, and SQL
    # metacharacters in a field that allows them are stored as text, never run.
    nasty = [f"{injection} #{i}" for i, injection in enumerate(SQL)]
    for job_id in nasty:
        system.produce(PRICE_TOPIC, {**top100_job(), "job_id": job_id})
    for job_id in nasty:
        assert ledger.wait_final(job_id, timeout=30)["status"] == "succeeded", job_id

    assert ledger.value("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == tables_before
    by_damage = Counter(damage.split(":")[0] for damage in sent.values())
    sample = sorted({reason_of(d, 70) for d in letters.values()})[:4]
    FIGURES.add(
        "poison",
        messages=COUNT,
        kinds=dict(by_damage),
        dead_lettered=len(letters),
        codes=dict(codes),
        with_reason=len(reasons),
        job_logs_rows=logged,
        server_errors=server_errors,
        crashes=0,
        rows_changed=0,
        seconds=seconds,
        sql_in_job_id_stored_verbatim=len(nasty),
        sample_reasons=sample,
    )
