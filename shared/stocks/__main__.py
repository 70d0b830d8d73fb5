"""`python -m shared.stocks gold` (`make gold`): build the stock gold layer once, as the
stock-gold tick does, record it in job_logs and print what dbt did."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone

from shared.runtime.resources import Resources

from .gold import run_gold
from .handler import GOLD_SCHEDULE, record_gold, stock_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.stocks", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    gold = commands.add_parser("gold", help="dbt build of dbt/stocks on DATABASE_URL")
    gold.add_argument("--select", action="append", default=[], help="dbt node selection (repeatable)")
    args = parser.parse_args(argv)
    resources = Resources()
    try:
        started = datetime.now(timezone.utc)
        outcome = run_gold(stock_settings(resources), resources.settings.database_url, select=args.select)
        record_gold(resources, outcome, f"{GOLD_SCHEDULE}:manual-{started:%Y%m%dT%H%M%SZ}", started, None)
    finally:
        resources.close()
    print(f"gold {outcome.status}: {outcome.summary()}")
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
