"""meshgate as a system under test: `meshgate gateway run` subprocesses, one deployment per
durability (`fsync`, `os`).

What can be measured depends on what the CLI offers, read once from `meshgate gateway run
--help` (`gateway_help`): policy needs `--rpc`/`--registry`, cross-region needs federation
flags, the `os` deployment needs `--durability`. A missing capability becomes a plain "not
measured: why" in the report, never a made-up figure.

Gateways of one deployment (`Needs` says which the chosen families use):
- `single`: open mode (no registry), for the one-region compared families and the HTTP row.
- `east` + `west`: access control on, following the bench chain's registry, peered over
  mTLS; every client signs in and every event is publisher-signed and verified (issue 11).
- `east-open` + `west-open`: the same pair in open mode, the "provenance off" baseline.
All gateways of a deployment are spawned first and then awaited, so they start in parallel.

Every gateway reads `<work>/gateway.toml` (`--config`): `max_ack_pending` = the bench's
credit window (the NATS consumers run with `max_ack_pending` = the window too).

This class is also the `RowContext` (bench/families.py) registered rows get: `start_gateway`,
`addr`, `policy_args`, `track`, `stack`.

Resource handling: a context manager; leaving it closes `stack` (what registered rows
started), then stops every gateway by process group. The chain belongs to the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import grpc

from bench.chain import BenchChain
from bench.drivers import Metrics, Target
from bench.families import WINDOW, Family
from bench.http_workloads import http_target
from bench.meshgate_workloads import MeshgateTarget, meshgate_target, new_topic
from bench.procs import BenchError, Child, free_port, wait_until
from bench.revocation import CREDITS, revocation_lag
from proto import gateway_pb2, gateway_pb2_grpc

REVOCATION = "revocation_lag"
READY_MARKER = "meshgate gateway ready"
READY = re.compile(r"listen=(\S+:\d+)")
HTTP_READY = re.compile(r" http=(\S+:\d+)")
SINGLE = "single"
NO_DURABILITY = "no --durability yet"


def gateway_config(window: int) -> str:
    """The bench gateways' TOML: acks may lag the whole credit window (see the docstring)."""
    return f"max_ack_pending = {window}\n"


def gateway_help(root: Path) -> str | None:
    """`meshgate gateway run --help`, or None when the command does not exist."""
    out = subprocess.run(
        [sys.executable, "-m", "meshgate", "gateway", "run", "--help"],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=60,
        check=False,
    )
    return out.stdout if out.returncode == 0 else None


@dataclass(frozen=True, kw_only=True)
class Needs:
    """Which gateways of a deployment the chosen families use."""

    single: bool = False
    secure: bool = False  # east + west with access control (one gateway without federation)
    open_pair: bool = False


