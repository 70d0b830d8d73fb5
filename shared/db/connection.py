"""Connections to PostgreSQL with pg8000, and a small thread-safe pool.

Functions run a few request threads; each borrows a connection for one job and
runs the job's writes in one transaction (`with pool.transaction() as conn:`).
A broken connection (database restarted) is discarded, not returned, so the next
job reconnects by itself; an idle one is checked before it is lent again, so a restart
the pool slept through costs no request an error.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote, urlparse

import pg8000.native
from opentelemetry.trace import Tracer

from shared.errors import DependencyUnavailable
from shared.observability.traces import db_span

# An idle connection is checked (SELECT 1) before reuse once idle this long: a database
# restart takes longer, so a connection it killed is never lent out, and a busy pool pays nothing.
CHECK_IDLE_AFTER_SECONDS = 1.0


class Connection(pg8000.native.Connection):
    """pg8000's native connection, translating each distinct SQL text to `$n` form once.

    pg8000 rewrites `:name` parameters with a character-by-character Python loop on every
    `run`: 9 % of the price function's CPU at 1,000 tokens went to re-reading the same few
    statements. The translation depends on the text alone, so it is cached per process.

    With a tracer, each statement run inside a traced job is a database client span
    (`shared.observability.traces.db_span`), BEGIN and COMMIT included.
    """

    tracer: Tracer | None = None
    span_attributes: Mapping[str, Any] = MappingProxyType({})

    def run(self, sql, stream=None, types=None, **params):
        """Run `sql` with named parameters, as `pg8000.native.Connection.run` does."""
        if self.tracer is None:
            return self._run(sql, stream, types, params)
        with db_span(self.tracer, sql, self.span_attributes):
            return self._run(sql, stream, types, params)

    def _run(self, sql, stream, types, params):
        if not params and stream is None:
            return super().run(sql)
        statement, make_vals = _to_statement(sql)
        oids = () if types is None else make_vals(defaultdict(lambda: None, types))
        self._context = self.execute_unnamed(statement, make_vals(params), oids=oids, stream=stream)
        return self._context.rows


_to_statement = lru_cache(maxsize=512)(pg8000.native.to_statement)


def connect(database_url: str, *, timeout: float = 5.0, tracer: Tracer | None = None) -> Connection:
    """Open one connection from a `postgresql://user:pass@host:port/db` URL (its statements traced with `tracer`)."""
    url = urlparse(database_url)
    if url.scheme not in ("postgres", "postgresql"):
        raise ValueError(f"DATABASE_URL must start with postgresql://, got {url.scheme!r}")
    try:
        conn = Connection(
            user=unquote(url.username or "postgres"),
            password=unquote(url.password) if url.password else None,
            sock=_nodelay_socket(url.hostname or "localhost", url.port or 5432, timeout),
            database=(url.path or "/").lstrip("/") or None,
            timeout=timeout,
            application_name="price-crawler",
        )
    except (OSError, pg8000.native.InterfaceError) as exc:
        raise DependencyUnavailable(f"PostgreSQL unreachable at {url.hostname}:{url.port}: {exc}") from exc
    except pg8000.native.DatabaseError as exc:
        if is_unavailable(exc):  # e.g. 57P03 "the database system is starting up" during a restart
            raise DependencyUnavailable(f"PostgreSQL unavailable at {url.hostname}:{url.port}: {exc}") from exc
        raise
    if tracer is not None:
        conn.tracer = tracer
        conn.span_attributes = {
            "db.namespace": (url.path or "/").lstrip("/") or "postgres",
            "server.address": url.hostname or "localhost",
            "server.port": url.port or 5432,
        }
    return conn


def _nodelay_socket(host: str, port: int, timeout: float) -> socket.socket:
    """A TCP socket with Nagle's algorithm off.

    pg8000 never sets TCP_NODELAY: a statement larger than its write buffer leaves in two
    segments and the second waits for the server's delayed ACK (~40 ms on Linux), which
    doubled the time of a 1,000-row price insert (docs/performance.md, bug 3).
    """
    sock = socket.create_connection((host, port), timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    return sock


class ConnectionPool:
    """At most `size` open connections, created on demand, shared by threads."""

    def __init__(self, database_url: str, size: int = 4, timeout: float = 5.0, *, tracer: Tracer | None = None):
        self._url = database_url
        self._timeout = timeout
        self._tracer = tracer
        self._idle: queue.LifoQueue[tuple[pg8000.native.Connection, float]] = queue.LifoQueue()  # (conn, idle since)
        self._slots = threading.BoundedSemaphore(size)

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """Borrow a connection (autocommit statements)."""
        if not self._slots.acquire(timeout=30):
            raise DependencyUnavailable("no free PostgreSQL connection within 30 s")
        conn = None
        try:
            conn = self._checkout()
            yield conn
        except (OSError, pg8000.native.InterfaceError) as exc:
            _close_quietly(conn)
            conn = None
            raise DependencyUnavailable(f"PostgreSQL connection lost: {exc}") from exc
        except BaseException as exc:
            if isinstance(exc, pg8000.native.DatabaseError) and is_unavailable(exc):
                _close_quietly(conn)  # the server ended this session (shutdown, restart): not a bad statement
                conn = None
                raise DependencyUnavailable(f"PostgreSQL unavailable: {exc}") from exc
            if conn is not None and _in_failed_state(conn):
                _close_quietly(conn)
                conn = None
            raise
        finally:
            if conn is not None:
                self._idle.put((conn, time.monotonic()))
            self._slots.release()

    def _checkout(self) -> Connection:
        """An idle connection that still works, else a new one."""
        while True:
            try:
                conn, idle_since = self._idle.get_nowait()
            except queue.Empty:
                return connect(self._url, timeout=self._timeout, tracer=self._tracer)
            if time.monotonic() - idle_since < CHECK_IDLE_AFTER_SECONDS or _answers(conn):
                return conn
            _close_quietly(conn)  # the server ended it while it was idle (restart, idle timeout)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """Borrow a connection inside BEGIN … COMMIT; any exception rolls back."""
        with self.connection() as conn:
            conn.run("BEGIN")
            try:
                yield conn
            except BaseException:
                try:
                    conn.run("ROLLBACK")
                except Exception:  # connection already gone; the pool drops it
                    pass
                raise
            conn.run("COMMIT")

    def ping(self) -> bool:
        """True when a trivial query succeeds (readiness)."""
        try:
            with self.connection() as conn:
                conn.run("SELECT 1")
            return True
        except Exception:
            return False

    def close(self) -> None:
        """Close every idle connection."""
        while True:
            try:
                _close_quietly(self._idle.get_nowait()[0])
            except queue.Empty:
                return


# 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now ("starting up").
_SERVER_GOING_AWAY = frozenset({"57P01", "57P02", "57P03"})


def is_unavailable(exc: pg8000.native.DatabaseError) -> bool:
    """Whether a server error means the server is going away or not ready yet, not a bad statement.

    The SQLSTATEs of a shutdown or restart, and class 08 (connection exception).
    """
    fields = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
    code = str(fields.get("C", ""))
    return code in _SERVER_GOING_AWAY or code.startswith("08")


def _answers(conn: Connection) -> bool:
    try:
        conn.run("SELECT 1")
        return True
    except Exception:
        return False


def _in_failed_state(conn: Connection) -> bool:
    try:
        conn.run("ROLLBACK")
        return False
    except Exception:
        return True


def _close_quietly(conn: Connection | None) -> None:
    if conn is None:
        return
    try:
        conn.close()
    except Exception:
        pass
