"""A user's feed of enriched trades and alerts, in commit order, read from a cursor.

Writers (the enricher, the analyser) append inside the transaction that stores the item, after
taking an advisory lock per user that is held until that transaction ends: the next append of
the same user can only take its `seq` after this one committed (or rolled back), so one
user's seqs become visible in increasing order. A reader that asks for what comes after the
last seq it saw therefore gets no gap and no repeat (different users' appends do not wait for
each other: a user's feed only orders that user's items).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

# advisory lock namespace of the per-user feed lock (hashtextextended seed)
FEED_LOCK_SEED = 23


def append(conn: Any, user_id: str, kind: Literal["trade", "alert"], item_id: str, record: dict[str, Any]) -> int:
    """Append an item to the user's feed inside the caller's transaction; its seq."""
    conn.run("SELECT pg_advisory_xact_lock(hashtextextended(:user, :seed))", user=user_id, seed=FEED_LOCK_SEED)
    rows = conn.run(
        "INSERT INTO trade_feed (user_id, kind, item_id, record) VALUES (:user, :kind, :item, CAST(:record AS jsonb))"
        " RETURNING seq",
        user=user_id,
        kind=kind,
        item=item_id,
        record=json.dumps(record),
    )
    return int(rows[0][0])


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One item of a feed: its cursor, what it is and its record."""

    seq: int
    kind: str
    item_id: str
    record: dict[str, Any]


def read(conn: Any, user_id: str, *, after: int, limit: int) -> list[FeedItem]:
    """The user's items after cursor `after`, oldest first."""
    rows = conn.run(
        "SELECT seq, kind, item_id, record FROM trade_feed WHERE user_id = :user AND seq > :after"
        " ORDER BY seq LIMIT :limit",
        user=user_id,
        after=after,
        limit=limit,
    )
    return [FeedItem(int(r[0]), r[1], r[2], json.loads(r[3]) if isinstance(r[3], str) else r[3]) for r in rows]
