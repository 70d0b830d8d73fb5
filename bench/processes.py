"""CPU seconds and peak RSS per process, read with psutil over whole process trees.

A function under functions-framework is a gunicorn arbiter and its worker; PostgreSQL is
a postmaster and a backend per connection. Each watched group (a name and a root pid)
covers the root and every descendant seen while sampling. CPU is user + system time;
peak RSS is the kernel's high-water mark (`VmHWM`), so a spike between samples counts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil


def _peak_rss_bytes(pid: int) -> int | None:
    """The process's peak resident set size so far (VmHWM), or None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


@dataclass
class ProcessFigures:
    """What one process did between `start()` and `stop()` of its group's meter."""

    pid: int
    label: str  # "price", "price/worker", "postgres/backend", ...
    cpu_seconds: float = 0.0
    peak_rss_bytes: int = 0


@dataclass
class GroupFigures:
    """A named process tree: its processes and their totals."""

    name: str
    processes: dict[int, ProcessFigures] = field(default_factory=dict)

    @property
    def cpu_seconds(self) -> float:
        return sum(p.cpu_seconds for p in self.processes.values())

    @property
    def peak_rss_bytes(self) -> int:
        """The largest peak RSS of any single process of the group."""
        return max((p.peak_rss_bytes for p in self.processes.values()), default=0)


class ProcessMeter:
    """Samples process trees in a background thread; `figures()` once stopped.

    CPU counts from the first sample of each process (the meter's start for processes
    alive then), so work done before the measurement window is not charged to it.
    """

    def __init__(self, roots: Mapping[str, int | Sequence[int]], interval: float = 0.5):
        # A group may have several roots: the replicas of one function.
        self._roots = {name: (pids,) if isinstance(pids, int) else tuple(pids) for name, pids in roots.items()}
        self._interval = interval
        self._baseline: dict[int, float] = {}
        self._groups = {name: GroupFigures(name) for name in roots}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.elapsed = 0.0
        self._began = 0.0

    def start(self) -> ProcessMeter:
        self._began = time.monotonic()
        self._sample()
        self._thread = threading.Thread(target=self._run, name="process-meter", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> dict[str, GroupFigures]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        self.elapsed = time.monotonic() - self._began
        return self._groups

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def _sample(self) -> None:
        for name, root_pids in self._roots.items():
            members = []
            for root_pid in root_pids:
                try:
                    root = psutil.Process(root_pid)
                    members += [(root, name)] + [
                        (child, f"{name}/{_role(child)}") for child in root.children(recursive=True)
                    ]
                except psutil.Error:
                    continue
            group = self._groups[name]
            for process, label in members:
                try:
                    times = process.cpu_times()
                    cpu = times.user + times.system
                except psutil.Error:
                    continue
                baseline = self._baseline.setdefault(process.pid, cpu)
                figures = group.processes.setdefault(process.pid, ProcessFigures(process.pid, label))
                figures.cpu_seconds = cpu - baseline
                peak = _peak_rss_bytes(process.pid)
                if peak is not None:
                    figures.peak_rss_bytes = max(figures.peak_rss_bytes, peak)


def _role(process: psutil.Process) -> str:
    """A short label of a child process: gunicorn worker, postgres backend, ..."""
    try:
        cmdline = process.cmdline()
    except psutil.Error:
        return str(process.pid)
    if cmdline and cmdline[0].startswith("postgres:"):
        words = cmdline[0].split()
        return words[1] if len(words) > 1 else "backend"
    return "worker"
