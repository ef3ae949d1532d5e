"""meshgate as a system under test: `meshgate gateway run` subprocesses, one per region.

What can be measured depends on what the CLI offers, read from `meshgate gateway run --help`:
a single gateway needs only `gateway run`; policy (sign-in, grants) and revocation lag need
`--rpc`/`--registry`; cross-region needs federation flags. A missing capability becomes a
plain "not measured: why" in the report, never a made-up figure.

Deployment:
- `single`: one gateway in open mode (no registry), for the one-region families.
- `east` (+ `west` when federation is wired): gateways with access control on, following the
  bench chain's registry; cross-region families and revocation lag run here, with every
  client signed in, and every event publisher-signed and verified (issue 11).
- `east-open` + `west-open`: the same pair in open mode (no registry: no sign-in, unsigned
  events), peered only with each other: the "provenance off" baseline of the cross-region
  throughput, measured in the same run.

Gateway settings: every gateway reads `<work>/gateway.toml` (`--config`), which sets
`max_ack_pending` to the bench's credit window (default 1000 would cap a 4096-event window at
1000 unacked events; the NATS consumers run with `max_ack_pending` = the window too).

Resource handling: a context manager; leaving it stops every gateway by process group, then
the chain.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from types import TracebackType

import grpc

from bench.chain import BenchChain
from bench.drivers import Metrics, Target
from bench.families import WINDOW, Family
from bench.http_workloads import http_target
from bench.meshgate_workloads import MeshgateTarget, meshgate_target, new_topic
from bench.procs import BenchError, Child, free_port, wait_until
from bench.provenance_cost import provenance_note
from bench.revocation import CREDITS, revocation_lag
from ledger.errors import LedgerError
from proto import gateway_pb2, gateway_pb2_grpc

REVOCATION = "revocation_lag"
READY_MARKER = "meshgate gateway ready"
READY = re.compile(r"listen=(\S+:\d+)")
HTTP_READY = re.compile(r" http=(\S+:\d+)")
SINGLE = "single"


def gateway_config(window: int) -> str:
    """The bench gateways' TOML: acks may lag the whole credit window (see the docstring)."""
    return f"max_ack_pending = {window}\n"


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
        self.has_policy = self.help is not None and "--rpc" in self.help
        self.has_peers = self.help is not None and "--peer-listen" in self.help
        self.chain: BenchChain | None = None
        self._children: list[Child] = []
        self._argvs: list[list[str]] = []
        self.addrs: dict[str, str] = {}
        self.http_addrs: dict[str, str] = {}  # gateways serving the HTTP edge
        self._errors: dict[str, str] = {}

    # -- lifecycle -----------------------------------------------------------------------

    def _start_gateway(self, name: str, region: str, extra: list[str]) -> None:
        data = self.work_dir / name
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
            *self._config_args(),
            *extra,
        ]
        child = Child(argv, log_path=self.work_dir / f"gateway-{name}.log", cwd=self.root)
        self._children.append(child)
        self._argvs.append(argv)
        try:
            line = child.wait_for_line(READY_MARKER, timeout=60)
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

    def _policy_args(self) -> list[str]:
        assert self.chain is not None
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

    def _start_federation(self) -> None:
        """east and west, mTLS peers (certs from a fresh CA), both following the registry."""
        ca = self.work_dir / "ca"
        self._cli("certs", "init", "--out", str(ca))
        for region in ("east", "west"):
            tls = str(self.work_dir / f"tls-{region}")
            self._cli("certs", "issue", "--ca", str(ca), "--region", region, "--out", tls)
        peer_ports = {region: free_port() for region in ("east", "west")}
        for region in ("east", "west"):
            extra = [
                *self._policy_args(),
                "--peer-listen",
                f"127.0.0.1:{peer_ports[region]}",
                "--tls-dir",
                str(self.work_dir / f"tls-{region}"),
            ]
            if region == "west":
                extra += ["--peer", f"127.0.0.1:{peer_ports['east']}"]
            self._start_gateway(region, region, extra)
        self._start_open_pair()
        for east, west in (("east", "west"), ("east-open", "west-open")):
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

    def _start_open_pair(self) -> None:
        """east-open and west-open: open mode, peered with each other only (see module)."""
        peer_ports = {region: free_port() for region in ("east", "west")}
        for region in ("east", "west"):
            extra = [
                "--open",
                "--peer-listen",
                f"127.0.0.1:{peer_ports[region]}",
                "--tls-dir",
                str(self.work_dir / f"tls-{region}"),
            ]
            if region == "west":
                extra += ["--peer", f"127.0.0.1:{peer_ports['east']}"]
            self._start_gateway(f"{region}-open", region, extra)

    def _peers_up(self, east: str = "east", west: str = "west") -> bool:
        async def check() -> bool:
            for region, other in ((east, "west"), (west, "east")):
                async with grpc.aio.insecure_channel(self.addrs[region]) as channel:
                    stub = gateway_pb2_grpc.GatewayStub(channel)
                    peers = await stub.ListPeers(gateway_pb2.ListPeersRequest(), timeout=5)
                    if not any(p.region == other and p.up for p in peers.peers):
                        return False
            return True

        return asyncio.run(check())

    def __enter__(self) -> MeshgateSystem:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        if self.help is None:
            return self
        try:
            open_flag = ["--open"] if "--open" in (self.help or "") else []
            http_flag = ["--http-listen", "127.0.0.1:0"] if "--http-listen" in self.help else []
            self._start_gateway(SINGLE, SINGLE, open_flag + http_flag)
            if self.has_policy:
                self._start_secure()
        except BaseException:
            self.close()
            raise
        return self

    def _start_secure(self) -> None:
        """The chain and the access-controlled gateways; a failure skips what depends on it."""
        try:
            self.chain = BenchChain().__enter__()
            if self.has_peers:
                self._start_federation()
            else:
                self._start_gateway("east", "east", self._policy_args())
        except (BenchError, LedgerError) as exc:
            for name in ("east", "west"):
                self._errors.setdefault(name, f"{type(exc).__name__}: {exc}".splitlines()[0])

    def close(self) -> None:
        try:
            for child in reversed(self._children):
                child.stop()
            self._children.clear()
        finally:
            if self.chain is not None:
                self.chain.__exit__(None, None, None)
                self.chain = None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- System --------------------------------------------------------------------------

    def _missing(self, name: str) -> str | None:
        if self.help is None:
            return "`meshgate gateway run` is not built yet"
        if name in self._errors:
            return f"gateway {name} did not start: {self._errors[name]}"
        return None

    def skip_reason(self, family: Family) -> str | None:
        if family.http:
            if self._missing(SINGLE) or SINGLE in self.http_addrs:
                return self._missing(SINGLE)
            return "the HTTP edge is not wired into `meshgate gateway run` (no --http-listen)"
        if not family.cross_region and not family.signed:
            return self._missing(SINGLE)
        if family.open_mesh:
            if not self.has_peers:
                return "federation is not wired into `meshgate gateway run` (no peer flags)"
            return self._missing("east-open") or self._missing("west-open")
        if not self.has_policy:
            return "policy is not wired into `meshgate gateway run` (no --rpc/--registry)"
        if not family.cross_region:
            return self._missing("east")
        if not self.has_peers:
            return "federation is not wired into `meshgate gateway run` (no peer flags)"
        return self._missing("east") or self._missing("west")

    def target(self, family: Family) -> AbstractAsyncContextManager[Target]:
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

    # -- report --------------------------------------------------------------------------

    def commands(self) -> list[str]:
        lines = []
        if self.chain is not None or self.has_policy:
            lines.append(
                "# chain: contracts/node_modules/.bin/ganache --wallet.deterministic "
                "--chain.chainId 1337 on a free 127.0.0.1 port (meshgate.devchain.DevChain); "
                "registry deployed by dev account 0 (ledger.registry.deploy_registry)"
            )
        return lines + [" ".join(argv) for argv in self._argvs]

    def notes(self) -> list[str]:
        notes = [
            "meshgate deployment: one open-mode gateway (no registry) for the one-region "
            "families; gateways with access control on (registry on a local Ganache, "
            "followed over WebSocket) for cross-region and revocation lag, where every "
            "client signs in with EIP-4361 and uses its session token."
        ]
        if self.has_peers:
            notes.append(provenance_note())
        if self.chain is not None or self.has_policy:
            notes.append(
                "Revocation lag: a fresh topic per run; publisher at 1,000 events/s (batches "
                "of 10 every 10 ms) into east; the reader subscribed in every region; once "
                "all deliver, the owner revokes. Lag = last delivery in that region minus "
                "the moment `eth_sendRawTransaction` of the revoke returned (Ganache mines "
                "before it answers, so the block was mined within `revoke_tx_ms` before). "
                "`cut` = the gateway ended the stream within 10 s (`ended with` = its status); "
                "`events_after_revoke` = deliveries in that region after that moment."
            )
        return notes
