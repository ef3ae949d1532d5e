"""CPU seconds and peak RSS of the processes behind one run, read from /proc.

- CPU: utime + stime of /proc/PID/stat (fields 14 and 15, clock ticks), as a delta over the
  run, divided by the events the run moved: CPU seconds per 1,000 events per process. It
  counts every thread of the process (gRPC's, SQLite's, Go's), nothing of its children.
- Peak RSS: VmHWM of /proc/PID/status. Before each run the high-water mark is reset (writing
  `5` to /proc/PID/clear_refs, allowed for our own children), so the figure is that run's
  peak, not the peak since the process started; where the reset is refused the figure is
  the peak since start (never lower than the run's, so a floor judged on it stays honest).

Metric keys carry the process label: `cpu_s_per_1k[gateway east]`, `rss_mb[gateway east]`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CPU_PREFIX = "cpu_s_per_1k["
RSS_PREFIX = "rss_mb["


def cpu_key(label: str) -> str:
    return f"{CPU_PREFIX}{label}]"


def rss_key(label: str) -> str:
    return f"{RSS_PREFIX}{label}]"


def label_of(key: str) -> str | None:
    """The process label of a resource metric key, None for other metrics."""
    for prefix in (CPU_PREFIX, RSS_PREFIX):
        if key.startswith(prefix) and key.endswith("]"):
            return key[len(prefix) : -1]
    return None


def parse_cpu_ticks(stat: str) -> int:
    """utime + stime from the text of /proc/PID/stat (the command name may hold spaces)."""
    fields = stat[stat.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): utime is field 14, stime field 15
    return int(fields[11]) + int(fields[12])


def parse_hwm_kib(status: str) -> int | None:
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return None


def _read(path: str) -> str | None:
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return None


def _reset_hwm(pid: int) -> None:
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass  # the figure is then the peak since start (see the module docstring)


@dataclass
class ProcessSampler:
    """Brackets one run: `start()` before it, `finish(events)` after it."""

    pids: Mapping[str, int]  # label -> pid
    _ticks: dict[str, int] | None = None

    def start(self) -> None:
        self._ticks = {}
        for label, pid in self.pids.items():
            _reset_hwm(pid)
            stat = _read(f"/proc/{pid}/stat")
            if stat is not None:
                self._ticks[label] = parse_cpu_ticks(stat)

    def finish(self, events: float) -> dict[str, float]:
        """Resource metrics for the run (a process that went away is left out)."""
        assert self._ticks is not None, "finish() before start()"
        metrics: dict[str, float] = {}
        for label, pid in self.pids.items():
            stat = _read(f"/proc/{pid}/stat")
            status = _read(f"/proc/{pid}/status")
            if stat is not None and label in self._ticks and events > 0:
                seconds = (parse_cpu_ticks(stat) - self._ticks[label]) / CLOCK_TICKS
                metrics[cpu_key(label)] = seconds / events * 1000.0
            hwm = parse_hwm_kib(status) if status is not None else None
            if hwm is not None:
                metrics[rss_key(label)] = hwm / 1024.0
        return metrics
