"""The benchmark's own Kafka broker and PostgreSQL cluster.

They live in `.local/bench/` on their own ports (Kafka 29092 with its controller on 29093,
PostgreSQL 15433 unless BENCH_KAFKA_PORT / BENCH_POSTGRES_PORT say otherwise), so a benchmark never shares
topics, consumer groups or tables with a developer's `make up` or a test session, and
their load never lands in ours. Same programs, same settings as `make up`
(`local.services`), plus `track_commit_timestamp=on`: the exact commit time of every
price row is what tick-to-commit latency is measured against.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field

from local import services
from local.services import LOCAL_DIR

log = logging.getLogger(__name__)

BENCH_STATE_DIR = LOCAL_DIR / "bench"
BENCH_DATABASE = "price_crawler_bench"
# The role/password the project's own cluster uses everywhere (shared.config default).
BENCH_ROLE = "crawler:crawler"


@dataclass
class BenchInfra:
    """Kafka and PostgreSQL of one benchmark run; `stop()` stops what `start()` started."""

    kafka_port: int = field(default_factory=lambda: int(os.environ.get("BENCH_KAFKA_PORT") or 29092))
    postgres_port: int = field(default_factory=lambda: int(os.environ.get("BENCH_POSTGRES_PORT") or 15433))
    handles: list[services.EmbeddedService] = field(default_factory=list)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def database_url(self) -> str:
        return f"postgresql://{BENCH_ROLE}@127.0.0.1:{self.postgres_port}/{BENCH_DATABASE}"

    def start(self) -> None:
        """Start (or join) the bench broker and cluster, migrate, create the project's topics."""
        from shared.db.migrations import apply_migrations

        # Exact commit time per row (pg_xact_commit_timestamp); costs a few bytes per transaction.
        services.POSTGRES_SETTINGS.setdefault("track_commit_timestamp", "on")
        BENCH_STATE_DIR.mkdir(parents=True, exist_ok=True)
        for ensure, address in ((services.ensure_postgres, self.database_url), (services.ensure_kafka, self.bootstrap)):
            handle = ensure(address, state_dir=BENCH_STATE_DIR)
            if handle is None:  # somebody else's server: never reset its topics or tables
                self.stop()
                raise services.ServiceError(
                    f"{address.split('@')[-1]} is served by a program that is not the benchmark's own: "
                    "set BENCH_KAFKA_PORT / BENCH_POSTGRES_PORT to free ports"
                )
            self.handles.append(handle)
        apply_migrations(self.database_url)
        services.create_project_topics(self.bootstrap)

    def commit_timestamps_on(self) -> bool:
        """True when the cluster records commit times (else job_logs.finished_at is the commit time)."""
        conn = self.connect()
        try:
            return conn.run("SHOW track_commit_timestamp")[0][0] == "on"
        finally:
            conn.close()

    def connect(self, *, nodelay: bool = False):
        """A pg8000 connection to the bench database (autocommit), as the functions open theirs.

        `nodelay=True` sets TCP_NODELAY, which pg8000 does not: a statement larger than one
        TCP segment then leaves at once instead of waiting for the server's delayed ACK
        (up to 40 ms) — what a physical-limit baseline must not pay.
        """
        from shared.db.connection import connect

        if not nodelay:
            return connect(self.database_url)
        import socket

        import pg8000.native

        sock = socket.create_connection(("127.0.0.1", self.postgres_port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        user, password = BENCH_ROLE.split(":")
        return pg8000.native.Connection(
            user=user, password=password, database=BENCH_DATABASE, sock=sock, application_name="price-crawler-bench"
        )

    def reset(self) -> None:
        """Empty every table and recreate the project's topics: each run starts from nothing."""
        services.empty_database(self.database_url)
        names = list(services.project_topics())
        services.delete_topics(self.bootstrap, names)
        deadline = time.monotonic() + 60
        while True:  # deletion is asynchronous: creating too early fails with "marked for deletion"
            try:
                services.create_project_topics(self.bootstrap)
                return
            except services.ServiceError as exc:
                if time.monotonic() > deadline:
                    raise
                log.debug("topics not recreated yet: %s", exc)
                time.sleep(0.5)

    def pids(self) -> dict[str, int]:
        """Main process id of the broker and of the PostgreSQL postmaster."""
        return {handle.name: handle.pid for handle in self.handles}

    def stop(self) -> None:
        for handle in reversed(self.handles):
            handle.stop()
        self.handles.clear()
