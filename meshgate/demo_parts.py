"""The parts of `make demo` (meshgate/demo.py) its story is told with: processes, clients, waits.

Resource handling: `started_chain` and `started_gateways` stop every process they started by
its process group on exit, whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.request import urlopen

import grpc
from cloudevents.core.v1.event import CloudEvent
from eth_account.signers.local import LocalAccount

from ledger.keys import load_signer, write_keystore
from meshgate.client import Chain, GatewayClient, Subscription
from meshgate.devchain import DevChain
from meshgate.processes import GatewayProcess, free_port
from policy.key_sets import decode
from proto import gateway_pb2

REGIONS = ("eu", "us", "ap")
ROGUE = "zz"  # certified by the federation CA, run --open: no grant, no events
TOPIC = "orders"
DEMO_PASSWORD = "meshgate-demo"  # the demo's throwaway keystores; never a real key
PEOPLE = ("owner", "publisher", "alice", "bob")  # Ganache's funded dev accounts 0..3
STEP_TIMEOUT = 45.0  # s; generous: the machine may be busy


def say(text: str) -> None:
    print(f"==> {text}", flush=True)


def detail(text: str) -> None:
    print(f"    {text}", flush=True)


@dataclass
class Received:
    """What one consumer got, with the wall-clock latency from the publish stamp."""

    who: str
    region: str
    offsets: list[int] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    ended: str = ""  # how the stream ended, e.g. "PERMISSION_DENIED: revoked"
    ended_at: float = 0.0
    first_data: object = None  # the first event's data, as the consumer's client opened it

    def record(self, offset: int, event: CloudEvent) -> None:
        self.offsets.append(offset)
        data = event.get_data()
        if self.first_data is None:
            self.first_data = data
        if isinstance(data, dict) and "sent_at" in data:
            self.latencies_ms.append((time.time() - float(data["sent_at"])) * 1000)


def order(n: int, wave: str) -> CloudEvent:
    return CloudEvent(
        {"type": "com.example.order.created", "source": "/shop/eu", "id": f"{wave}-{n}"},
        {"order": n, "wave": wave, "sent_at": time.time()},
    )


@contextlib.contextmanager
def started_chain() -> Iterator[DevChain]:
    chain = DevChain(accounts=len(PEOPLE))  # each person pays for its own key announcement
    try:
        yield chain.start()
    finally:
        chain.stop()


@contextlib.contextmanager
def started_gateways(
    work: Path, chain: DevChain, registry: str, tls: dict[str, Path]
) -> Iterator[dict[str, GatewayProcess]]:
    """eu first; the others (zz: no registry, so --open) name only eu and learn the rest."""
    gateways: dict[str, GatewayProcess] = {}
    peer_ports = {region: free_port() for region in (*REGIONS, ROGUE)}
    try:
        for region in (*REGIONS, ROGUE):
            args = [
                "--peer-listen", f"127.0.0.1:{peer_ports[region]}", "--tls-dir", str(tls[region]),
                "--log-level", "WARNING",
            ]  # fmt: skip
            if region != ROGUE:
                args += ["--rpc", chain.ws_url, "--registry", registry]
                args += ["--chain-id", str(chain.chain_id)]
            if region != "eu":
                args += ["--peer", f"127.0.0.1:{peer_ports['eu']}"]
            gateways[region] = GatewayProcess(work / region, region=region, extra_args=args)
        for gw in gateways.values():
            gw.start()
        yield gateways
    finally:
        for gw in gateways.values():
            gw.stop()


async def wait_until(predicate: object, what: str, timeout: float = STEP_TIMEOUT) -> None:
    """Poll an async predicate (bounded); fail with `what` when it never holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():  # type: ignore[operator]
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


async def peered(clients: dict[str, GatewayClient]) -> bool:
    for region, client in clients.items():
        reply = await client.stub.ListPeers(gateway_pb2.ListPeersRequest(), timeout=5)
        up = {p.region for p in reply.peers if p.up}
        if not up >= set(REGIONS) - {region}:
            return False
    return True


