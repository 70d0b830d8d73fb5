"""Reading what the functions wrote to PostgreSQL (assertions only; tests never write around the code)."""

from __future__ import annotations

from typing import Any

from shared.db.connection import connect


class Database:
    """A small reader over one connection to the test database."""

    def __init__(self, url: str):
        self.url = url
        self._conn = connect(url)

    def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        """Rows as dicts keyed by column name."""
        result = self._conn.run(sql, **params)
        names = [c["name"] for c in self._conn.columns or []]
        return [dict(zip(names, row)) for row in result or []]

    def value(self, sql: str, **params: Any) -> Any:
        """The first column of the first row (None when no row)."""
        result = self._conn.run(sql, **params)
        return result[0][0] if result else None

    def job_rows(
        self, job_id: str | None = None, *, kind: str | None = None, job_type: str | None = "price"
    ) -> list[dict[str, Any]]:
        """job_logs rows (of one job, of one kind, of one job type; None: any), oldest first."""
        return self.rows(
            "SELECT * FROM job_logs WHERE (CAST(:job AS text) IS NULL OR job_id = :job)"
            " AND (CAST(:kind AS text) IS NULL OR row_kind = :kind)"
            " AND (CAST(:type AS text) IS NULL OR job_type = :type) ORDER BY id",
            job=job_id,
            kind=kind,
            type=job_type,
        )

    def latest_prices(self) -> dict[str, dict[str, Any]]:
        """token_latest_prices joined with the token's symbol, by token key."""
        return {
            r["token_key"]: r
            for r in self.rows("SELECT l.*, t.symbol FROM token_latest_prices l JOIN tokens t USING (token_key)")
        }

    def top100_keys(self) -> list[str]:
        """Current top-100 members in rank order."""
        return [
            r["token_key"]
            for r in self.rows(
                "SELECT token_key FROM token_set_members WHERE token_set = 'top100' AND left_at IS NULL ORDER BY rank"
            )
        ]

    def close(self) -> None:
        self._conn.close()
