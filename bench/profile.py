"""Where the price function's CPU goes: a py-spy sampling profile, summarised.

py-spy samples the running worker from outside (no code change, no restart); a CPU
profile samples the thread holding the GIL, so its shares are of the one process's
Python CPU time, not of waiting.

The raw output (collapsed stacks) is kept next to the run's logs.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

JOB_FRAME = "shared/crawler/job_runner.py"
# Frames that do the job's own work (the runtime's wrappers would always read 100 %).
OWN_WORK = ("shared/crawler/pipelines/", "shared/crawler/domain/", "shared/upstream/", "shared/db/", "shared/kafka.py")
SAMPLE_RATE = 50  # per second: low enough not to disturb a 2-core machine much

# Innermost matching frame decides the bucket (file path fragments as py-spy prints them).
BUCKETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "waiting for our own upstream rate limiter",
        ("_wait_or_give_up", "_await_rate_limit", "shared/upstream/ratelimit.py"),
    ),
    ("PostgreSQL driver (pg8000)", ("pg8000/",)),
    ("upstream HTTP client (httpx/httpcore/h11)", ("httpx/", "httpcore/", "h11/", "anyio/")),
    ("Kafka client (confluent_kafka)", ("confluent_kafka/",)),
    ("JSON encode/decode", ("json/",)),
    ("logging", ("logging/", "shared/observability/logging.py")),
    (
        "metrics/tracing (OpenTelemetry, prometheus)",
        ("opentelemetry/", "prometheus_client/", "shared/observability/metrics.py", "shared/observability/tracing.py"),
    ),
    (
        "CloudEvent + HTTP server (gunicorn, flask, werkzeug, cloudevents)",
        ("gunicorn/", "flask/", "werkzeug/", "cloudevents/", "functions_framework/", "shared/runtime/"),
    ),
    ("settings/validation (pydantic)", ("pydantic/", "pydantic_settings/")),
    ("our upstream clients (retries, breaker, decoding)", ("shared/upstream/",)),
    (
        "price pipeline and domain code",
        (
            "shared/crawler/pipelines/",
            "shared/crawler/domain/",
            "shared/db/",
            "shared/crawler/jobs.py",
            "shared/crawler/models.py",
        ),
    ),
)
# Standard-library I/O is charged to the library that called it (socket.py under pg8000 is
# database time); only when no library is on the stack does it count on its own.
STDLIB_IO = (
    "socket/ssl/selectors/threading (no library above)",
    ("threading.py", "queue.py", "socket.py", "ssl.py", "selectors.py"),
)


def pick_worker(pid: int) -> int:
    """The busiest process of a function's tree (the gunicorn worker, not its arbiter)."""
    import psutil

    try:
        root = psutil.Process(pid)
        candidates = [root, *root.children(recursive=True)]
        return max(candidates, key=lambda p: sum(p.cpu_times()[:2])).pid
    except psutil.Error:
        return pid


def record_profile(pid: int, seconds: float, out_dir: Path, *, wall_clock: bool = False) -> dict[str, Any] | None:
    """Sample the function's worker for `seconds`; None (and a warning) when py-spy cannot.

    `wall_clock=True` samples waiting threads too and keeps only stacks inside a job:
    where a job's time goes (rate-limiter sleeps, sockets) rather than its CPU.
    Otherwise only the thread holding the GIL is sampled: py-spy's idle detection counts
    a thread blocked in a socket read as running, which tripled the "CPU" of a worker whose
    threads mostly wait; the GIL holder is what one process's threads queue for.
    """
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        log.warning("py-spy is not installed: no profile (pip install py-spy)")
        return None
    worker = pick_worker(pid)
    raw = out_dir / f"profile-{'wall' if wall_clock else 'cpu'}-{worker}.txt"
    result = subprocess.run(
        [
            py_spy,
            "record",
            "--pid",
            str(worker),
            "--duration",
            str(int(seconds)),
            "--rate",
            str(SAMPLE_RATE),
            "--format",
            "raw",
            "--nolineno",
            "--nonblocking",
            "--output",
            str(raw),
            *(["--idle"] if wall_clock else ["--gil"]),
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    if result.returncode != 0 or not raw.exists():
        log.warning("py-spy failed (%s): %s", result.returncode, result.stderr.strip()[-500:])
        return None
    summary = summarise(raw.read_text(), only_jobs=wall_clock)
    summary["kind"] = "wall clock inside jobs" if wall_clock else "CPU"
    summary["raw_file"] = str(raw)
    summary["seconds"] = seconds
    return summary


def summarise(collapsed: str, top: int = 12, *, only_jobs: bool = False) -> dict[str, Any]:
    """Buckets, top self frames and top inclusive project functions of collapsed stacks.

    `only_jobs` keeps the stacks that run a job (idle server threads are left out).
    """
    buckets: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if not f.startswith("process ") and not f.startswith("thread ")]
        if not frames or (only_jobs and not any(JOB_FRAME in f for f in frames)):
            continue
        total += count
        leaves[frames[-1]] += count
        buckets[_bucket(frames)] += count
        for frame in set(frames):
            if any(part in frame for part in OWN_WORK):
                inclusive[frame] += count
    share = (lambda n: round(100 * n / total, 1)) if total else (lambda n: 0.0)
    return {
        "samples": total,
        "buckets": [(name, share(n)) for name, n in buckets.most_common()],
        "self": [(frame, share(n)) for frame, n in leaves.most_common(top)],
        "inclusive": [(frame, share(n)) for frame, n in inclusive.most_common(top)],
    }


def _bucket(frames: list[str]) -> str:
    for buckets in (BUCKETS, (STDLIB_IO,)):
        for frame in reversed(frames):
            for name, fragments in buckets:
                if any(fragment in frame for fragment in fragments):
                    return name
    return "other (interpreter, standard library)"
