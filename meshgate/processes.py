"""Child processes, one way: each in its own process group, output to files, stopped by group.

The CLI (`meshgate chain dev`), the demo, the bench, the chaos suite and the tests start every
gateway, chain and NATS server through this module:

- `ChildProcess`: spawn argv in a new session (so its PID is its process-group id), stdout and
  stderr to log files (never a pipe that could fill and stall the child), `wait_for_line` on its
  output, `stop()` (SIGTERM to the group, SIGKILL after a bound) and `kill9()`; both idempotent.
- `GatewayProcess`: a real `meshgate gateway run` on 127.0.0.1 port 0, ready when it prints
  its readiness line (`READY`), which gives the actual ports.
- `free_port()`: for configs that need a port number up front (port 0 is better where allowed).

Resource handling: use them as context managers or call `stop()` in a `finally`; after
`stop()` nothing of the group is left (the group is SIGKILLed last).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

READY = re.compile(
    r"^meshgate gateway ready region=(?P<region>\S+) "
    r"listen=(?P<listen>\S+) metrics=(?P<metrics>\S+)(?: access=(?P<access>\S+))?"
    r"(?: http=(?P<http>\S+))?(?: durability=(?P<durability>\S+))?"
)
REPO = Path(__file__).resolve().parents[1]
POLL = 0.02  # s between looks at a child's output


class ChildProcessError(RuntimeError):
    """A child exited or stayed silent when it should have become ready."""


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ChildProcess:
    """One child in a new session; stdout to `stdout_path`, stderr to `stderr_path`."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        stdout_path: Path,
        stderr_path: Path | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.argv = list(argv)
        self.stdout_path = stdout_path
        self.stderr_path = stderr_path or stdout_path
        stdout_path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as files:
            out = files.enter_context(stdout_path.open("ab"))
            err = (
                subprocess.STDOUT
                if self.stderr_path == stdout_path
                else files.enter_context(self.stderr_path.open("ab"))
            )
            self._offset = out.tell()  # wait_for_line reads only what this run printed
            self.proc: subprocess.Popen[bytes] = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                env=env,
                cwd=cwd,
            )
        self.exit_code: int | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        """What this run printed on stdout so far."""
        with self.stdout_path.open("rb") as f:
            f.seek(self._offset)
            return f.read().decode(errors="replace")

    def stderr_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.stderr_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_for_line(self, pattern: re.Pattern[str] | str, *, timeout: float) -> re.Match[str]:
        """The first output line matching `pattern` (a regex; a str matches as a substring).

        Raises ChildProcessError when the child exits first or `timeout` passes."""
        regex = pattern if isinstance(pattern, re.Pattern) else re.compile(re.escape(pattern))
        deadline = time.monotonic() + timeout
        while True:
            exited = not self.alive()  # read after this check: a last line is not missed
            for line in self.output().splitlines():
                match = regex.search(line)
                if match:
                    return match
            if exited:
                raise ChildProcessError(
                    f"{Path(self.argv[0]).name} exited ({self.proc.returncode}) before ready: "
                    f"{self.stderr_tail()}"
                )
            if time.monotonic() >= deadline:
                raise ChildProcessError(
                    f"{Path(self.argv[0]).name} not ready in {timeout:.0f}s: {self.stderr_tail()}"
                )
            time.sleep(POLL)

    def stop(self, grace: float = 30.0) -> int | None:
        """SIGTERM the group, SIGKILL it after `grace`; then SIGKILL whatever is left in it."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._kill_leftovers()
        self.exit_code = self.proc.returncode
        return self.exit_code

    def kill9(self) -> None:
        """SIGKILL the whole group at once: the crash case."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.exit_code = self.proc.returncode

    def _kill_leftovers(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)


class GatewayProcess:
    """A real `meshgate gateway run` child on 127.0.0.1 (the demo, tests, bench and chaos).

    Without registry flags (`--registry` in `extra_args` or MESHGATE_REGISTRY in `env`) the
    gateway is started with `--open`, which every gateway without access control must say."""

    def __init__(
        self,
        data_dir: Path,
        *,
        region: str = "eu",
        metrics: bool = True,
        extra_args: list[str] | None = None,
        env: dict[str, str] | None = None,
        ready_timeout: float = 30.0,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.region = region
        self.metrics = metrics
        self.extra_args = list(extra_args or [])
        self.env = env
        self.ready_timeout = ready_timeout
        self.child: ChildProcess | None = None
        self.listen = ""
        self.metrics_url: str | None = None
        self.access = ""
        self.durability = ""  # fsync or os, from the readiness line
        self.http_url: str | None = None  # http://HOST:PORT (https with TLS); None: off
        self.stdout_path = self.data_dir / "gateway.stdout.log"
        self.stderr_path = self.data_dir / "gateway.stderr.log"
        self.exit_code: int | None = None

    @property
    def open_access(self) -> bool:
        return "--registry" not in self.extra_args and "MESHGATE_REGISTRY" not in (self.env or {})

    def command(self, listen: str = "127.0.0.1:0") -> list[str]:
        cmd = [
            sys.executable, "-m", "meshgate", "gateway", "run",
            "--region", self.region, "--listen", listen, "--data", str(self.data_dir),
        ]  # fmt: skip
        if self.metrics:
            cmd += ["--metrics-port", "0"]
        if self.open_access and "--open" not in self.extra_args:
            cmd.append("--open")
        return cmd + self.extra_args

    def start(self, listen: str = "127.0.0.1:0") -> GatewayProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(self.env or {})}
        self.child = ChildProcess(
            self.command(listen),
            stdout_path=self.stdout_path,
            stderr_path=self.stderr_path,
            env=env,
            cwd=REPO,
        )
        try:
            ready = self.child.wait_for_line(READY, timeout=self.ready_timeout)
        except BaseException:
            self.kill9()
            raise
        self.listen = ready["listen"]
        self.metrics_url = (
            None if ready["metrics"] == "off" else f"http://{ready['metrics']}/metrics"
        )
        self.access = ready["access"] or ""
        self.durability = ready["durability"] or ""
        http = ready["http"]
        scheme = "https" if "--http-tls-cert" in self.extra_args else "http"
        self.http_url = None if http in (None, "off") else f"{scheme}://{http}"
        return self

    def stderr_tail(self, lines: int = 20) -> str:
        """The last lines of the gateway's log (stderr), also after it stopped."""
        try:
            return "\n".join(self.stderr_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        """The running child's Popen (None when stopped)."""
        return self.child.proc if self.child is not None else None

    @property
    def pid(self) -> int:
        assert self.child is not None
        return self.child.pid

    def running(self) -> bool:
        return self.child is not None and self.child.alive()

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (graceful drain); SIGKILL the group if it does not exit in `timeout`."""
        child, self.child = self.child, None
        if child is not None:
            self.exit_code = child.stop(timeout)
        return self.exit_code

    def kill9(self) -> None:
        """SIGKILL: the crash case. Nothing acknowledged may be lost."""
        child, self.child = self.child, None
        if child is not None:
            child.kill9()
            self.exit_code = child.exit_code

    def restart(self, *, same_port: bool = True) -> GatewayProcess:
        listen = self.listen if same_port and self.listen else "127.0.0.1:0"
        self.stop()
        return self.start(listen)

    def __enter__(self) -> GatewayProcess:
        if self.child is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
