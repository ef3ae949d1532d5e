"""Child processes for the bench: each in its own process group, always stopped by that group.

Resource handling: `Child.stop()` sends SIGTERM to the group, waits, then SIGKILL; it is
idempotent, so every `finally` may call it. Output goes to a log file, never a pipe that
could fill up and stall the child.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class BenchError(Exception):
    """Something the bench needs could not be started or did not become ready."""


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago (for configs that need it up front)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


class Child:
    """One child process running in a new session (its own process group)."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            self.argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
            cwd=cwd,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_for_line(self, marker: str, *, timeout: float) -> str:
        """The first log line containing `marker`; fails early if the child exits."""

        def find() -> str | None:
            for line in self.log_text().splitlines():
                if marker in line:
                    return line
            if not self.alive():
                tail = "\n".join(self.log_text().splitlines()[-15:])
                raise BenchError(f"{self.argv[0]} exited ({self.proc.returncode}):\n{tail}")
            return None

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = find()
            if line is not None:
                return line
            time.sleep(0.05)
        tail = "\n".join(self.log_text().splitlines()[-15:])
        raise BenchError(f"no line with {marker!r} from {self.argv[0]} in {timeout:.0f}s:\n{tail}")

    def stop(self, grace: float = 10.0) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=grace)
        # Anything the leader left behind in its group goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._log.close()