async def interest_at(client: GatewayClient, region: str) -> bool:
    """True once `client`'s gateway routes TOPIC to `region` (its interest has arrived)."""
    reply = await client.stub.ListPeers(gateway_pb2.ListPeersRequest(), timeout=5)
    return any(p.region == region and TOPIC in p.topics for p in reply.peers)


async def consume(sub: Subscription, into: Received, until: int) -> None:
    """Record deliveries until `until` of them arrived or the gateway ends the stream."""
    try:
        async with sub:
            async for offset, event in sub:
                into.record(offset, event)
                if len(into.offsets) >= until:
                    return
    except grpc.aio.AioRpcError as exc:
        into.ended = f"{exc.code().name}: {exc.details()}"
        into.ended_at = time.monotonic()


@contextlib.asynccontextmanager
async def clients_for(
    gateways: dict[str, GatewayProcess], signers: dict[str, LocalAccount], chain: Chain
) -> AsyncIterator[dict[str, GatewayClient]]:
    """One signed-in client per (region, person) pair the story needs, each reading the chain
    (an encrypted topic's keys are checked there). The publisher reads the current key epoch
    on every publish (ttl 0), so nothing it sends after a rotation rides the older epoch's
    grace; readers cache for the default ttl."""
    plan = {"eu": ("publisher", "eu"), "ap": ("alice", "ap"), "us": ("bob", "us")}
    async with contextlib.AsyncExitStack() as stack:
        out: dict[str, GatewayClient] = {}
        for key, (person, region) in plan.items():
            ttl = 0.0 if person == "publisher" else chain.ttl
            client = GatewayClient(
                gateways[region].listen,
                signer=signers[person],
                chain=Chain(rpc_url=chain.rpc_url, registry=chain.registry, ttl=ttl),
            )
            out[key] = await stack.enter_async_context(client)
            await client.wait_ready()
        yield out


async def refused_at(gw: GatewayProcess) -> bool:
    text = await asyncio.to_thread(lambda: urlopen(str(gw.metrics_url), timeout=5).read())
    return f'meshgate_federation_refused_interest_total{{peer="{ROGUE}"}}'.encode() in text


def at_least(got: Received, n: int) -> object:
    async def check() -> bool:
        return len(got.offsets) >= n

    return check


def opens(sub: Subscription) -> object:
    """Open `sub` once the gateway's view has the new grant (it follows the chain)."""

    async def check() -> bool:
        try:
            await sub.start()
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.PERMISSION_DENIED:
                return False
            raise
        return True

    return check


async def stored(client: GatewayClient) -> int:
    async with client:
        try:
            return int((await client.topic(TOPIC)).event_count)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return 0
            raise


def make_keys(keys_dir: Path, chain: DevChain) -> dict[str, LocalAccount]:
    """Encrypted keystores of Ganache's funded dev accounts (published keys: demo only)."""
    keys_dir.mkdir(parents=True)
    for i, person in enumerate(PEOPLE):
        key = bytes.fromhex(chain.accounts[i].private_key.removeprefix("0x"))
        write_keystore(keys_dir / f"{person}.json", key, DEMO_PASSWORD, light=True)
    return {p: load_signer(keys_dir / f"{p}.json", DEMO_PASSWORD) for p in PEOPLE}


async def holds_key_set(gw: GatewayProcess, epoch: int, address: str) -> bool:
    """True once `gw` holds a key set of TOPIC's `epoch` sealed to `address` (the mesh floods
    key sets; a reader fetches them from its own region's gateway)."""
    async with GatewayClient(gw.listen) as client:
        request = gateway_pb2.GetKeySetsRequest(topic=TOPIC)
        reply = await client.stub.GetKeySets(request, timeout=5)
    docs = [decode(bytes(k.document)) for k in reply.key_sets]
    return any(d.epoch == epoch and address.lower() in d.sealed for d in docs)
