"""LOG_FORMAT: short readable lines for a person at a terminal, JSON for files, pipes and the cluster.

Terminals here are real pseudo-terminals (os.openpty), and the process-level checks run a real
function process's logging set-up in a child interpreter.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from local import stack
from shared.observability.logging import (
    ConsoleFormatter,
    JsonFormatter,
    console_wanted,
    log_context,
    make_formatter,
    register_secret,
)

ROOT = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
JOB = "trending:20260625T210000.000000Z"


@pytest.fixture
def terminal():
    """A writable stream that is a terminal (the slave side of a pseudo-terminal)."""
    master, slave = os.openpty()
    stream = os.fdopen(slave, "w")
    yield stream
    stream.close()
    os.close(master)


def _record(message: str, level: int = logging.INFO, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("shared.crawler.job_runner", level, __file__, 1, message, (), exc_info)


def test_a_console_line_has_time_level_function_message_and_job_id() -> None:
    formatter = ConsoleFormatter("price")
    with log_context(job_id=JOB, event_id="partition:0/offset:7"):
        line = formatter.format(_record("upstream answered slowly"))
        named = formatter.format(_record(f"job {JOB} succeeded: 30/30 tokens"))
    assert re.fullmatch(rf"\d\d:\d\d:\d\d\.\d{{3}} INFO    price upstream answered slowly job={re.escape(JOB)}", line)
    assert named.endswith(f"job {JOB} succeeded: 30/30 tokens")  # the job id is not repeated
    assert "\n" not in line and not line.startswith("{")
    assert not ANSI.search(line)


def test_console_lines_are_coloured_only_when_asked_and_mask_secrets() -> None:
    register_secret("console-secret-9d1e")
    try:
        raise RuntimeError("GET failed with key console-secret-9d1e")
    except RuntimeError:
        record = _record("calling with console-secret-9d1e", logging.ERROR, sys.exc_info())
    line = ConsoleFormatter("audit", color=True).format(record)
    assert "\x1b[1;31mERROR  \x1b[0m" in line
    assert "console-secret-9d1e" not in line and "***" in line
    assert "\n    Traceback" in ANSI.sub("", line)  # the exception follows, indented


def test_auto_means_console_only_when_stdout_and_stderr_are_terminals(terminal) -> None:
    pipe = io.StringIO()
    assert console_wanted("auto", terminal, terminal)
    assert not console_wanted("auto", pipe, terminal)  # logs redirected to a file or a pipe
    assert not console_wanted("auto", terminal, pipe)
    assert console_wanted("console", pipe, pipe) and not console_wanted("json", terminal, terminal)
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        console_wanted("text", pipe, pipe)
    assert isinstance(make_formatter("price", "json", stream=terminal), JsonFormatter)
    colored = make_formatter("price", "console", stream=terminal, environ={})
    assert isinstance(colored, ConsoleFormatter) and colored.color
    plain = make_formatter("price", "console", stream=terminal, environ={"NO_COLOR": "1"})
    assert isinstance(plain, ConsoleFormatter) and not plain.color
    forced = make_formatter("price", "console", stream=pipe, environ={"FORCE_COLOR": "1"})
    assert isinstance(forced, ConsoleFormatter) and forced.color


_FUNCTION_LOGS = """
import logging
from shared.runtime.app import FunctionApp
from shared.observability.logging import log_context
app = FunctionApp(name="price", handler=lambda event, resources: {}, needs_database=False)
with log_context(job_id="JOB_ID"):
    logging.getLogger("shared.crawler.job_runner").warning("job failed: upstream down")
""".replace("JOB_ID", JOB)


def _function_output(env: dict[str, str], *, tty: bool) -> str:
    """What a function process logs on stdout, to a pipe or to a pseudo-terminal."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("LOG_FORMAT", "NO_COLOR", "FORCE_COLOR")}
    full_env.update(env, PYTHONPATH=str(ROOT))
    if not tty:
        done = subprocess.run([sys.executable, "-c", _FUNCTION_LOGS], env=full_env, capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout.decode()
    master, slave = os.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-c", _FUNCTION_LOGS], env=full_env, stdout=slave, stderr=slave, timeout=60
        )
        os.close(slave)
        chunks = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child side is closed and drained
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(master)
    assert done.returncode == 0, b"".join(chunks).decode()
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_a_function_in_a_terminal_prints_readable_coloured_lines() -> None:
    output = _function_output({}, tty=True)
    line = next(row for row in output.splitlines() if "job failed" in row)
    assert "\x1b[33mWARNING\x1b[0m" in line
    assert re.search(rf"WARNING\x1b\[0m price job failed: upstream down .*job={re.escape(JOB)}", line)
    assert not line.lstrip().startswith("{")


def test_a_function_writes_json_to_a_pipe_and_when_told_to_in_a_terminal() -> None:
    for output in (_function_output({}, tty=False), _function_output({"LOG_FORMAT": "json"}, tty=True)):
        row = json.loads(next(r for r in output.splitlines() if "job failed" in r))
        assert row["level"] == "WARNING" and row["function"] == "price" and row["job_id"] == JOB
    forced = _function_output({"LOG_FORMAT": "console"}, tty=False)
    assert re.search(rf"WARNING +price job failed: upstream down job={re.escape(JOB)}$", forced.strip())


def test_make_up_tells_its_children_which_format_its_terminal_wants(monkeypatch, terminal) -> None:
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    # Under pytest stdout is captured: not a terminal, so the children keep JSON.
    assert stack.child_environment("127.0.0.1:9092", "postgresql://u:p@h/db")["LOG_FORMAT"] == "json"
    monkeypatch.setattr(sys, "stdout", terminal)
    monkeypatch.setattr(sys, "stderr", terminal)
    env = stack.child_environment("127.0.0.1:9092", "postgresql://u:p@h/db")
    assert (env["LOG_FORMAT"], env["FORCE_COLOR"]) == ("console", "1")
    monkeypatch.setenv("LOG_FORMAT", "json")
    assert stack.child_environment("127.0.0.1:9092", "postgresql://u:p@h/db")["LOG_FORMAT"] == "json"
