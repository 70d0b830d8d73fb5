"""`python -m shared.crawler replay --from 2025-06-25T21:00Z --to 2025-06-25T22:00Z [--dry-run]`

Rebuilds `tokens`, the top-100 and trending memberships, `token_prices` (and so the gold
candles) and `token_audits` for the jobs archived in [from, to) from the bronze archive
configured by S3_ENDPOINT_URL / S3_BUCKET / ARCHIVE_PREFIX, into DATABASE_URL. Prints a JSON
summary (jobs replayed, rows written, jobs skipped with their reason, divergences); exit code
0 when done, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone

from shared.archive.bronze import BronzeArchive
from shared.config import get_settings
from shared.crawler.replay import replay
from shared.db.connection import ConnectionPool


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset (e.g. 2025-06-25T21:00:00Z)")
    return value.astimezone(timezone.utc)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run it."""
    parser = argparse.ArgumentParser(prog="python -m shared.crawler", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("replay", help="rebuild silver rows for a time range from bronze")
    run.add_argument("--from", dest="start", type=_instant, required=True, help="start of the range (inclusive)")
    run.add_argument("--to", dest="end", type=_instant, required=True, help="end of the range (exclusive)")
    run.add_argument("--dry-run", action="store_true", help="derive the rows, write nothing")
    args = parser.parse_args(argv)
    if args.start >= args.end:
        parser.error("--from must be before --to")

    settings = get_settings()
    pool = ConnectionPool(settings.database_url, size=1)
    try:
        report = replay(
            pool, BronzeArchive.from_settings(settings), settings, args.start, args.end, dry_run=args.dry_run
        )
    finally:
        pool.close()
    json.dump(
        {"from": args.start.isoformat(), "to": args.end.isoformat(), "dry_run": args.dry_run, **report.summary()},
        sys.stdout,
        indent=2,
    )
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
