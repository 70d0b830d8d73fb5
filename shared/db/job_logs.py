"""A scheduled job's outcome in `job_logs`, for the systems whose jobs are not the crawler's.

The crawler's jobs go through shared/crawler/job_runner.py (start, retry, finish, expiry); the
stock ticks, the gold builds and the exchange sync record one outcome per job instead: a `job`
row, upserted, and one `token` row per failed item (a symbol, a dbt node, an exchange stream)
with its reason. Texts are cut and NUL-free, as PostgreSQL takes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any


def record_job_outcome(
    conn: Any,
    *,
    job_id: str,
    job_type: str,
    system: str,
    status: str,
    message: str,
    requested: int,
    succeeded: int,
    failures: Sequence[tuple[str, str]],
    started_at: datetime,
    event_id: str | None,
    count_attempt: bool = True,
) -> None:
    """Upsert the job's row (`token_type` = `system`) and one row per (item, reason) of `failures`.

    `count_attempt`: a new attempt of the job (a redelivery) raises `attempts`; a job that
    records its progress several times in one attempt (the sync, page by page) passes False.
    """
    attempts = "j.attempts + 1" if count_attempt else "j.attempts"
    conn.run(
        "INSERT INTO job_logs AS j (row_kind, job_id, job_type, token_type, status, message, tokens_requested,"
        " tokens_succeeded, tokens_failed, event_id, started_at, first_started_at, finished_at)"
        " VALUES ('job', :id, :jt, :sys, :st, :msg, :req, :ok, :bad, :ev, :at, :at, now())"
        " ON CONFLICT (job_id, row_kind, token_ref) DO UPDATE SET status = EXCLUDED.status,"
        " message = EXCLUDED.message, tokens_requested = EXCLUDED.tokens_requested,"
        " tokens_succeeded = EXCLUDED.tokens_succeeded, tokens_failed = EXCLUDED.tokens_failed,"
        f" attempts = {attempts}, finished_at = now(), executed_at = now()",
        id=job_id,
        jt=job_type,
        sys=system,
        st=status,
        msg=message.replace("\x00", "")[:2000],
        req=requested,
        ok=succeeded,
        bad=len(failures),
        ev=event_id,
        at=started_at,
    )
    for ref, reason in failures:
        conn.run(
            "INSERT INTO job_logs AS j (row_kind, job_id, job_type, token_type, token_ref, status, message, event_id)"
            " VALUES ('token', :id, :jt, :sys, :ref, 'failed', :msg, :ev)"
            " ON CONFLICT (job_id, row_kind, token_ref) DO UPDATE SET message = EXCLUDED.message,"
            " attempts = j.attempts + 1, executed_at = now()",
            id=job_id,
            jt=job_type,
            sys=system,
            ref=ref.replace("\x00", "")[:200],
            msg=reason.replace("\x00", "")[:1000],
            ev=event_id,
        )
