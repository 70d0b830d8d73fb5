"""`python -m shared.db migrate`: apply pending migrations to $DATABASE_URL."""

from __future__ import annotations

import sys

from shared.config import get_settings
from shared.db.migrations import apply_migrations


def main(argv: list[str]) -> int:
    if argv[:1] != ["migrate"]:
        print("usage: python -m shared.db migrate", file=sys.stderr)
        return 2
    applied = apply_migrations(get_settings().database_url)
    print(f"migrations applied: {', '.join(applied) if applied else 'none (up to date)'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
