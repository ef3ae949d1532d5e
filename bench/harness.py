"""Pure measurement helpers shared by every workload: pacing, stamps, percentiles, medians.

Nothing here does I/O or sleeps. The workloads (NATS and meshgate alike) call these so both
systems are paced, stamped and summarised by exactly the same code.

Invariants:
- A payload's first 16 bytes are its stamp: sequence number and send time (monotonic ns).
  CLOCK_MONOTONIC is system-wide on Linux, so a stamp read in another process is comparable.
- A `Pacer` never reports more events due than its total: paced runs are bounded.
- A `CreditWindow` never lets more than `size` events be in flight (sent, not yet received).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

STAMP = struct.Struct(">QQ")
EVENT_SIZE = 1024


def make_payload(seq: int, sent_ns: int, size: int = EVENT_SIZE) -> bytes:
    """A `size`-byte payload that starts with its stamp and is padded with a fixed byte."""
    if size < STAMP.size:
        raise ValueError(f"payload size must be at least {STAMP.size} bytes")
    return STAMP.pack(seq, sent_ns) + b"x" * (size - STAMP.size)


def read_stamp(payload: bytes) -> tuple[int, int]:
    """(sequence, sent_ns) of a payload built by `make_payload`."""
    seq, sent_ns = STAMP.unpack_from(payload, 0)
    return int(seq), int(sent_ns)


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), interpolating between closest ranks (numpy's default)."""
    if not samples:
        raise ValueError("percentile of no samples")
    if not 0.0 <= q <= 100.0:
        raise ValueError("q must be within 0..100")
    ordered = sorted(samples)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = math.ceil(position)
    if low == high:
        return float(ordered[low])
    weight = position - low
    return float(ordered[low] * (1.0 - weight) + ordered[high] * weight)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50.0)


@dataclass(frozen=True, kw_only=True)
class LatencySummary:
    count: int
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float


def summarize_latencies(samples_ns: Sequence[int]) -> LatencySummary:
    """p50/p99/p99.9/max in milliseconds of one-way latencies recorded in nanoseconds."""
    as_ms = [s / 1e6 for s in samples_ns]
    return LatencySummary(
        count=len(as_ms),
        p50_ms=percentile(as_ms, 50.0),
        p99_ms=percentile(as_ms, 99.0),
        p999_ms=percentile(as_ms, 99.9),
        max_ms=max(as_ms),
    )


def events_per_second(events: int, seconds: float) -> float:
    if seconds <= 0.0:
        raise ValueError("elapsed time must be positive")
    return events / seconds


class Pacer:
    """Open-loop schedule: event i is due at i / rate seconds after the start.

    The shell asks `due(elapsed)` how many events should have been sent by now and sends the
    difference; it sleeps `delay_until_next(sent, elapsed)`. Being open loop, a slow system
    under test does not slow the schedule down (no coordinated omission): late events are sent
    in a burst and their latency counts from when they were stamped.
    """

    def __init__(self, *, rate: float, total: int) -> None:
        if rate <= 0.0:
            raise ValueError("rate must be positive")
        if total < 0:
            raise ValueError("total must not be negative")
        self.rate = rate
        self.total = total

    def due(self, elapsed: float) -> int:
        if elapsed < 0.0:
            return 0
        return min(self.total, math.floor(elapsed * self.rate) + 1)

    def delay_until_next(self, sent: int, elapsed: float) -> float:
        """Seconds until event number `sent` is due (0 if already due); inf when all are sent."""
        if sent >= self.total:
            return math.inf
        return max(0.0, sent / self.rate - elapsed)


class CreditWindow:
    """Bounds events in flight between a publisher and a subscriber of the same harness.

    NATS core drops a subscriber that falls 64 MiB behind; a window keeps the figure lossless,
    the same way meshgate's own Subscribe credits do.
    """

    def __init__(self, size: int) -> None:
        if size <= 0:
            raise ValueError("window size must be positive")
        self.size = size
        self.sent = 0
        self.received = 0

    def room(self) -> int:
        return max(0, self.size - (self.sent - self.received))

    def on_sent(self, count: int = 1) -> None:
        self.sent += count

    def on_received(self, count: int = 1) -> None:
        self.received += count


def median_of_runs(runs: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Per-metric median over runs; a metric missing from a run is taken over the others."""
    collected: dict[str, list[float]] = {}
    for run in runs:
        for key, value in run.items():
            collected.setdefault(key, []).append(value)
    return {key: median(values) for key, values in collected.items()}


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """meshgate / NATS, or None when either side was not measured."""
    if numerator is None or denominator is None or denominator == 0.0:
        return None
    return numerator / denominator
