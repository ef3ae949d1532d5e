"""`GatewayProcess`: a real `meshgate gateway run` child process (the demo, tests and bench).

Starts the gateway in its own process group on 127.0.0.1 port 0, parses the readiness line
for the actual ports, and stops it by PID (SIGTERM, then SIGKILL after a bound). Callers pass
extra CLI args (`extra_args=[...]`), e.g. registry or federation flags.

Resource handling: always use it as a context manager or call `stop()` in a `finally`;
`stop()` and `kill9()` are idempotent.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

READY = re.compile(
    r"^meshgate gateway ready region=(?P<region>\S+) "
    r"listen=(?P<listen>\S+) metrics=(?P<metrics>\S+)"
)
REPO = Path(__file__).resolve().parents[1]


class GatewayProcess:
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
        self.proc: subprocess.Popen[bytes] | None = None
        self.listen = ""
        self.metrics_url: str | None = None
        self.stderr_path = self.data_dir / "gateway.stderr.log"
        self.exit_code: int | None = None

    def command(self, listen: str = "127.0.0.1:0") -> list[str]:
        cmd = [
            sys.executable, "-m", "meshgate", "gateway", "run",
            "--region", self.region, "--listen", listen, "--data", str(self.data_dir),
        ]  # fmt: skip
        if self.metrics:
            cmd += ["--metrics-port", "0"]
        return cmd + self.extra_args

    def start(self, listen: str = "127.0.0.1:0") -> GatewayProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(self.env or {})}
        with open(self.stderr_path, "ab") as stderr:
            self.proc = subprocess.Popen(
                self.command(listen),
                stdout=subprocess.PIPE,
                stderr=stderr,
                cwd=REPO,
                env=env,
                start_new_session=True,
            )
        try:
            self._await_ready()
        except BaseException:
            self.kill9()
            raise
        return self

    def _await_ready(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + self.ready_timeout
        buf = b""
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                    continue
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    raise RuntimeError(
                        f"gateway exited before ready (rc={self.proc.wait()}): {self.stderr_tail()}"
                    )
                buf += chunk
                for line in buf.decode(errors="replace").splitlines():
                    match = READY.match(line)
                    if match:
                        self.listen = match["listen"]
                        metrics = match["metrics"]
                        self.metrics_url = None if metrics == "off" else f"http://{metrics}/metrics"
                        return
        raise TimeoutError(f"gateway not ready in {self.ready_timeout}s: {self.stderr_tail()}")

    def stderr_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.stderr_path.read_text().splitlines()[-lines:])
        except OSError:
            return ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (graceful drain); SIGKILL the group if it does not exit in `timeout`."""
        if self.proc is None:
            return self.exit_code
        try:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(10)
        except ProcessLookupError:
            pass
        finally:
            self._reap()
        return self.exit_code

    def kill9(self) -> None:
        """SIGKILL: the crash case. Nothing acknowledged may be lost."""
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        except ProcessLookupError:
            pass
        finally:
            self._reap()

    def _reap(self) -> None:
        if self.proc is not None:
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.exit_code = self.proc.poll()
            self.proc = None

    def restart(self, *, same_port: bool = True) -> GatewayProcess:
        listen = self.listen if same_port and self.listen else "127.0.0.1:0"
        self.stop()
        return self.start(listen)

    def __enter__(self) -> GatewayProcess:
        if self.proc is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
