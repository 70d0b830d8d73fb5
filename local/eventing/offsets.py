"""Per-partition completion tracking: which offset may be committed (knative-eventing.md b.6).

Records complete out of order (unordered delivery, or a DLS that answers later than the next
record's sink). The commit position is one past the longest prefix of fetched records that all
completed, so an offset is never committed before its record's sink — or dead-letter sink, or
drop — is done. Offsets are tracked in fetch order rather than assumed contiguous, because
transaction markers and compaction leave gaps.
"""

from __future__ import annotations

import threading
from collections import deque


class PartitionOffsets:
    """Completion state of one assigned partition; thread-safe (consumer thread + event loop)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: deque[int] = deque()  # fetched, in fetch order, not yet a completed prefix
        self._completed: set[int] = set()
        self._commit_position: int | None = None
        self.committed: int | None = None  # last position the broker acknowledged

    def track(self, offset: int) -> bool:
        """Register a fetched record (called in fetch order); False if it was already seen.

        A record fetched a second time (e.g. after a pause/resume re-fetch) must not be
        dispatched twice while the first copy is still in flight.
        """
        with self._lock:
            if self._pending and offset <= self._pending[-1]:
                return False
            if self._commit_position is not None and offset < self._commit_position:
                return False
            self._pending.append(offset)
            return True

    def complete(self, offset: int) -> None:
        """Mark a record done (delivered, dead-lettered or dropped)."""
        with self._lock:
            self._completed.add(offset)
            while self._pending and self._pending[0] in self._completed:
                done = self._pending.popleft()
                self._completed.discard(done)
                self._commit_position = done + 1

    def commit_position(self) -> int | None:
        """The offset to commit (next to consume), or None if nothing completed yet."""
        with self._lock:
            return self._commit_position

    def needs_commit(self) -> int | None:
        """The position to commit if it moved past the last acknowledged commit, else None."""
        with self._lock:
            position = self._commit_position
        if position is None or (self.committed is not None and position <= self.committed):
            return None
        return position

    @property
    def pending_count(self) -> int:
        """Records fetched but not yet part of the committable prefix."""
        with self._lock:
            return len(self._pending)
