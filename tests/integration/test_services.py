"""The embedded Kafka and PostgreSQL of local runs and tests (`local.services`), for real."""

from __future__ import annotations

import io
import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from local import services
from shared.db.connection import connect
from shared.db.migrations import apply_migrations, migration_files

pytestmark = pytest.mark.infra


@pytest.fixture
def isolated_state() -> Iterator[Path]:
    """A state directory of its own, so these tests never touch the session's services.

    Under .local/ rather than pytest's tmp_path: PostgreSQL runs as the `postgres` OS user,
    who cannot enter root's private temp directories.
    """
    path = services.LOCAL_DIR / f"test-state-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True, mode=0o755)
    path.chmod(0o755)
    yield path
    services.stop_all(path, timeout=10)
    shutil.rmtree(path, ignore_errors=True)


def _pg_url(port: int) -> str:
    return f"postgresql://crawler:crawler@127.0.0.1:{port}/price_crawler"


def test_kafka_produce_consume_round_trip(kafka_bootstrap, unique_topic):
    topic = unique_topic("roundtrip", partitions=3)
    sent = {f"key-{i}": f'{{"n": {i}}}' for i in range(30)}
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "acks": "all", "enable.idempotence": True})
    failures = []
    for key, value in sent.items():
        producer.produce(topic, value=value, key=key, headers={"ce_type": b"test"},
                         on_delivery=lambda err, msg: err and failures.append(err))  # fmt: skip
    assert producer.flush(10) == 0
    assert failures == []

    consumer = Consumer({
        "bootstrap.servers": kafka_bootstrap, "group.id": f"test-{uuid.uuid4().hex}",
        "auto.offset.reset": "earliest", "enable.auto.commit": False,
    })  # fmt: skip
    consumer.subscribe([topic])
    received, partitions = {}, set()
    try:
        for _ in range(200):
            if len(received) == len(sent):
                break
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            received[msg.key().decode()] = msg.value().decode()
            partitions.add(msg.partition())
            assert dict(msg.headers())["ce_type"] == b"test"
    finally:
        consumer.close()
    assert received == sent
    assert len(partitions) > 1  # keys really spread over the topic's partitions


def test_create_topics_is_idempotent(kafka_bootstrap):
    name = f"test.idempotent.{uuid.uuid4().hex[:10]}"
    try:
        assert services.create_topics(kafka_bootstrap, {name: 4}) == [name]
        assert services.create_topics(kafka_bootstrap, {name: 4}) == []
        topic = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(name, timeout=10).topics[name]
        assert len(topic.partitions) == 4
    finally:
        services.delete_topics(kafka_bootstrap, [name])


def test_project_topics_are_created_with_their_partitions(kafka_bootstrap):
    services.create_project_topics(kafka_bootstrap)
    assert services.create_project_topics(kafka_bootstrap) == []  # second run: nothing new
    metadata = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=10)
    wanted = services.project_topics()
    assert {"price-crawler.price.request", "price-crawler.metadata.request", "price-crawler.audit.request"} <= set(
        wanted
    )
    for name, spec in wanted.items():
        assert len(metadata.topics[name].partitions) == spec.partitions, name


def test_migrations_apply_once_then_nothing(postgres_url):
    url = services.create_database(postgres_url, f"price_crawler_migrate_{os.getpid()}", replace=True)
    try:
        assert apply_migrations(url) == [path.stem for path in migration_files()]
        assert apply_migrations(url) == []
        conn = connect(url)
        try:
            recorded = [row[0] for row in conn.run("SELECT version FROM schema_migrations ORDER BY version")]
        finally:
            conn.close()
        assert recorded == [path.stem for path in migration_files()]
    finally:
        services.drop_database(url)


def test_empty_database_truncates_all_but_migrations(database_url):
    conn = connect(database_url)
    try:
        conn.run("CREATE TABLE probe_parent (id serial PRIMARY KEY)")
        conn.run("CREATE TABLE probe_child (parent int REFERENCES probe_parent)")
        conn.run("INSERT INTO probe_parent DEFAULT VALUES")
        conn.run("INSERT INTO probe_child VALUES (1)")
        migrations = conn.run("SELECT count(*) FROM schema_migrations")

        emptied = services.empty_database(database_url)

        assert {"public.probe_parent", "public.probe_child"} <= set(emptied)
        assert "public.schema_migrations" not in emptied
        assert conn.run("SELECT count(*) FROM probe_child") == [[0]]
        assert conn.run("INSERT INTO probe_parent DEFAULT VALUES RETURNING id") == [[1]]  # identity restarted
        assert conn.run("SELECT count(*) FROM schema_migrations") == migrations
    finally:
        conn.run("DROP TABLE IF EXISTS probe_child, probe_parent")
        conn.close()


