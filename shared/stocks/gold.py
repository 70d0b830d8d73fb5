"""The gold layer's run: `dbt build` of dbt/stocks/ on PostgreSQL, and what it did.

dbt runs in a process of its own: dbt-core pins packages below what the platform's dev tools
need (so `make setup` gives it its own virtual environment, `.venv-dbt`), its import costs
about 2 s and it reconfigures logging globally, none of which belongs in a function that also
takes a quote tick every 6 s. This module builds the command and its environment (pure),
runs it, and reads dbt's own record of the run, `target/run_results.json`, into a
`GoldOutcome`: models built, failed and skipped, tests passed and failed, each failure named.

Two ways to run it, same command and same result file: a fresh `dbt` process per build
(`make gold`), or a `DbtWorker`, one long-lived dbt process (dbt_worker.py) that the stocks
function keeps: a fresh process spends most of a build importing dbt and loading the project
(~4 s CPU of ~4.5), the worker pays that once (a build then costs ~1.2 s CPU; docs/performance.md).
"""

from __future__ import annotations

import json
import logging
import os
import select
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from .settings import StockSettings

log = logging.getLogger(__name__)

MODELS = (
    "silver_stock_quotes",
    "gold_kpi",
    "gold_kpi_history",
    "gold_kpi_latest",
    "gold_candlestick",
    "gold_treechart",
)


@dataclass(frozen=True, slots=True)
class NodeFailure:
    """A model that failed or a test that found rows (or errored), with dbt's message."""

    name: str
    kind: str  # model | test
    status: str  # error | fail
    message: str


@dataclass(frozen=True, slots=True)
class GoldOutcome:
    """What one `dbt build` did."""

    models_built: int = 0
    models_failed: int = 0
    models_skipped: int = 0
    tests_passed: int = 0
    tests_failed: int = 0
    tests_skipped: int = 0
    duration_seconds: float = 0.0
    failures: tuple[NodeFailure, ...] = ()
    error: str | None = None  # dbt could not run at all (missing, timed out, no results)
    returncode: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not self.models_failed and not self.tests_failed and self.returncode == 0

    @property
    def status(self) -> str:
        """The job_logs status: succeeded, partial (built, but a data test failed) or failed."""
        if self.ok:
            return "succeeded"
        if self.error is None and not self.models_failed and self.models_built:
            return "partial"
        return "failed"

    def summary(self) -> str:
        if self.error is not None:
            return f"dbt build did not run: {self.error}"
        text = (
            f"models {self.models_built} built, {self.models_failed} failed, {self.models_skipped} skipped; "
            f"tests {self.tests_passed} passed, {self.tests_failed} failed; {self.duration_seconds:.1f} s"
        )
        if self.failures:
            text += "; " + "; ".join(f"{f.kind} {f.name} {f.status}: {f.message}" for f in self.failures[:5])
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "models_built": self.models_built,
            "models_failed": self.models_failed,
            "models_skipped": self.models_skipped,
            "tests_passed": self.tests_passed,
            "tests_failed": self.tests_failed,
            "tests_skipped": self.tests_skipped,
            "duration_seconds": round(self.duration_seconds, 3),
            "failures": [{"name": f.name, "kind": f.kind, "status": f.status} for f in self.failures],
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class DbtInvocation:
    """The command, environment and result file of one build."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(repr=False)
    run_results: Path


def work_dir(settings: StockSettings) -> Path:
    """Where dbt's target/ and logs/ go: STOCKS_DBT_WORK_DIR, else one temporary directory per user
    (kept between runs so dbt's partial parse is reused)."""
    if settings.dbt_work_dir:
        return Path(settings.dbt_work_dir)
    return Path(tempfile.gettempdir()) / f"price-crawler-dbt-{os.getuid()}"


def connection_env(database_url: str) -> dict[str, str]:
    """The variables dbt/stocks/profiles.yml reads, from a postgresql:// URL."""
    url = urlparse(database_url)
    if url.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"not a PostgreSQL URL: scheme {url.scheme!r}")
    return {
        "STOCKS_DBT_HOST": url.hostname or "localhost",
        "STOCKS_DBT_PORT": str(url.port or 5432),
        "STOCKS_DBT_USER": unquote(url.username or ""),
        "STOCKS_DBT_PASSWORD": unquote(url.password or ""),
        "STOCKS_DBT_DBNAME": unquote(url.path.lstrip("/")),
    }


