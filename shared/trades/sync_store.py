"""Every query of exchange sync: linked accounts, their cursors, the job's job_logs rows (0015)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from shared.db.job_logs import record_job_outcome
from shared.trades.sync import LinkedAccount, StreamCursor

JOB_TYPE = "trade_sync"


def link_account(
    conn: Any,
    *,
    account_id: str,
    user_id: str,
    exchange: str,
    label: str,
    credential_name: str,
    symbols: Sequence[str] = (),
    categories: Sequence[str] = ("spot",),
) -> None:
    """Link (or update) an exchange account: what to sync and the NAME of its credential."""
    conn.run(
        "INSERT INTO trade_accounts (account_id, user_id, exchange, label, symbols, categories, credential_name)"
        " VALUES (:id, :user, :exchange, :label, CAST(:symbols AS text[]), CAST(:categories AS text[]), :cred)"
        " ON CONFLICT (account_id) DO UPDATE SET symbols = EXCLUDED.symbols, categories = EXCLUDED.categories,"
        " credential_name = EXCLUDED.credential_name, enabled = true",
        id=account_id,
        user=user_id,
        exchange=exchange,
        label=label,
        symbols=list(symbols),
        categories=list(categories),
        cred=credential_name,
    )


def enabled_accounts(conn: Any) -> list[LinkedAccount]:
    """Every enabled linked account, in a stable order."""
    rows = conn.run(
        "SELECT account_id, user_id, exchange, label, symbols, categories, credential_name"
        " FROM trade_accounts WHERE enabled ORDER BY account_id"
    )
    return [LinkedAccount(r[0], r[1], r[2], r[3], tuple(r[4] or ()), tuple(r[5] or ()), r[6]) for r in rows]


def load_cursor(conn: Any, account_id: str, stream: str) -> StreamCursor:
    """The stream's stored cursor, or a new one (nothing synced yet)."""
    rows = conn.run(
        "SELECT from_id, next_start_ms, last_exec_time_ms, last_exec_id, fills_synced FROM trade_sync_cursors"
        " WHERE account_id = :a AND stream = :s",
        a=account_id,
        s=stream,
    )
    if not rows:
        return StreamCursor(account_id, stream)
    from_id, next_start, last_time, last_id, synced = rows[0]
    return StreamCursor(account_id, stream, from_id, next_start, last_time, last_id, synced)


def save_cursor(conn: Any, cursor: StreamCursor, job_id: str) -> None:
    """Store the cursor (called only after Kafka acknowledged the fills it moves past)."""
    conn.run(
        "INSERT INTO trade_sync_cursors (account_id, stream, from_id, next_start_ms, last_exec_time_ms,"
        " last_exec_id, fills_synced, last_job_id, last_error, updated_at)"
        " VALUES (:a, :s, :f, :n, :t, :i, :c, :j, NULL, now())"
        " ON CONFLICT (account_id, stream) DO UPDATE SET from_id = EXCLUDED.from_id,"
        " next_start_ms = EXCLUDED.next_start_ms, last_exec_time_ms = EXCLUDED.last_exec_time_ms,"
        " last_exec_id = EXCLUDED.last_exec_id, fills_synced = EXCLUDED.fills_synced,"
        " last_job_id = EXCLUDED.last_job_id, last_error = NULL, updated_at = now()",
        a=cursor.account_id,
        s=cursor.stream,
        f=cursor.from_id,
        n=cursor.next_start_ms,
        t=cursor.last_exec_time_ms,
        i=cursor.last_exec_id,
        c=cursor.fills_synced,
        j=job_id,
    )


def note_stream_error(conn: Any, account_id: str, stream: str, error: str, job_id: str) -> None:
    """Say on the cursor why its last sync failed (the cursor itself does not move)."""
    conn.run(
        "INSERT INTO trade_sync_cursors (account_id, stream, last_job_id, last_error, updated_at)"
        " VALUES (:a, :s, :j, :e, now()) ON CONFLICT (account_id, stream) DO UPDATE SET"
        " last_job_id = EXCLUDED.last_job_id, last_error = EXCLUDED.last_error, updated_at = now()",
        a=account_id,
        s=stream,
        j=job_id,
        e=error.replace("\x00", "")[:1000],
    )


def record_sync_job(
    conn: Any,
    *,
    job_id: str,
    status: str,
    message: str,
    streams: int,
    streams_ok: int,
    failures: Sequence[tuple[str, str]] = (),
    started_at: datetime,
    event_id: str | None,
) -> None:
    """The account's job_logs row for this tick (upserted as pages commit), one row per failed stream."""
    record_job_outcome(
        conn,
        job_id=job_id,
        job_type=JOB_TYPE,
        system="trades",
        status=status,
        message=message,
        requested=streams,
        succeeded=streams_ok,
        failures=failures,
        started_at=started_at,
        event_id=event_id,
        count_attempt=False,  # one attempt upserts its row page by page
    )
