"""Connections to PostgreSQL with pg8000, and a small thread-safe pool.

Functions run a few request threads; each borrows a connection for one job and
runs the job's writes in one transaction (`with pool.transaction() as conn:`).
A broken connection (database restarted) is discarded, not returned, so the next
job reconnects by itself.
"""

from __future__ import annotations

import queue
import threading
from contextlib import contextmanager
from typing import Iterator
from urllib.parse import unquote, urlparse

import pg8000.native

from shared.errors import DependencyUnavailable


def connect(database_url: str, *, timeout: float = 5.0) -> pg8000.native.Connection:
    """Open one connection from a `postgresql://user:pass@host:port/db` URL."""
    url = urlparse(database_url)
    if url.scheme not in ("postgres", "postgresql"):
        raise ValueError(f"DATABASE_URL must start with postgresql://, got {url.scheme!r}")
    try:
        return pg8000.native.Connection(
            user=unquote(url.username or "postgres"),
            password=unquote(url.password) if url.password else None,
            host=url.hostname or "localhost",
            port=url.port or 5432,
            database=(url.path or "/").lstrip("/") or None,
            timeout=timeout,
            application_name="price-crawler",
        )
    except (OSError, pg8000.native.InterfaceError) as exc:
        raise DependencyUnavailable(f"PostgreSQL unreachable at {url.hostname}:{url.port}: {exc}") from exc


class ConnectionPool:
    """At most `size` open connections, created on demand, shared by threads."""

    def __init__(self, database_url: str, size: int = 4, timeout: float = 5.0):
        self._url = database_url
        self._timeout = timeout
        self._idle: queue.LifoQueue[pg8000.native.Connection] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)

    @contextmanager
    def connection(self) -> Iterator[pg8000.native.Connection]:
        """Borrow a connection (autocommit statements)."""
        if not self._slots.acquire(timeout=30):
            raise DependencyUnavailable("no free PostgreSQL connection within 30 s")
        conn = None
        try:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = connect(self._url, timeout=self._timeout)
            yield conn
        except (OSError, pg8000.native.InterfaceError) as exc:
            _close_quietly(conn)
            conn = None
            raise DependencyUnavailable(f"PostgreSQL connection lost: {exc}") from exc
        except BaseException:
            if conn is not None and _in_failed_state(conn):
                _close_quietly(conn)
                conn = None
            raise
        finally:
            if conn is not None:
                self._idle.put(conn)
            self._slots.release()

    @contextmanager
    def transaction(self) -> Iterator[pg8000.native.Connection]:
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
                _close_quietly(self._idle.get_nowait())
            except queue.Empty:
                return


def _in_failed_state(conn: pg8000.native.Connection) -> bool:
    try:
        conn.run("ROLLBACK")
        return False
    except Exception:
        return True


def _close_quietly(conn: pg8000.native.Connection | None) -> None:
    if conn is None:
        return
    try:
        conn.close()
    except Exception:
        pass
