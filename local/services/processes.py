"""Embedded processes of a local run: pid files, leases, locks, start, join and stop; port helpers."""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOCAL_DIR = PROJECT_ROOT / ".local"
STOP_TIMEOUT = 30.0


class ServiceError(RuntimeError):
    """An embedded service could not be started, reached or stopped; the message says why."""


# --------------------------------------------------------------------------------------------
# Small network helpers


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when a TCP connection to host:port succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, timeout: float = 30.0, *, alive: Callable[[], bool] | None = None) -> None:
    """Wait until host:port accepts TCP connections; raise `ServiceError` on timeout.

    `alive`, if given, is polled too: when it returns False (the process that should open
    the port died) waiting stops at once.
    """
    deadline = time.monotonic() + timeout
    while not port_open(host, port):
        if alive is not None and not alive():
            raise ServiceError(f"the process that should listen on {host}:{port} exited")
        if time.monotonic() > deadline:
            raise ServiceError(f"nothing listens on {host}:{port} after {timeout:.0f} s")
        time.sleep(0.1)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _is_local_host(host: str) -> bool:
    if host in ("", "localhost", "0.0.0.0", "::"):
        return True
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


# --------------------------------------------------------------------------------------------
# Pid files, leases, locks


@dataclass(frozen=True)
class _Record:
    """What a pid file says about a running embedded service."""

    pid: int
    address: str
    marker: str  # a string in the process's command line (its data dir / config path)
    stop_signal: str


