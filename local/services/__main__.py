"""`python -m local.services stop-all`: what `make down` runs."""

from __future__ import annotations

import logging
import sys

from local.services.processes import stop_all


def main(argv: list[str]) -> int:
    """`python -m local.services stop-all`: what `make down` runs."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if argv != ["stop-all"]:
        print("usage: python -m local.services stop-all", file=sys.stderr)
        return 2
    stopped = stop_all()
    print(f"stopped: {', '.join(stopped)}" if stopped else "nothing of this project was running")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
