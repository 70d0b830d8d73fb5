"""Ordered, idempotent schema migrations from `db/migrations/NNNN_name.sql`.

`python -m shared.db migrate` applies every file not yet recorded in
`schema_migrations`, each in its own transaction, under an advisory lock so that
several processes starting at once (functions, tests, `make up`) do not race.
Applying twice is harmless: applied versions are skipped.
"""

from __future__ import annotations

import re
from pathlib import Path

import pg8000.native

from shared.db.connection import connect

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "db" / "migrations"
_LOCK_ID = 0x70726963  # arbitrary constant: "pric"
_FILE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[Path]:
    """The migration files in apply order; a misnamed .sql file is an error, not skipped."""
    files = sorted(p for p in directory.glob("*.sql"))
    for path in files:
        if not _FILE.match(path.name):
            raise ValueError(f"migration file {path.name!r} is not named NNNN_name.sql")
    return files


def apply_migrations(database_url: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations; return the versions applied by this call."""
    conn = connect(database_url)
    try:
        conn.run("SELECT pg_advisory_lock(:id)", id=_LOCK_ID)
        try:
            conn.run(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.run("SELECT version FROM schema_migrations")}
            applied = []
            for path in migration_files(directory):
                version = path.stem
                if version in done:
                    continue
                _apply_one(conn, version, path.read_text())
                applied.append(version)
            return applied
        finally:
            conn.run("SELECT pg_advisory_unlock(:id)", id=_LOCK_ID)
    finally:
        conn.close()


def _apply_one(conn: pg8000.native.Connection, version: str, sql: str) -> None:
    conn.run("BEGIN")
    try:
        conn.execute_simple(sql)  # simple protocol: the file may hold many statements
        conn.run("INSERT INTO schema_migrations (version) VALUES (:v)", v=version)
        conn.run("COMMIT")
    except Exception:
        conn.run("ROLLBACK")
        raise