def dbt_invocation(
    settings: StockSettings, database_url: str, *, base_env: Mapping[str, str] | None = None, select: Sequence[str] = ()
) -> DbtInvocation:
    """`dbt build` of the project, pointed at `database_url` and the configured schemas."""
    work = work_dir(settings)
    project = settings.dbt_project_dir
    argv = [
        settings.dbt_command(),
        "build",
        "--project-dir",
        project,
        "--profiles-dir",
        project,
        "--target-path",
        str(work / "target"),
        "--log-path",
        str(work / "logs"),
        "--threads",
        str(settings.dbt_threads),
        "--no-use-colors",
        "--log-format",
        "text",
        # No network on a build (the version check and the usage stats would both phone out),
        # and no INFO lines nobody reads: errors still print, run_results.json is still written.
        "--no-version-check",
        "--no-send-anonymous-usage-stats",
        "--quiet",
    ]
    for selector in select:
        argv += ["--select", selector]
    env = dict(os.environ if base_env is None else base_env)
    env.update(connection_env(database_url))
    env.update(
        STOCKS_GOLD_SCHEMA=settings.gold_schema,
        STOCKS_SILVER_SCHEMA=settings.silver_schema,
        STOCKS_DBT_THREADS=str(settings.dbt_threads),
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
        DO_NOT_TRACK="1",
        DBT_VERSION_CHECK="false",
    )
    env.pop("DBT_PROFILES_DIR", None)
    return DbtInvocation(tuple(argv), env, work / "target" / "run_results.json")


def outcome_from_run_results(results: Mapping[str, Any], returncode: int | None) -> GoldOutcome:
    """Count dbt's run_results.json by node kind and status."""
    counts = {"built": 0, "model_failed": 0, "model_skipped": 0, "passed": 0, "test_failed": 0, "test_skipped": 0}
    failures: list[NodeFailure] = []
    for result in results.get("results", []):
        unique_id = str(result.get("unique_id", ""))
        kind = unique_id.split(".", 1)[0]
        name = unique_id.split(".")[-1] if kind == "model" else unique_id.split(".", 2)[-1]
        status = str(result.get("status", ""))
        message = " ".join(str(result.get("message") or "").split())[:300]
        if kind == "model":
            if status == "success":
                counts["built"] += 1
            elif status == "skipped":
                counts["model_skipped"] += 1
            else:
                counts["model_failed"] += 1
                failures.append(NodeFailure(name, "model", status, message))
        elif kind == "test":
            if status in ("pass", "warn"):
                counts["passed"] += 1
            elif status == "skipped":
                counts["test_skipped"] += 1
            else:
                counts["test_failed"] += 1
                failures.append(NodeFailure(name, "test", status, message))
    return GoldOutcome(
        models_built=counts["built"],
        models_failed=counts["model_failed"],
        models_skipped=counts["model_skipped"],
        tests_passed=counts["passed"],
        tests_failed=counts["test_failed"],
        tests_skipped=counts["test_skipped"],
        duration_seconds=float(results.get("elapsed_time") or 0.0),
        failures=tuple(failures),
        returncode=returncode,
    )


def dbt_python(dbt_command: str) -> Path:
    """The interpreter of the virtual environment `dbt_command` belongs to (it runs dbt_worker.py)."""
    # Resolved: a `dbt` on PATH may be a link into the environment that holds it.
    return Path(shutil.which(dbt_command) or dbt_command).resolve().parent / "python"


def dbt_missing(settings: StockSettings) -> str | None:
    """Why a gold build cannot run here (no dbt, no interpreter beside it), or None when it can."""
    command = settings.dbt_command()
    if shutil.which(command) is None:
        return f"dbt not installed at {command} (make setup installs .venv-dbt; images: target function-dbt, or kn func via scripts/prepare_function.py)"
    if not (Path(settings.dbt_project_dir) / "dbt_project.yml").is_file():
        return f"no dbt project at {settings.dbt_project_dir} (STOCKS_DBT_PROJECT_DIR)"
    python = dbt_python(command)
    if settings.dbt_worker and not python.exists():
        return f"no Python beside {command} ({python}) to run the dbt worker: set STOCKS_DBT_WORKER=false"
    return None


class DbtWorkerError(RuntimeError):
    """The worker could not start, died, timed out or answered nonsense."""


WORKER_SCRIPT = Path(__file__).with_name("dbt_worker.py")
# dbt keeps some state per invocation (adapter caches, log handlers); a worker is replaced after
# this many builds so none of it can grow without bound (a restart costs one cold build, ~4 s).
WORKER_MAX_BUILDS = 500