@dataclass(frozen=True)
class _ServiceFiles:
    state_dir: Path
    name: str

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.json"

    @property
    def lease_dir(self) -> Path:
        return self.run_dir / f"{self.name}.leases"

    @property
    def lock_file(self) -> Path:
        return self.run_dir / f"{self.name}.lock"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "logs" / f"{self.name}.log"

    def read(self) -> _Record | None:
        """The record of the running service, or None (a stale pid file is removed)."""
        try:
            record = _Record(**json.loads(self.pid_file.read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as exc:
            log.warning("ignoring unreadable pid file %s: %s", self.pid_file, exc)
            record = None
        if record is not None and _process_running(record.pid, record.marker):
            return record
        self.pid_file.unlink(missing_ok=True)
        shutil.rmtree(self.lease_dir, ignore_errors=True)
        return None

    def write(self, record: _Record) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.pid_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(record.__dict__))
        tmp.replace(self.pid_file)

    def forget(self) -> None:
        self.pid_file.unlink(missing_ok=True)
        shutil.rmtree(self.lease_dir, ignore_errors=True)

    def add_lease(self) -> Path:
        self.lease_dir.mkdir(parents=True, exist_ok=True)
        lease = self.lease_dir / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        lease.touch()
        return lease

    def live_leases(self) -> list[Path]:
        """Leases whose holder process is alive; those of dead holders are removed."""
        live = []
        for lease in self.lease_dir.glob("*-*") if self.lease_dir.is_dir() else ():
            holder = int(lease.name.split("-", 1)[0])
            if process_alive(holder):
                live.append(lease)
            else:
                lease.unlink(missing_ok=True)
        return live

    @contextlib.contextmanager
    def locked(self, timeout: float = 180.0) -> Iterator[None]:
        """Hold this service's inter-process lock (start/stop of one service at a time)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.lock_file, "a") as handle:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise ServiceError(f"another process has held {self.lock_file} for {timeout:.0f} s") from None
                    time.sleep(0.1)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def process_alive(pid: int) -> bool:
    """True when process `pid` exists and is not a zombie (an unreaped child counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    except OSError:
        return True  # no /proc access: assume alive, the signal will tell
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def _process_running(pid: int, marker: str) -> bool:
    """True when `pid` is alive and is still the process we started (not a reused pid)."""
    if not process_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return marker in cmdline


def _terminate(pid: int, stop_signal: signal.Signals, timeout: float, process: subprocess.Popen | None = None) -> None:
    """Ask `pid` to stop with `stop_signal`; SIGKILL its process group after `timeout`."""

    def running() -> bool:
        if process is not None:
            return process.poll() is None
        return process_alive(pid)

    try:
        os.kill(pid, stop_signal)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while running() and time.monotonic() < deadline:
        time.sleep(0.1)
    if not running():
        return
    log.warning("pid %d did not stop within %.0f s after %s: killing it", pid, timeout, stop_signal.name)
    with contextlib.suppress(ProcessLookupError):
        # Embedded services are session leaders: killing the group also ends PG's backends.
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while running() and time.monotonic() < deadline:
        time.sleep(0.1)


def _log_tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text)


class EmbeddedService:
    """A running embedded Kafka broker or PostgreSQL cluster, leased by this process.

    `address` is where it listens ("127.0.0.1:<port>"); `log_path` has its output.
    `started` is True when this handle's `ensure_*` call started the process, False when it
    joined one that another process of this project had started.
    """

    def __init__(
        self,
        files: _ServiceFiles,
        record: _Record,
        lease: Path,
        *,
        address: str,
        started: bool,
        process: subprocess.Popen | None,
    ):
        self.name = files.name
        self.address = address
        self.pid = record.pid
        self.started = started
        self.log_path = files.log_file
        self._files = files
        self._record = record
        self._lease: Path | None = lease
        self._process = process

    def __repr__(self) -> str:
        return f"EmbeddedService({self.name!r}, {self.address!r}, pid={self.pid}, started={self.started})"

    def stop(self, timeout: float = STOP_TIMEOUT, *, stop_signal: signal.Signals | None = None) -> bool:
        """Release this handle; stop the process if no other user is left.

        `stop_signal` replaces the service's graceful one (SIGKILL: a crash, for fault tests).
        Returns True when the process was stopped, False when it was left running for its
        other users (or this handle was already released).
        """
        if self._lease is None:
            return False
        with self._files.locked():
            self._lease.unlink(missing_ok=True)
            self._lease = None
            others = self._files.live_leases()
            if others:
                log.info("%s left running: still used by %d other lease(s)", self.name, len(others))
                return False
            if _process_running(self._record.pid, self._record.marker):
                log.info("stopping %s (pid %d)", self.name, self.pid)
                graceful = signal.Signals[self._record.stop_signal]
                _terminate(self.pid, stop_signal or graceful, timeout, self._process)
            elif self._process is not None:
                self._process.poll()
            self._files.forget()
            return True


def _ensure_embedded(
    files: _ServiceFiles,
    *,
    host: str,
    port: int,
    address: str,
    start: Callable[[], tuple[subprocess.Popen, _Record]],
    wait_ready: Callable[[subprocess.Popen | None], None],
    check_foreign: Callable[[], None],
    after_ready: Callable[[], None] = lambda: None,
) -> EmbeddedService | None:
    """The common flow of ensure_kafka / ensure_postgres (see the module docstring)."""
    if not _is_local_host(host):  # another machine's server: use it or say why not
        if not port_open(host, port, timeout=3):
            raise ServiceError(
                f"{files.name} at {host}:{port} is not reachable, and an embedded one can only "
                "be started on this machine (localhost / 127.0.0.1)"
            )
        check_foreign()
        return None
    with files.locked():
        record = files.read()
        if record is not None and record.address != address:
            raise ServiceError(
                f"the embedded {files.name} of {files.state_dir} already runs at {record.address}, "
                f"not {address}: stop it first (make down) or point the configuration at it"
            )
        if record is None and port_open(host, port):
            check_foreign()
            log.info("%s: using the server already answering at %s:%d", files.name, host, port)
            return None
        if record is None:
            process, record = start()
            files.write(record)
            try:
                wait_ready(process)
                after_ready()
            except BaseException as exc:  # Ctrl-C included: never leave a half-started server
                _terminate(process.pid, signal.Signals[record.stop_signal], 10, process)
                files.forget()
                if isinstance(exc, ServiceError):
                    raise ServiceError(
                        f"{exc}\n  log {files.log_file} ends with:\n{_log_tail(files.log_file)}"
                    ) from None
                raise
            started = True
        else:
            # Started by another process of ours (make up, another test session): it may
            # still be starting.
            wait_ready(None)
            after_ready()
            process, started = None, False
        lease = files.add_lease()
        return EmbeddedService(files, record, lease, address=address, started=started, process=process)


def _open_log(path: Path, title: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "ab")
    handle.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} {title} =====\n".encode())
    handle.flush()
    return handle


# --- make down


def stop_all(state_dir: Path = LOCAL_DIR, timeout: float = STOP_TIMEOUT) -> list[str]:
    """Stop every embedded service started from `state_dir`, whoever uses it; return their names.

    Each gets its graceful stop signal, then SIGKILL after `timeout` seconds.
    """
    stopped = []
    run_dir = Path(state_dir) / "run"
    for pid_file in sorted(run_dir.glob("*.json")):
        files = _ServiceFiles(Path(state_dir), pid_file.stem)
        with files.locked():
            record = files.read()
            if record is not None:
                log.info("stopping %s (pid %d)", files.name, record.pid)
                _terminate(record.pid, signal.Signals[record.stop_signal], timeout)
                stopped.append(files.name)
            files.forget()
    return stopped
