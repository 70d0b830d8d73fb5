"""`python -m local.market`: run the simulated market in the foreground."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from decimal import Decimal, InvalidOperation

from local.market.server import SimulatedMarket
from local.market.universe import DEFAULT_SEED, DEFAULT_SIZE, MAX_SIZE


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a decimal number: {text!r}") from None
    if not value.is_finite() or value <= 0:
        raise argparse.ArgumentTypeError("must be a positive number")
    return value


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, start the market, serve until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m local.market", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8090, help="port (default 8090; 0 = any free port)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"universe seed (default {DEFAULT_SEED})")
    parser.add_argument(
        "--universe-size",
        type=int,
        default=DEFAULT_SIZE,
        help=f"number of tokens (default {DEFAULT_SIZE}, at most {MAX_SIZE})",
    )
    parser.add_argument("--usdt-usd", type=_decimal, default=None, help="USD price of one USDT (default 1.0003)")
    parser.add_argument("--latency-ms", type=int, default=0, help="added to every upstream response")
    parser.add_argument("--binance-weight-limit", type=int, default=6000, help="Binance request weight per minute")
    parser.add_argument("--access-log", action="store_true", help="log every request")
    parser.add_argument(
        "--fills-per-minute",
        type=float,
        default=float(os.environ.get("MARKET_FILLS_PER_MINUTE") or 0),
        help="fills generated across the exchange accounts per minute (default MARKET_FILLS_PER_MINUTE or 0)",
    )
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    options = {"usdt_usd": args.usdt_usd} if args.usdt_usd is not None else {}
    try:
        market = SimulatedMarket(
            host=args.host,
            port=args.port,
            seed=args.seed,
            universe_size=args.universe_size,
            latency_ms=args.latency_ms,
            binance_weight_limit=args.binance_weight_limit,
            access_log=args.access_log,
            fills_per_minute=args.fills_per_minute,
            **options,
        )
        # Keys come from the environment, never the command line (visible to every `ps`):
        # MARKET_EXCHANGE_ACCOUNTS='[{"exchange", "api_key", "api_secret", "symbols": [...]}]'.
        for entry in json.loads(os.environ.get("MARKET_EXCHANGE_ACCOUNTS") or "[]"):
            market.exchange_accounts.add_account(
                entry["exchange"], entry["api_key"], entry["api_secret"], tuple(entry["symbols"])
            )
    except (ValueError, OSError, KeyError, TypeError) as error:
        print(f"simulated market: {error}", file=sys.stderr)
        return 2
    # serve_forever blocks this thread; a signal handler stops it from a helper thread.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=market.stop).start())
    logging.getLogger("local.market").info(
        "simulated market on %s (seed %s, %s tokens); %s",
        market.url,
        args.seed,
        args.universe_size,
        " ".join(f"{k}={v}" for k, v in market.env().items()),
    )
    try:
        market.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        market.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
