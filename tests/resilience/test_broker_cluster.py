"""The production Kafka topology under broker loss: three KRaft nodes, RF 3, min.insync.replicas 2.

The system runs against a three-node cluster of its own (`PrivateInfra(brokers=3)`, each node
a combined controller+broker, as `infra/cluster/kafka-production` declares). While jobs flow:

1. The leader of the busiest partition (the request partition holding the most records) is
   SIGKILLed: a crash, no controlled shutdown; its leaderships move once the controller fences
   it. With two brokers left, every job must be committed exactly once: no job lost, none
   dead-lettered, no job row or price observation twice, no wrong price.
2. Then the leader of the busiest partition among the two is stopped with SIGTERM (a controlled
   shutdown). One broker is left, below min.insync.replicas: acks=all producers must block or
   fail loudly, never write to one copy. The scheduler's producer (`shared.kafka.EventProducer`)
   must raise `DependencyUnavailable` for every job it is given; a plain client's producer (the
   harness's, 120-s message timeout) must hold its jobs unconfirmed. No job may reach a function.
3. Both brokers start again. The held jobs go out by themselves, the refused ones are published
   again by their caller, and every one of them is committed exactly once.
"""

from __future__ import annotations

import itertools
import re
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from local import services
from local.market.server import SimulatedMarket
from shared.crawler.contracts import JOB_MESSAGE_SCHEMA
from shared.crawler.pipelines.scheduler import JOB_EVENT_TYPE
from shared.errors import DependencyUnavailable
from shared.events import OutboundEvent
from shared.kafka import EventProducer
from tests.resilience.harness import (
    AUDIT_TOPIC,
    FIGURES,
    INVARIANTS_OK,
    KAFKA_CLIENT_LOG,
    METADATA_TOPIC,
    PRICE_TOPIC,
    JobBook,
    Ledger,
    PrivateInfra,
    RunningSystem,
    Settlement,
    database_invariants,
    private_infra_in,
    start_seeded_system,
    wait_until,
    wrong_prices,
)

pytestmark = [pytest.mark.infra, pytest.mark.slow]

BROKERS = 3
JOBS_PER_SECOND = 2.0
BEFORE_KILL_SECONDS = 8.0  # load before the first broker dies
TWO_BROKER_SECONDS = 20.0  # load after it died: the leader moves happen under it
SETTLE_SECONDS = 150.0
REFUSED_JOBS = 4  # given to the scheduler's producer while one broker is left
HELD_JOBS = 4  # given to a plain client's producer while one broker is left
ONE_BROKER_PUBLISH_TIMEOUT = 6.0  # the scheduler producer's message timeout in that phase
REQUEST_TOPICS = (PRICE_TOPIC, METADATA_TOPIC, AUDIT_TOPIC)


@pytest.fixture(scope="module")
def cluster_infra() -> Iterator[PrivateInfra]:
    with private_infra_in(services.LOCAL_DIR, brokers=BROKERS) as infra:
        yield infra


@pytest.fixture(scope="module")
def cluster_ledger(cluster_infra: PrivateInfra) -> Iterator[Ledger]:
    reader = Ledger(cluster_infra.database_url)
    yield reader
    reader.close()


@pytest.fixture(scope="module")
def cluster_system(
    cluster_infra: PrivateInfra, market: SimulatedMarket, cluster_ledger: Ledger
) -> Iterator[RunningSystem]:
    running = start_seeded_system(cluster_infra, market, cluster_ledger)
    yield running
    running.stop()


# --------------------------------------------------------------------------------------------
# What the cluster says


def partitions(bootstrap: str) -> dict[tuple[str, int], tuple[int, tuple[int, ...]]]:
    """(topic, partition) -> (leader, in-sync replicas) of every project topic."""
    metadata = AdminClient({"bootstrap.servers": bootstrap}, logger=KAFKA_CLIENT_LOG).list_topics(timeout=10)
    return {
        (name, p.id): (p.leader, tuple(sorted(p.isrs)))
        for name, topic in metadata.topics.items()
        if name.startswith("price-crawler.")
        for p in topic.partitions.values()
    }


