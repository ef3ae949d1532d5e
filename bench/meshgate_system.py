"""meshgate as a system under test: `meshgate gateway run` subprocesses, one per region.

What can be measured depends on what the CLI offers, read from `meshgate gateway run --help`:
a single gateway needs only `gateway run`; cross-region needs `--peer` (federation); policy
and revocation lag need `--rpc`/`--registry` (ledger + policy). A missing capability becomes a
plain "not measured: why" in the report, never a made-up figure.

Resource handling: a context manager; leaving it stops every gateway by process group.
"""

from __future__ import annotations

import re
import subprocess
import sys
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from types import TracebackType

from bench.drivers import Metrics, Target
from bench.families import WINDOW, Family
from bench.meshgate_workloads import meshgate_target
from bench.procs import BenchError, Child

REVOCATION = "revocation_lag"
READY_MARKER = "meshgate gateway ready"
READY = re.compile(r"listen=(\S+:\d+)")


def _gateway_help(root: Path) -> str | None:
    out = subprocess.run(
        [sys.executable, "-m", "meshgate", "gateway", "run", "--help"],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=60,
        check=False,
    )
    return out.stdout if out.returncode == 0 else None


class MeshgateSystem:
    name = "meshgate"

    def __init__(self, work_dir: Path, *, root: Path) -> None:
        self.work_dir = work_dir
        self.root = root
        self.help = _gateway_help(root)
        self.has_peers = self.help is not None and "--peer" in self.help
        self.has_policy = self.help is not None and "--rpc" in self.help
        self._children: list[Child] = []
        self._argvs: list[list[str]] = []
        self.addrs: dict[str, str] = {}
        self._start_error: str | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def _start_gateway(self, region: str, extra: list[str]) -> str:
        data = self.work_dir / region
        data.mkdir(parents=True, exist_ok=True)
        argv = [
            sys.executable,
            "-m",
            "meshgate",
            "gateway",
            "run",
            "--region",
            region,
            "--listen",
            "127.0.0.1:0",
            "--data",
            str(data),
            "--log-level",
            "WARNING",
            *extra,
        ]
        child = Child(argv, log_path=self.work_dir / f"gateway-{region}.log", cwd=self.root)
        self._children.append(child)
        self._argvs.append(argv)
        line = child.wait_for_line(READY_MARKER, timeout=60)
        match = READY.search(line)
        if match is None:
            raise BenchError(f"cannot read the address from {line!r}")
        return match.group(1)

    def __enter__(self) -> MeshgateSystem:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        if self.help is None:
            return self
        try:
            self.addrs["east"] = self._start_gateway("east", [])
        except BenchError as exc:
            self._start_error = str(exc).splitlines()[0]
        return self

    def close(self) -> None:
        for child in reversed(self._children):
            child.stop()
        self._children.clear()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- System --------------------------------------------------------------------------

    def skip_reason(self, family: Family) -> str | None:
        if self.help is None:
            return "`meshgate gateway run` is not built yet"
        if self._start_error:
            return f"gateway did not start: {self._start_error}"
        if family.cross_region and "west" not in self.addrs:
            if not self.has_peers:
                return "federation is not wired into `meshgate gateway run` (no --peer)"
            return "the west gateway did not start"
        return None

    def target(self, family: Family) -> AbstractAsyncContextManager[Target]:
        subscribe_region = "west" if family.cross_region else "east"
        return meshgate_target(self.addrs["east"], self.addrs[subscribe_region], window=WINDOW)

    def revocation_skip_reason(self) -> str | None:
        if self.help is None:
            return "`meshgate gateway run` is not built yet"
        if not self.has_policy:
            return "policy is not wired into `meshgate gateway run` (no --rpc/--registry)"
        return "revocation lag needs the chain deployment, not written yet"

    async def revocation_lag(self) -> Metrics:
        raise BenchError(self.revocation_skip_reason() or "revocation lag is not available")

    # -- report --------------------------------------------------------------------------

    def commands(self) -> list[str]:
        return [" ".join(argv) for argv in self._argvs]

    def notes(self) -> list[str]:
        return []
