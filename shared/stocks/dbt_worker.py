"""A long-lived dbt process: `dbt build` requests in over stdin, one JSON answer per line out.

Run by the dbt virtual environment's own interpreter (`.venv-dbt/bin/python dbt_worker.py`,
`/opt/dbt/bin/python` in an image), never imported by the platform: it needs only the standard
library and dbt-core (shared/stocks/gold.py's `DbtWorker` starts it and speaks to it).

Why: a fresh `dbt build` process pays dbt's import (~2 s CPU) and its project load on every
build, most of a build's cost; here they are paid once, and each request costs the SQL plus a
partial re-parse (dbt's `partial_parse.msgpack` under the target path).

Protocol: a request is one line `{"args": ["build", "--project-dir", ...]}`; the answer one
line `{"success": true|false, "error": null|"..."}` on the descriptor that was stdout at start.
dbt's own console output goes to stderr, so nothing dbt prints can break the protocol. The
worker ends at EOF on stdin (its parent exited or closed it).
"""

from __future__ import annotations

import json
import os
import sys


def main() -> int:
    """Serve requests until stdin closes."""
    # The answers keep the original stdout; dbt's prints (and anything else) go to stderr.
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        from dbt.cli.main import dbtRunner
    except ImportError as exc:
        answers.write(json.dumps({"ready": False, "error": f"dbt-core is not importable: {exc}"}) + "\n")
        return 2
    runner = dbtRunner()
    answers.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            args = request["args"]
            if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
                raise ValueError("args must be a list of strings")
        except (ValueError, KeyError, TypeError) as exc:
            answers.write(json.dumps({"success": False, "error": f"bad request: {exc}"}) + "\n")
            continue
        try:
            result = runner.invoke(args)
            error = None if result.exception is None else f"{type(result.exception).__name__}: {result.exception}"
            answers.write(json.dumps({"success": bool(result.success), "error": error}) + "\n")
        except BaseException as exc:  # dbt raising past invoke: answer, stay up (the next build may work)
            answers.write(json.dumps({"success": False, "error": f"{type(exc).__name__}: {exc}"}) + "\n")
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