def busiest_partition(bootstrap: str) -> tuple[str, int]:
    """The request partition holding the most records (its leader takes the most writes)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"resilience-sizes-{uuid.uuid4().hex}"}, logger=KAFKA_CLIENT_LOG
    )
    try:
        sizes = {}
        for (topic, partition), _ in partitions(bootstrap).items():
            if topic in REQUEST_TOPICS:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
                sizes[(topic, partition)] = high - low
    finally:
        consumer.close()
    return max(sizes, key=lambda tp: sizes[tp])


def wait_leaders_off(bootstrap: str, gone: set[int], timeout: float = 60.0) -> dict:
    """Partitions once none is led by a stopped node (and none is leaderless)."""

    def moved() -> dict | None:
        try:
            now = partitions(bootstrap)
        except Exception:
            return None
        return now if now and all(leader >= 0 and leader not in gone for leader, _ in now.values()) else None

    return wait_until(moved, timeout, f"partitions still led by stopped node(s) {sorted(gone)}", interval=0.3)


def leader_moves(before: dict, after: dict) -> int:
    return sum(1 for tp, (leader, _) in before.items() if tp in after and after[tp][0] != leader)


# --------------------------------------------------------------------------------------------
# Exactly once


def exactly_once_failures(outcome: Settlement, ledger: Ledger, market: SimulatedMarket, frozen_at: float) -> dict:
    """Everything that contradicts "committed exactly once, right": must all be empty / 0."""
    partial, prices = outcome.partial_attempts(ledger)
    observations: dict[str, set[Any]] = {}
    for row in prices:
        observations.setdefault(row["job_id"], set()).add(row["observed_at"])
    invariants = database_invariants(ledger)
    return {
        "pending": outcome.pending,
        "dead_lettered": sorted(outcome.dead),
        "partial": partial,
        "wrong": wrong_prices(prices, market, frozen_at),
        # A job's prices written under two observations: the job was committed twice.
        "observed_twice": sorted(j for j, seen in observations.items() if len(seen) > 1),
        "invariants": {k: v for k, v in invariants.items() if v != INVARIANTS_OK[k]},
    }


def all_clear(failures: dict) -> bool:
    return not any(failures.values())


def load(book: JobBook, seconds: float, kinds: Iterator[str], *, during: Any = None) -> float:
    """Jobs at JOBS_PER_SECOND for `seconds`; `during()` is called once, at the start (in this thread)."""
    started = time.monotonic()
    next_job = started
    if during is not None:
        during()
    while time.monotonic() - started < seconds:
        if time.monotonic() >= next_job:
            book.send(next(kinds))
            next_job += 1 / JOBS_PER_SECOND
        time.sleep(0.05)
    return time.monotonic() - started


def job_event(job_id: str, job: dict[str, Any]) -> OutboundEvent:
    """The job as the scheduler publishes it (shared.crawler.pipelines.scheduler._emit)."""
    return OutboundEvent(
        type=JOB_EVENT_TYPE,
        source="/price-crawler/scheduler/resilience",
        data=job,
        key=job_id,
        id=job_id,
        dataschema=JOB_MESSAGE_SCHEMA,
    )


@pytest.mark.timeout(420)
def test_three_brokers_lose_the_busiest_leader_then_a_second(
    cluster_system: RunningSystem, cluster_infra: PrivateInfra, market: SimulatedMarket, cluster_ledger: Ledger
) -> None:
    system, infra, ledger = cluster_system, cluster_infra, cluster_ledger
    cluster = infra.cluster
    assert cluster is not None and cluster.running() == [1, 2, 3]
    market.faults.clear()
    system.wait_ready()
    frozen_at = market.clock.now()
    bootstrap = infra.bootstrap
    started = time.monotonic()
    layout = partitions(bootstrap)
    # The production replication: every partition on three brokers, all in sync.
    assert all(len(isr) == BROKERS for _, isr in layout.values()), layout

    # --- 1. the busiest partition's leader crashes; two brokers live ---------------------------
    book = JobBook(system, market, "brokers")
    kinds = itertools.cycle(["top100", "trending", "top100", "metadata", "top100", "trending"])
    load(book, BEFORE_KILL_SECONDS, kinds)
    busiest = busiest_partition(bootstrap)
    first = partitions(bootstrap)[busiest][0]
    before_first = partitions(bootstrap)
    moved_after: list[float] = []

    def crash_first() -> None:
        cluster.stop_node(first, signal.SIGKILL)
        killed_at = time.monotonic()

        def watch() -> None:  # how long its partitions had no live leader
            wait_leaders_off(bootstrap, {first})
            moved_after.append(time.monotonic() - killed_at)

        threading.Thread(target=watch, name="leader-watch", daemon=True).start()

    load(book, TWO_BROKER_SECONDS, kinds, during=crash_first)
    after_first = wait_leaders_off(bootstrap, {first})
    first_moves = leader_moves(before_first, after_first)
    outcome = book.settle(ledger, SETTLE_SECONDS)
    two_broker_failures = exactly_once_failures(outcome, ledger, market, frozen_at)
    assert all_clear(two_broker_failures), two_broker_failures
    assert system.delivery_errors == []
    assert all(len(isr) == BROKERS - 1 for _, isr in partitions(bootstrap).values())  # every write on two copies
    two_broker_jobs, two_broker_committed = len(book.expected) + len(outcome.audits), len(outcome.committed)
    two_broker_redelivered = outcome.redelivered

    # --- 2. a second broker stops; one is left, below min.insync.replicas ------------------------
    busiest = busiest_partition(bootstrap)
    second = after_first[busiest][0]
    # Made while a consumer group can still be joined (JobBook reads the dead-letter topics).
    outage = JobBook(system, market, "one-broker")
    scheduler_producer = EventProducer(
        bootstrap,
        client_id="resilience-scheduler",
        extra={"message.timeout.ms": int(ONE_BROKER_PUBLISH_TIMEOUT * 1000)},
    )
    scheduler_producer.ping()
    before_second = partitions(bootstrap)
    cluster.stop_node(second, signal.SIGTERM)
    (last,) = cluster.running()
    one_broker_at = time.monotonic()
    after_second = wait_leaders_off(bootstrap, {first, second}, timeout=30)
    second_moves = leader_moves(before_second, after_second)
    assert all(isr == (last,) for _, isr in after_second.values()), after_second  # one copy: below min ISR
    held = [outage.send(kind) for kind in itertools.islice(kinds, HELD_JOBS)]  # a plain client: it holds them
    refused: list[tuple[str, str, dict[str, Any]]] = []
    refusals: list[str] = []
    for kind in itertools.islice(kinds, REFUSED_JOBS // 2):
        tick = [outage.new_job(kind) for _ in range(2)]  # one publish per tick, as the scheduler does
        try:
            scheduler_producer.publish(tick[0][1], [job_event(j, job) for j, _, job in tick], timeout=10)
        except DependencyUnavailable as exc:
            refusals.append(str(exc))
            refused += tick
    # Loud: every publish raised. Held: the plain client still has every job unconfirmed.
    unconfirmed = len(system.producer)
    reached_a_function = ledger.jobs([*held, *(j for j, _, _ in refused)])
    one_broker_seconds = time.monotonic() - one_broker_at
    assert len(refused) == REFUSED_JOBS, refusals
    assert unconfirmed >= HELD_JOBS, unconfirmed
    assert reached_a_function == {}, reached_a_function
    assert system.delivery_errors == []  # held, not failed: its message timeout (120 s) outlasts the outage

    # --- 3. both brokers back: the held jobs go out, the refused are published again -------------
    restart_seconds = cluster.start([first, second])
    assert cluster.running() == [1, 2, 3]
    system.wait_eventing_assigned(90)
    for _, topic, job in refused:  # the caller of a failed publish publishes again
        scheduler_producer.publish(topic, [job_event(job["job_id"], job)], timeout=30)
    scheduler_producer.close()
    recovered = book.settle(ledger, SETTLE_SECONDS)  # the first phase's jobs stay committed, once
    after = outage.settle(ledger, SETTLE_SECONDS)
    recovery_failures = exactly_once_failures(after, ledger, market, frozen_at)
    assert all_clear(recovery_failures), recovery_failures
    assert all_clear(exactly_once_failures(recovered, ledger, market, frozen_at))
    assert wait_until(
        lambda: all(len(isr) == BROKERS for _, isr in partitions(bootstrap).values()),
        90,
        "the restarted brokers never caught up (ISR below 3)",
    )
    system.wait_ready()
    statuses = Counter(after.rows[j]["status"] for j in after.committed)

    FIGURES.add(
        f"brokers={BROKERS}",
        replication="rf3,min_isr2",
        first_stop=f"node{first}:SIGKILL:leader_of:{busiest[0].split('.')[1]}/{busiest[1]}",
        first_leader_moves=first_moves,
        leaders_moved_after=moved_after[0] if moved_after else "-",
        jobs_two_brokers=two_broker_jobs,
        committed=two_broker_committed,
        redelivered=two_broker_redelivered,
        dead_lettered=len(outcome.dead),
        lost=len(outcome.pending),
        duplicates=len(two_broker_failures["observed_twice"]),
        wrong_rows=len(two_broker_failures["wrong"]),
        second_stop=f"node{second}:SIGTERM",
        second_leader_moves=second_moves,
        leader_moves=first_moves + second_moves,
        last_broker=f"node{last}",
        one_broker_seconds=one_broker_seconds,
        publish_refused=len(refused),
        refusal=sorted({m.group(1) for r in refusals if (m := re.search(r"code=(\w+)", r))}),
        held_unconfirmed=unconfirmed,
        reached_a_function=len(reached_a_function),
        restart_seconds=restart_seconds,
        jobs_after_outage=len(outage.expected) + len(after.audits),
        committed_after_outage=len(after.committed),
        statuses_after_outage=dict(statuses),
        dead_lettered_after=len(after.dead),
        lost_after=len(after.pending),
        duplicates_after=len(recovery_failures["observed_twice"]),
        seconds=time.monotonic() - started,
    )
