"""store.dead_letter_job: ends a job that never finished, keeps one that did, changes nothing twice."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.crawler import store
from shared.db.connection import connect
from tests.helpers.db import Database

pytestmark = pytest.mark.infra


def test_dead_letter_ends_running_failed_and_missing_rows_but_never_a_finished_one(clean_db: str) -> None:
    conn = connect(clean_db)
    db = Database(clean_db)
    try:
        for job_id in ("running-1", "failed-1", "succeeded-1"):
            store.start_job(conn, store.JobRecord(job_id, "price", "top100", "e"), datetime.now(UTC), 1)
        store.finish_job(
            conn,
            store.JobRecord("failed-1", "price", "top100"),
            status="failed",
            message="503",
            tokens_requested=1,
            tokens_succeeded=0,
            failures=[],
        )
        store.finish_job(
            conn,
            store.JobRecord("succeeded-1", "price", "top100"),
            status="succeeded",
            message=None,
            tokens_requested=1,
            tokens_succeeded=1,
            failures=[],
        )

        def end(job_id: str) -> int:
            return store.dead_letter_job(
                conn,
                store.JobRecord(job_id, "price", "top100", "e"),
                row_ids=(job_id, f"rejected:{job_id}"),
                reason=f"why {job_id}",
            )

        assert [end(j) for j in ("running-1", "failed-1", "succeeded-1", "missing-1")] == [1, 1, 0, 1]
        assert end("running-1") == 0 and end("missing-1") == 0  # a redelivered dead letter
        statuses = {
            r["job_id"]: (r["status"], r["message"])
            for r in db.rows("SELECT job_id, status, message FROM job_logs WHERE row_kind = 'job'")
        }
        assert statuses == {
            "running-1": ("dead_lettered", "why running-1"),
            "failed-1": ("dead_lettered", "why failed-1"),
            "succeeded-1": ("succeeded", None),
            "missing-1": ("dead_lettered", "why missing-1"),
        }
    finally:
        conn.close()
        db.close()
