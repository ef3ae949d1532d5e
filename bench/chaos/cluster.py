"""The system under test: a chain with the registry, a federation CA and gateway processes.

Every gateway is a real `meshgate gateway run` (`meshgate.processes.GatewayProcess`) with
access control on (the registry on a local Ganache), on 127.0.0.1 only. A *proxied* region
advertises a `Proxy` in front of its peer listener, and seeds name other regions' proxies,
so every peer connection crosses a proxy the scenario can cut.

Blocking calls (process start, chain transactions) run in threads, so the proxies and the
clients in this event loop keep running while a gateway restarts.

Resource handling: `async with Cluster(...)`: leaving it stops every gateway by its process
group (SIGTERM, then SIGKILL), closes the proxies and, for a chain it started, the chain.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from eth_account import Account

from bench.chaos.proxy import Proxy
from federation.certs import create_ca, issue_gateway
from ledger.config import LedgerConfig
from ledger.registry import RegistryClient, deploy_registry
from meshgate.devchain import DevChain
from meshgate.processes import GatewayProcess, free_port

READY_TIMEOUT = 60.0  # s; a loaded 2-core machine starts a gateway in 1-10 s


@dataclass(frozen=True, kw_only=True)
class ChainHandle:
    """A running chain with a deployed registry and a funded owner key."""

    chain: DevChain
    registry: str
    owner: Any  # LocalAccount

    def client(self) -> RegistryClient:
        config = LedgerConfig(
            rpc_url=self.chain.url, registry=self.registry, chain_id=self.chain.chain_id,
            poll_interval=0.1,
        )  # fmt: skip
        return RegistryClient(config, self.owner)


def start_chain(db_path: Path | None = None) -> ChainHandle:
    """Ganache (with `db_path`, restartable with its state) plus a registry owned by account 0."""
    chain = DevChain(db_path=db_path, accounts=2).start()
    try:
        owner = Account.from_key(chain.accounts[0].private_key)
        config = LedgerConfig(rpc_url=chain.url, chain_id=chain.chain_id)
        address, _ = deploy_registry(config, owner)
    except BaseException:
        chain.stop()
        raise
    return ChainHandle(chain=chain, registry=address, owner=owner)


def kill9_chain(chain: DevChain) -> None:
    """SIGKILL Ganache's process group (the crash case), then reap it."""
    chain.kill9()


@dataclass(frozen=True, kw_only=True)
class RegionSpec:
    name: str
    seeds: tuple[str, ...] = ()
    mesh: bool = True
    federated: bool = True


@dataclass
class Cluster:
    work: Path
    handle: ChainHandle
    proxied: bool = False
    gateways: dict[str, GatewayProcess] = field(default_factory=dict)
    proxies: dict[str, Proxy] = field(default_factory=dict)
    peer_ports: dict[str, int] = field(default_factory=dict)
    data_dirs: dict[str, Path] = field(default_factory=dict)
    _stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    async def __aenter__(self) -> Cluster:
        self.work.mkdir(parents=True, exist_ok=True)
        self.ca = self.work / "ca"
        await asyncio.to_thread(create_ca, self.ca)
        self.publisher = Account.create()
        self.reader = Account.create()  # the witness: granted throughout
        self.revokee = Account.create()  # granted, then revoked by the revoke scenario
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            for gw in self.gateways.values():
                await asyncio.to_thread(gw.stop, 15.0)
        finally:
            await self._stack.aclose()

    def peer_address(self, region: str) -> str:
        """What other regions dial for `region`: its proxy when proxied."""
        if region in self.proxies:
            return self.proxies[region].address
        return f"127.0.0.1:{self.peer_ports[region]}"

    async def start(self, specs: Sequence[RegionSpec], data_dirs: dict[str, Path]) -> None:
        for spec in specs:
            if spec.federated:
                self.peer_ports[spec.name] = free_port()
                if self.proxied:
                    proxy = Proxy(self.peer_ports[spec.name], name=spec.name)
                    self.proxies[spec.name] = await self._stack.enter_async_context(proxy)
        # Peer ports are fixed up front, so the gateways start together (a seed that is not up
        # yet is redialed with backoff).
        async with asyncio.TaskGroup() as tg:
            for spec in specs:
                tg.create_task(
                    self._start_region(spec, data_dirs.get(spec.name, self.work / spec.name))
                )

    async def _start_region(self, spec: RegionSpec, data: Path) -> None:
        chain = self.handle.chain
        args = [
            "--rpc", chain.ws_url, "--registry", self.handle.registry,
            "--chain-id", str(chain.chain_id), "--log-level", "WARNING", "--ack-timeout", "5",
        ]  # fmt: skip
        if spec.federated:
            tls = self.work / f"tls-{spec.name}"
            await asyncio.to_thread(issue_gateway, self.ca, spec.name, tls)
            args += [
                "--peer-listen", f"127.0.0.1:{self.peer_ports[spec.name]}",
                "--peer-advertise", self.peer_address(spec.name), "--tls-dir", str(tls),
            ]  # fmt: skip
            for seed in spec.seeds:
                args += ["--peer", self.peer_address(seed)]
            if not spec.mesh:
                args.append("--no-mesh")
        gw = GatewayProcess(
            data, region=spec.name, metrics=False, extra_args=args, ready_timeout=READY_TIMEOUT
        )
        # Logs beside, not inside, the data dir: a full-disk data dir must not swallow them.
        gw.stdout_path = self.work / f"{spec.name}.stdout.log"
        gw.stderr_path = self.work / f"{spec.name}.stderr.log"
        self.gateways[spec.name] = gw
        self.data_dirs[spec.name] = data
        await asyncio.to_thread(gw.start)

    def log_tails(self, lines: int = 5) -> list[str]:
        return [
            f"{name} log: {line}"
            for name, gw in self.gateways.items()
            for line in gw.stderr_tail(lines).splitlines()
        ]

    def listen(self, region: str) -> str:
        return self.gateways[region].listen

    async def kill9(self, region: str) -> None:
        await asyncio.to_thread(self.gateways[region].kill9)

    async def restart(self, region: str) -> None:
        """Start again on the same client port and data directory (after a kill9)."""
        gw = self.gateways[region]
        await asyncio.to_thread(gw.start, gw.listen)

    async def open_topic(self, *, revokee: bool) -> str:
        """A fresh topic: the publisher may write, the witness (and the revokee) may read."""
        topic = f"chaos-{uuid.uuid4().hex[:10]}"

        def transact() -> None:
            owner = self.handle.client()
            owner.register(topic)
            owner.allow_publisher(topic, self.publisher.address)
            owner.grant(topic, self.reader.address)
            if revokee:
                owner.grant(topic, self.revokee.address)

        await asyncio.to_thread(transact)
        return topic

    async def revoke(self, topic: str) -> int:
        """Revoke the revokee; returns the block the revoke was mined in."""
        tx = await asyncio.to_thread(
            lambda: self.handle.client().revoke(topic, self.revokee.address)
        )
        return int(tx.block_number)