def test_server_already_running_is_used_not_owned(kafka_bootstrap, postgres_url, isolated_state):
    # Seen from another state directory, the session's servers are someone else's: used as
    # they are, and no handle that could stop them is returned.
    assert services.ensure_kafka(kafka_bootstrap, state_dir=isolated_state) is None
    assert services.ensure_postgres(postgres_url, state_dir=isolated_state) is None


def test_last_user_stops_a_shared_service(isolated_state, free_port):
    url = _pg_url(free_port)
    first = services.ensure_postgres(url, state_dir=isolated_state)
    second = services.ensure_postgres(url, state_dir=isolated_state)
    assert first is not None and first.started
    assert second is not None and not second.started and second.pid == first.pid
    connect(url).close()  # the URL's role and database were created

    assert first.stop() is False  # `second` still uses it
    assert services.port_open("127.0.0.1", free_port)
    assert second.stop() is True
    assert not services.port_open("127.0.0.1", free_port)
    assert not services.process_alive(first.pid)


def test_stop_all_stops_what_it_started(isolated_state, monkeypatch):
    pg_port, kafka_port = services.free_port(), services.free_port()
    monkeypatch.setenv("KAFKA_CONTROLLER_PORT", str(services.free_port()))
    postgres = services.ensure_postgres(_pg_url(pg_port), state_dir=isolated_state)
    kafka = services.ensure_kafka(f"127.0.0.1:{kafka_port}", state_dir=isolated_state)
    assert postgres is not None and kafka is not None
    assert services.port_open("127.0.0.1", pg_port) and services.port_open("127.0.0.1", kafka_port)

    assert sorted(services.stop_all(isolated_state, timeout=20)) == ["kafka", "postgres"]
    assert not services.port_open("127.0.0.1", pg_port)
    assert not services.port_open("127.0.0.1", kafka_port)
    assert not services.process_alive(postgres.pid) and not services.process_alive(kafka.pid)
    assert list((isolated_state / "run").glob("*.json")) == []
    assert services.stop_all(isolated_state) == []


def test_unreachable_remote_server_fails_with_the_reason(isolated_state):
    # 192.0.2.1 (TEST-NET-1) is not this machine, so nothing may be started for it.
    with pytest.raises(services.ServiceError, match="can only be started on this machine"):
        services.ensure_postgres("postgresql://u:p@192.0.2.1:5432/db", state_dir=isolated_state)


def test_the_topics_come_from_the_manifests_only(tmp_path):
    # One table of topics (infra/knative/base/kafkatopics.yaml): without it there is no silent fallback.
    with pytest.raises(services.ServiceError, match="kafkatopics.yaml is missing"):
        services.project_topics(tmp_path / "kafkatopics.yaml")


# --- the supervisor of `make up` (local.stack) -------------------------------------------------

_CHILD = """
import pathlib, signal, sys, time
def leave(*_):
    with open(sys.argv[1], "a") as f:
        f.write(sys.argv[2] + "\\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, leave if sys.argv[2] != "stubborn" else signal.SIG_IGN)
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""


def _child(name: str, journal: Path, stage: int = 0, requires: Path | None = None):
    from local.stack import Process

    argv = (sys.executable, "-c", _CHILD, str(journal), name)
    return Process(name, argv, requires=requires or Path(sys.executable), stage=stage)


def _wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_stack_restarts_a_child_that_dies(tmp_path):
    from local.stack import Console, Process, Stack

    output = io.StringIO()
    crashing = Process("crashing", (sys.executable, "-c", "print('hello', flush=True); raise SystemExit(3)"),
                       requires=Path(sys.executable))  # fmt: skip
    stack = Stack(Console(output), specs=[crashing], log_dir=tmp_path)
    try:
        stack.start_children(dict(os.environ))
        (child,) = stack.children
        first_pid = child.popen.pid

        def restarted() -> bool:
            stack.supervise()
            return child.popen.pid != first_pid

        _wait_until(restarted)  # the first backoff is 1 s
        assert child.failures == 1
        _wait_until(lambda: output.getvalue().count("hello") == 2)
        assert (tmp_path / "crashing.log").read_text().count("hello") == 2
    finally:
        stack.shutdown()


def test_stack_skips_missing_parts_and_stops_children_last_stage_first(tmp_path):
    from local.stack import Console, Stack, stop_children

    journal, output = tmp_path / "journal", io.StringIO()
    specs = [
        _child("market", journal, stage=0),
        _child("stubborn", journal, stage=0),
        _child("eventing", journal, stage=1),
        _child("unwritten", journal, requires=tmp_path / "not-there.py"),
    ]
    stack = Stack(Console(output), specs=specs, log_dir=tmp_path)
    stack.start_children(dict(os.environ))
    assert [c.spec.name for c in stack.children] == ["market", "stubborn", "eventing"]
    _wait_until(lambda: output.getvalue().count("ready") == 3)

    stop_children(stack.children, timeout=1)

    assert journal.read_text().split() == ["eventing", "market"]
    assert not any(c.running() for c in stack.children)  # the stubborn one was killed