class DbtWorker:
    """One long-lived dbt process (dbt_worker.py) that runs `dbt` commands on request.

    Started on first use with the invocation's environment (connection, schemas) and replaced
    when that changes, when it died, after `WORKER_MAX_BUILDS`, or after a timeout (killed).
    One request at a time (a lock); `close()` ends it (Resources closes it at shutdown).
    """

    def __init__(self, python: str | Path, *, log_file: Path, max_builds: int = WORKER_MAX_BUILDS):
        self._python = str(python)
        self._log_file = log_file
        self._max_builds = max_builds
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self._env: dict[str, str] | None = None
        self._builds = 0

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def invoke(self, args: Sequence[str], env: Mapping[str, str], timeout: float) -> tuple[bool, str | None]:
        """Run one dbt command (`args` without the executable); (success, error) as dbt said."""
        with self._lock:
            env = dict(env)
            reason = (
                "first build" if self._proc is None
                else "it exited" if self._proc.poll() is not None
                else "its environment changed" if env != self._env
                else f"{self._builds} builds done" if self._builds >= self._max_builds
                else None
            )  # fmt: skip
            if reason is not None:
                # A restart costs a cold build (~4-8 s): logged, so a restart on every build shows.
                log.info("starting the dbt worker (%s)", reason)
                self._stop()
                self._start(env, timeout)
            proc = self._proc
            assert proc is not None and proc.stdin is not None
            try:
                proc.stdin.write(json.dumps({"args": list(args)}) + "\n")
                proc.stdin.flush()
            except OSError as exc:
                self._stop()
                raise DbtWorkerError(f"dbt worker gone: {exc}; {self._log_tail()}") from None
            self._builds += 1
            answer = self._answer(timeout)
            return bool(answer.get("success")), answer.get("error")

    def close(self) -> None:
        """End the worker (its stdin closes; killed if it does not exit within 5 s)."""
        with self._lock:
            self._stop()

    def _start(self, env: dict[str, str], timeout: float) -> None:
        self._log_file.parent.mkdir(parents=True, exist_ok=True)
        with self._log_file.open("w") as log_stream:  # the child keeps its own descriptor
            try:
                self._proc = subprocess.Popen(
                    [self._python, str(WORKER_SCRIPT)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log_stream,
                    env=env,
                    text=True,
                )
            except OSError as exc:
                raise DbtWorkerError(f"cannot start the dbt worker with {self._python}: {exc}") from None
        self._env, self._builds = env, 0
        ready = self._answer(timeout)
        if not ready.get("ready"):
            self._stop()
            raise DbtWorkerError(f"dbt worker not ready: {ready.get('error')}")

    def _answer(self, timeout: float) -> dict[str, Any]:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        readable, _, _ = select.select([proc.stdout], [], [], timeout)
        if not readable:
            self._stop(kill=True)  # a build past its time is not waited for
            raise DbtWorkerError(f"timed out after {timeout:.0f} s (worker killed)")
        line = proc.stdout.readline()
        if not line:
            self._stop()
            raise DbtWorkerError(f"dbt worker exited: {self._log_tail()}")
        try:
            answer = json.loads(line)
        except ValueError:
            self._stop()
            raise DbtWorkerError(f"dbt worker answered {line[:200]!r}") from None
        return answer if isinstance(answer, dict) else {"success": False, "error": f"answer {answer!r}"}

    def _stop(self, *, kill: bool = False) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if kill:
            proc.kill()
        try:
            if proc.stdin is not None:
                proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def _log_tail(self) -> str:
        try:
            return " ".join(self._log_file.read_text(errors="replace").split())[-400:]
        except OSError:
            return "(no worker log)"


def run_gold(
    settings: StockSettings, database_url: str, *, select: Sequence[str] = (), worker: DbtWorker | None = None
) -> GoldOutcome:
    """Run `dbt build` once (in `worker`, else a fresh dbt process) and say what it did (never raises)."""
    invocation = dbt_invocation(settings, database_url, select=select)
    invocation.run_results.unlink(missing_ok=True)
    started = time.monotonic()
    output = ""
    returncode: int | None
    if worker is not None:
        try:
            success, error = worker.invoke(invocation.argv[1:], invocation.env, settings.dbt_timeout_seconds)
        except DbtWorkerError as exc:
            return GoldOutcome(error=str(exc), duration_seconds=time.monotonic() - started)
        # dbt's exit codes: 0 all good, 1 a node failed, 2 dbt itself failed.
        returncode, output = (0 if success else 1 if error is None else 2), error or ""
    else:
        try:
            done = subprocess.run(
                invocation.argv,
                env=dict(invocation.env),
                capture_output=True,
                text=True,
                timeout=settings.dbt_timeout_seconds,
                check=False,
            )
        except FileNotFoundError:
            return GoldOutcome(error=f"{invocation.argv[0]} not found (make setup installs .venv-dbt)")
        except subprocess.TimeoutExpired:
            return GoldOutcome(
                error=f"timed out after {settings.dbt_timeout_seconds:.0f} s",
                duration_seconds=time.monotonic() - started,
            )
        returncode, output = done.returncode, done.stdout + done.stderr
    elapsed = time.monotonic() - started
    try:
        results = json.loads(invocation.run_results.read_text())
    except (OSError, ValueError):
        tail = " ".join(output.split())[-400:]
        return GoldOutcome(error=f"exit {returncode}, no run results: {tail}", returncode=returncode)
    outcome = outcome_from_run_results(results, returncode)
    # The wall time of the whole run (a fresh process's start and parse included): what a tick costs.
    return replace(outcome, duration_seconds=elapsed)
