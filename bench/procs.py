"""The bench's waiting helpers; children are `meshgate.processes.ChildProcess` like everywhere.

`Child` is the one child-process type (own process group, output to a log file, stopped by
group), with the bench's error type for readiness failures.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from meshgate.processes import ChildProcess, ChildProcessError, free_port

T = TypeVar("T")

__all__ = ["BenchError", "Child", "free_port", "wait_until"]


class BenchError(Exception):
    """Something the bench needs could not be started or did not become ready."""


def wait_until(predicate: Callable[[], T | None], *, timeout: float, what: str) -> T:
    """Poll `predicate` (exceptions count as not yet) until it returns a truthy value."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception as exc:  # the child may still be starting
            last = exc
        else:
            if value:
                return value
        time.sleep(0.05)
    raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}") from last


class Child(ChildProcess):
    """A bench child: stdout and stderr to one log file."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        super().__init__(argv, stdout_path=log_path, env=env, cwd=cwd)

    def log_text(self) -> str:
        return self.output()

    def wait_for_line(self, marker: str, *, timeout: float) -> str:  # type: ignore[override]
        """The first log line containing `marker`; fails early if the child exits."""
        try:
            return super().wait_for_line(marker, timeout=timeout).string
        except ChildProcessError as exc:
            raise BenchError(str(exc)) from exc

    def stop(self, grace: float = 10.0) -> int | None:
        return super().stop(grace)
