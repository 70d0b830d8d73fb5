"""The `price-crawler` command: its help names every operation, and `migrate` migrates a real database."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path

import pytest

from local import services
from shared.crawler import cli
from tests.helpers.db import Database

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, **env: str) -> subprocess.CompletedProcess:
    """`price-crawler ARGS` as the entry point runs it (shared.crawler.cli:main), in a fresh process."""
    return subprocess.run(
        [sys.executable, "-c", "import sys; from shared.crawler.cli import main; sys.exit(main())", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
    )


def test_the_entry_point_is_declared() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"price-crawler": "shared.crawler.cli:main"}


def test_help_says_what_each_operation_does() -> None:
    result = _run("--help")
    assert result.returncode == 0, result.stderr
    for name, command in cli.COMMANDS.items():
        assert name in result.stdout
        assert " ".join(command.summary.split()[:4]) in " ".join(result.stdout.split()), name
    assert set(cli.COMMANDS) == {"migrate", "replay-bronze", "replay-dead-letters", "status"}
    # Each command's own options come from the module that owns it.
    assert "--from START" in _run("replay-bronze", "--help").stdout
    dead_letters = _run("replay-dead-letters", "--help").stdout
    assert all(option in dead_letters for option in ("--topic", "--job-id", "--since", "--to", "--dry-run"))
    assert "--watch" in _run("status", "--help").stdout
    unknown = _run("bogus")
    assert unknown.returncode == 2 and "invalid choice: 'bogus'" in unknown.stderr


@pytest.mark.infra
def test_migrate_brings_a_new_database_up_to_date(postgres_url: str) -> None:
    url = services.create_database(postgres_url, f"price_crawler_cli_{uuid.uuid4().hex[:8]}")
    try:
        first = _run("migrate", DATABASE_URL=url)
        assert first.returncode == 0, first.stderr
        migrations = sorted(p.stem for p in (ROOT / "db" / "migrations").glob("*.sql"))
        assert first.stdout.strip() == f"migrations applied: {', '.join(migrations)}"
        db = Database(url)
        try:
            assert [
                r["version"] for r in db.rows("SELECT version FROM schema_migrations ORDER BY version")
            ] == migrations
        finally:
            db.close()
        again = _run("migrate", DATABASE_URL=url)
        assert again.stdout.strip() == "migrations applied: none (up to date)", again.stderr
    finally:
        services.drop_database(url)
