"""price-crawler: one command for the operations that were spread over `python -m` modules.

    price-crawler migrate                  apply pending schema migrations (shared.db)
    price-crawler replay-bronze ...        rebuild silver rows from the bronze archive (shared.crawler)
    price-crawler replay-dead-letters ...  re-publish dead letters, key and headers intact (shared.dead_letter_replay)
    price-crawler status ...               the running system at a glance (local.status)

Each subcommand hands its arguments to the module that owns it; `price-crawler <command> --help`
shows that module's options. Addresses come from the environment (DATABASE_URL,
KAFKA_BOOTSTRAP_SERVERS, ...), as everywhere else (shared.config).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass

from shared.config import get_settings

PROG = "price-crawler"


def _migrate(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog=f"{PROG} migrate", description=COMMANDS["migrate"].summary)
    parser.parse_args(argv)
    from shared.db.__main__ import main as db_main

    return db_main(["migrate"])


def _replay_bronze(argv: list[str]) -> int:
    from shared.crawler.__main__ import main as archive_main

    return archive_main(["replay", *argv])


def _replay_dead_letters(argv: list[str]) -> int:
    from shared import dead_letter_replay

    parser = argparse.ArgumentParser(
        prog=f"{PROG} replay-dead-letters", description=COMMANDS["replay-dead-letters"].summary
    )
    dead_letter_replay.add_arguments(parser)
    args = parser.parse_args(argv)
    dead_letter_replay.check_arguments(parser, args)
    return dead_letter_replay.run(args, get_settings())


def _status(argv: list[str]) -> int:
    from local.status import main as status_main

    return status_main(argv)


@dataclass(frozen=True)
class Command:
    """One subcommand: what it does (its --help line) and the module function that does it."""

    summary: str
    run: Callable[[list[str]], int]


COMMANDS: dict[str, Command] = {
    "migrate": Command("apply the pending schema migrations of db/migrations to DATABASE_URL", _migrate),
    "replay-bronze": Command(
        "rebuild tokens, memberships, prices and audits for a time range from the bronze archive"
        " (--from, --to, --dry-run)",
        _replay_bronze,
    ),
    "replay-dead-letters": Command(
        "re-publish dead-lettered events to their request topic with key and headers intact"
        " (--topic, --job-id, --since, --to, --dry-run)",
        _replay_dead_letters,
    ),
    "status": Command(
        "the running system at a glance: readiness, lag, schedules, freshness, eventing, failures (--json, --watch N)",
        _status,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser: one subcommand per operation, each with its summary."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__.split("\n\n")[0],
        epilog=f"'{PROG} <command> --help' shows the options of a command.",
    )
    commands = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    for name, command in COMMANDS.items():
        commands.add_parser(name, help=command.summary, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run `price-crawler <command> [options]`; the command's own module parses the options."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in COMMANDS:
        build_parser().parse_args(argv[:1])  # prints the help (-h) or the usage error, and exits
        return 2
    return COMMANDS[argv[0]].run(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
