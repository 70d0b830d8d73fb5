"""`python -m shared.trades token <user_id> [--lifetime SECONDS]`: a bearer token for the trades API.

Signed with TRADES_TOKEN_KEY (under `make up`: the key in .local/trades-token-key, which
`local.stack` exports; `TRADES_TOKEN_KEY=$(cat .local/trades-token-key)` in another shell).
For local runs and operators; production tokens come from the platform's login service.
"""

from __future__ import annotations

import argparse
import sys

from shared.trades.auth import issue_token
from shared.trades.settings import MIN_TOKEN_KEY_BYTES, TradesSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.trades")
    commands = parser.add_subparsers(dest="command", required=True)
    token = commands.add_parser("token", help="print a bearer token for a user")
    token.add_argument("user_id")
    token.add_argument("--lifetime", type=int, default=3600, help="seconds (default 3600)")
    args = parser.parse_args(argv)
    settings = TradesSettings()
    if len(settings.token_key.get_secret_value().encode()) < MIN_TOKEN_KEY_BYTES:
        print(f"TRADES_TOKEN_KEY is unset or shorter than {MIN_TOKEN_KEY_BYTES} bytes", file=sys.stderr)
        return 2
    print(issue_token(settings, args.user_id, lifetime_seconds=args.lifetime))
    return 0


if __name__ == "__main__":
    sys.exit(main())