class MeshgateSystem:
    def __init__(
        self,
        work_dir: Path,
        *,
        root: Path,
        durability: str,
        help_text: str | None,
        chain: BenchChain | None,
        nats_binary: str,
        needs: Needs,
    ) -> None:
        self.name = f"meshgate {durability}"
        self.work_dir = work_dir
        self.root = root
        self.durability = durability
        self.help = help_text
        self.chain = chain
        self.nats_binary = nats_binary
        self.needs = needs
        self.has_policy = help_text is not None and "--rpc" in help_text
        self.has_peers = help_text is not None and "--peer-listen" in help_text
        self.has_durability = help_text is not None and "--durability" in help_text
        self.unavailable: str | None = None
        if help_text is None:
            self.unavailable = "`meshgate gateway run` is not built yet"
        elif durability != "fsync" and not self.has_durability:
            self.unavailable = NO_DURABILITY
        self.stack = contextlib.ExitStack()
        self._children: list[Child] = []
        self._argvs: list[list[str]] = []
        self._pids: dict[str, int] = {}
        self._tracked: dict[str, int] = {}
        self.addrs: dict[str, str] = {}
        self.http_addrs: dict[str, str] = {}
        self._errors: dict[str, str] = {}
        self._spawned: list[tuple[str, Child]] = []
        self._pairs: list[tuple[str, str]] = []

    # -- lifecycle -----------------------------------------------------------------------

    def _argv(self, name: str, region: str, extra: Sequence[str]) -> list[str]:
        data = self.work_dir / name
        data.mkdir(parents=True, exist_ok=True)
        durability = ["--durability", self.durability] if self.has_durability else []
        return [
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
            *self._config_args(),
            *durability,
            *extra,
        ]

    def _spawn(self, name: str, region: str, extra: Sequence[str]) -> Child:
        argv = self._argv(name, region, extra)
        child = Child(argv, log_path=self.work_dir / f"gateway-{name}.log", cwd=self.root)
        self._children.append(child)
        self._argvs.append(argv)
        self._pids[name] = child.pid
        return child

    def _await_ready(self, name: str, child: Child) -> None:
        try:
            line = child.wait_for_line(READY_MARKER, timeout=90)
            match = READY.search(line)
            if match is None:
                raise BenchError(f"cannot read the address from {line!r}")
        except BenchError as exc:
            self._errors[name] = str(exc).splitlines()[0]
            return
        self.addrs[name] = match.group(1)
        http = HTTP_READY.search(line)
        if http is not None:
            self.http_addrs[name] = http.group(1)

    def _config_args(self) -> list[str]:
        if self.help is None or "--config" not in self.help:
            return []
        path = self.work_dir / "gateway.toml"
        path.write_text(gateway_config(max(WINDOW, CREDITS)))
        return ["--config", str(path)]

    def policy_args(self) -> list[str]:
        if self.chain is None:
            raise BenchError("no bench chain: policy is not wired into `meshgate gateway run`")
        return [
            "--rpc",
            self.chain.devchain.ws_url,
            "--registry",
            self.chain.registry_address,
            "--chain-id",
            str(self.chain.devchain.chain_id),
        ]

    def _cli(self, *args: str) -> None:
        argv = [sys.executable, "-m", "meshgate", *args]
        self._argvs.append(argv)
        out = subprocess.run(
            argv, capture_output=True, text=True, cwd=self.root, timeout=120, check=False
        )
        if out.returncode != 0:
            raise BenchError(f"{' '.join(args[:2])} failed: {out.stderr.strip()[:300]}")

    def _pair_args(self, *, policy: bool) -> dict[str, list[str]]:
        """east/west flags: mTLS peers, west dialling east; with `policy`, the registry."""
        ports = {region: free_port() for region in ("east", "west")}
        args: dict[str, list[str]] = {}
        for region in ("east", "west"):
            args[region] = [
                *(self.policy_args() if policy else ["--open"]),
                "--peer-listen",
                f"127.0.0.1:{ports[region]}",
                "--tls-dir",
                str(self.work_dir / f"tls-{region}"),
            ]
        args["west"] += ["--peer", f"127.0.0.1:{ports['east']}"]
        return args

    def _certs(self) -> None:
        ca = self.work_dir / "ca"
        self._cli("certs", "init", "--out", str(ca))
        for region in ("east", "west"):
            tls = str(self.work_dir / f"tls-{region}")
            self._cli("certs", "issue", "--ca", str(ca), "--region", region, "--out", tls)

    def _spawn_all(self) -> None:
        assert self.help is not None
        spawned = self._spawned
        if self.needs.single:
            flags = ["--open"] if "--open" in self.help else []
            if "--http-listen" in self.help:
                flags += ["--http-listen", "127.0.0.1:0"]
            spawned.append((SINGLE, self._spawn(SINGLE, SINGLE, flags)))
        pairs: list[tuple[str, str]] = []
        secure = self.needs.secure and self.chain is not None
        if (secure or self.needs.open_pair) and self.has_peers:
            self._certs()
        if secure and self.has_peers:
            for region, extra in self._pair_args(policy=True).items():
                spawned.append((region, self._spawn(region, region, extra)))
            pairs.append(("east", "west"))
        elif secure:
            spawned.append(("east", self._spawn("east", "east", self.policy_args())))
        if self.needs.open_pair and self.has_peers:
            for region, extra in self._pair_args(policy=False).items():
                spawned.append((f"{region}-open", self._spawn(f"{region}-open", region, extra)))
            pairs.append(("east-open", "west-open"))
        self._pairs = pairs

    def _wait_all(self) -> None:
        for name, child in self._spawned:
            self._await_ready(name, child)
        for east, west in self._pairs:
            if east in self.addrs and west in self.addrs:
                try:
                    wait_until(
                        lambda e=east, w=west: self._peers_up(e, w),  # type: ignore[misc]
                        timeout=60,
                        what=f"{east} and {west} gateways to peer",
                    )
                except BenchError as exc:
                    self._errors[west] = str(exc)
                    del self.addrs[west]

    def _peers_up(self, east: str, west: str) -> bool:
        async def check() -> bool:
            for name, other in ((east, "west"), (west, "east")):
                async with grpc.aio.insecure_channel(self.addrs[name]) as channel:
                    stub = gateway_pb2_grpc.GatewayStub(channel)
                    peers = await stub.ListPeers(gateway_pb2.ListPeersRequest(), timeout=5)
                    if not any(p.region == other and p.up for p in peers.peers):
                        return False
            return True

        return asyncio.run(check())

    def spawn(self) -> None:
        """Start the needed gateways without waiting for them (then `wait_ready`)."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        if self.unavailable is None:
            self._phase(self._spawn_all)

    def wait_ready(self) -> None:
        if self.unavailable is None:
            self._phase(self._wait_all)

    def _phase(self, step: Callable[[], None]) -> None:
        try:
            step()
        except BenchError as exc:
            for name in (SINGLE, "east", "west", "east-open", "west-open"):
                self._errors.setdefault(name, str(exc).splitlines()[0])

    def __enter__(self) -> MeshgateSystem:
        try:
            self.spawn()
            self.wait_ready()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        try:
            self.stack.close()
        finally:
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

    # -- RowContext (bench/families.py) ---------------------------------------------------

    def addr(self, name: str) -> str:
        if name not in self.addrs:
            raise BenchError(self._missing(name) or f"no gateway named {name!r}")
        return self.addrs[name]

    def start_gateway(self, name: str, region: str, args: Sequence[str]) -> str:
        if self.help is None:
            raise BenchError("`meshgate gateway run` is not built yet")
        if name in self._pids:
            raise BenchError(f"a gateway named {name!r} already exists")
        self._await_ready(name, self._spawn(name, region, args))
        return self.addr(name)

    def track(self, name: str, pid: int) -> None:
        self._tracked[name] = pid

    # -- System --------------------------------------------------------------------------

    def _missing(self, name: str) -> str | None:
        if self.unavailable is not None:
            return self.unavailable
        if name in self._errors:
            return f"gateway {name} did not start: {self._errors[name]}"
        if name not in self.addrs:
            return f"gateway {name} was not started"
        return None

    def skip_reason(self, family: Family) -> str | None:
        if self.unavailable is not None:
            return self.unavailable
        if family.target is not None:
            return None  # a registered row: its setup says what it lacks
        if family.http:
            if self._missing(SINGLE) or SINGLE in self.http_addrs:
                return self._missing(SINGLE)
            return "the HTTP edge is not wired into `meshgate gateway run` (no --http-listen)"
        if not family.cross_region and not family.signed:
            return self._missing(SINGLE)
        if family.cross_region and not self.has_peers:
            return "federation is not wired into `meshgate gateway run` (no peer flags)"
        if family.open_mesh:
            return self._missing("east-open") or self._missing("west-open")
        if not self.has_policy:
            return "policy is not wired into `meshgate gateway run` (no --rpc/--registry)"
        if not family.cross_region:
            return self._missing("east")
        return self._missing("east") or self._missing("west")

    def _gateways(self, family: Family) -> tuple[str, ...]:
        if family.target is not None:
            return family.processes
        if family.open_mesh:
            return ("east-open", "west-open")
        if family.cross_region:
            return ("east", "west")
        if family.signed:
            return ("east",)
        return (SINGLE,)

    def processes(self, family: Family) -> dict[str, int]:
        pids: dict[str, int] = {}
        for name in self._gateways(family):
            if name in self._pids:
                pids["gateway" if name == SINGLE else f"gateway {name}"] = self._pids[name]
            elif name in self._tracked:
                pids[name] = self._tracked[name]
        return pids

    def target(self, family: Family) -> AbstractAsyncContextManager[Target]:
        if family.target is not None:
            return family.target(self, family)
        if family.http:
            base = f"http://{self.http_addrs[SINGLE]}"
            return http_target(base, concurrency=family.concurrency)
        if family.open_mesh:
            return meshgate_target(
                self.addrs["east-open"], self.addrs["west-open"], window=WINDOW, probe=True
            )
        if family.cross_region:
            return self._signed_in_target("east", "west", probe=True)
        if family.signed:
            return self._signed_in_target("east", "east", probe=False)
        return meshgate_target(self.addrs[SINGLE], self.addrs[SINGLE], window=WINDOW)

    @asynccontextmanager
    async def _signed_in_target(
        self, pub: str, sub: str, *, probe: bool
    ) -> AsyncIterator[MeshgateTarget]:
        assert self.chain is not None
        topic = new_topic()
        await asyncio.to_thread(self.chain.open_topic, topic)
        async with meshgate_target(
            self.addrs[pub],
            self.addrs[sub],
            window=WINDOW,
            topic=topic,
            publisher=self.chain.publisher,
            reader=self.chain.reader,
            probe=probe,
        ) as target:
            yield target

    def revocation_skip_reason(self) -> str | None:
        if self.help is not None and not self.has_policy:
            return "policy is not wired into `meshgate gateway run` (no --rpc/--registry)"
        return self._missing("east")

    async def revocation_lag(self) -> Metrics:
        assert self.chain is not None
        regions: dict[str, str] = {r: self.addrs[r] for r in ("east", "west") if r in self.addrs}
        return await revocation_lag(chain=self.chain, addrs=regions, publish_region="east")

    def commands(self) -> list[str]:
        return [" ".join(argv) for argv in self._argvs]
