"""`make demo`: the whole mission on one machine, narrated, in under a minute.

A local chain, the registry, four keys (owner, publisher, Alice, Bob), a federation CA and three
regional gateways (eu, us, ap) as separate processes, peered over mutual TLS and following the
registry. The owner registers `orders` and authorizes the publisher; the publisher publishes in
eu; Alice, granted, receives them in ap; Bob, not granted, is denied in us; a rogue region zz
(a valid certificate from the CA, run --open) with an anonymous subscriber gets none of them;
the owner revokes Alice and her stream ends; Bob is granted and receives; audit logs verify.

Everything runs on 127.0.0.1 in a fresh directory (`--work DIR` keeps it for a look afterwards).
Resource handling: every process started here is stopped by its process group in `finally`,
whatever happens; no process outlives the demo.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.request import urlopen

import grpc
from cloudevents.core.v1.event import CloudEvent
from eth_account.signers.local import LocalAccount

from federation.certs import create_ca, issue_gateway
from ledger.config import LedgerConfig
from ledger.keys import load_signer, new_keystore, write_keystore
from ledger.registry import RegistryClient, deploy_registry
from meshgate.client import GatewayClient, Subscription
from meshgate.devchain import DevChain
from meshgate.processes import GatewayProcess, free_port
from policy.audit import audit_path, verify_file
from proto import gateway_pb2

REGIONS = ("eu", "us", "ap")
ROGUE = "zz"  # certified by the federation CA, run --open: no grant, no events
TOPIC = "orders"
DEMO_PASSWORD = "meshgate-demo"  # the demo's throwaway keystores; never a real key
FIRST_WAVE = 20  # orders Alice should receive
SECOND_WAVE = 20  # orders published after the revoke: Bob's, never Alice's
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

    def record(self, offset: int, event: CloudEvent) -> None:
        self.offsets.append(offset)
        data = event.get_data()
        if isinstance(data, dict) and "sent_at" in data:
            self.latencies_ms.append((time.time() - float(data["sent_at"])) * 1000)


def order(n: int, wave: str) -> CloudEvent:
    return CloudEvent(
        {"type": "com.example.order.created", "source": "/shop/eu", "id": f"{wave}-{n}"},
        {"order": n, "wave": wave, "sent_at": time.time()},
    )


@contextlib.contextmanager
def started_chain() -> Iterator[DevChain]:
    chain = DevChain(accounts=1)
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
    gateways: dict[str, GatewayProcess], signers: dict[str, LocalAccount]
) -> AsyncIterator[dict[str, GatewayClient]]:
    """One signed-in client per (region, person) pair the story needs."""
    plan = {"eu": ("publisher", "eu"), "ap": ("alice", "ap"), "us": ("bob", "us")}
    async with contextlib.AsyncExitStack() as stack:
        out: dict[str, GatewayClient] = {}
        for key, (person, region) in plan.items():
            client = GatewayClient(gateways[region].listen, signer=signers[person])
            out[key] = await stack.enter_async_context(client)
            await client.wait_ready()
        yield out


async def story(
    gateways: dict[str, GatewayProcess],
    owner: RegistryClient,
    signers: dict[str, LocalAccount],
) -> dict[str, object]:
    alice, bob = signers["alice"].address, signers["bob"].address
    async with clients_for(gateways, signers) as c, contextlib.AsyncExitStack() as stack:
        say("waiting for the three regions to peer (mTLS, membership learnt through eu)")
        await wait_until(lambda: peered(c), "eu, us and ap to see each other")
        detail("eu <-> us, eu <-> ap, us <-> ap: up")

        say(f"owner registers topic '{TOPIC}' and authorizes the publisher")
        publisher = signers["publisher"].address
        for tx in (owner.register(TOPIC), owner.allow_publisher(TOPIC, publisher)):
            detail(f"tx {tx.tx_hash} in block {tx.block_number}")
        say(f"owner grants Alice ({alice}) read access")
        tx = owner.grant(TOPIC, alice)
        detail(f"tx {tx.tx_hash} in block {tx.block_number}")

        say("Alice subscribes in ap (Sign-In with Ethereum)")
        alice_got = Received("alice", "ap")
        alice_sub = c["ap"].subscribe(TOPIC, start="earliest", credits=64)
        subscribed = await alice_sub.start()
        detail(f"subscribed as {subscribed.address} from offset {subscribed.start_offset}")
        alice_task = asyncio.create_task(consume(alice_sub, alice_got, 10**9))
        await wait_until(lambda: interest_at(c["eu"], "ap"), "ap's interest to reach eu")
        detail("eu now routes 'orders' to ap (interest counts only authorized subscribers)")

        say("Bob, not granted, subscribes in us")
        bob_denied, bob_try = "", c["us"].subscribe(TOPIC, start="earliest")
        try:
            await bob_try.start()
        except grpc.aio.AioRpcError as exc:
            bob_denied = f"{exc.code().name}: {exc.details()}"
        await bob_try.aclose()  # its stream's tasks end here, not whenever it is collected
        detail(f"denied: {bob_denied or 'NOT DENIED (unexpected)'}")

        say(f"rogue region {ROGUE} (CA-issued certificate, --open) subscribes anonymously")
        rogue = await stack.enter_async_context(GatewayClient(gateways[ROGUE].listen))
        await stack.enter_async_context(rogue.subscribe(TOPIC))  # opened: zz advertises it
        await wait_until(lambda: _refused_at(gateways["eu"]), f"{ROGUE}'s interest to reach eu")
        detail(f"eu refused {ROGUE}'s interest: no granted reader signed it (no proof, no events)")

        say(f"publisher publishes {FIRST_WAVE} orders in eu")
        for n in range(FIRST_WAVE):
            await c["eu"].publish(TOPIC, order(n, "first"))
        await wait_until(
            _at_least(alice_got, FIRST_WAVE), f"Alice to receive {FIRST_WAVE} orders in ap"
        )
        p50 = statistics.median(alice_got.latencies_ms)
        detail(f"Alice received {len(alice_got.offsets)} orders in ap; eu -> ap p50 {p50:.1f} ms")
        detail(f"{ROGUE} stored {await _stored(GatewayClient(gateways[ROGUE].listen))} of them")

        say("owner revokes Alice; her open stream must end")
        tx = owner.revoke(TOPIC, alice)
        revoked_at = time.monotonic()
        detail(f"tx {tx.tx_hash} in block {tx.block_number}")
        await asyncio.wait_for(alice_task, STEP_TIMEOUT)
        revocation_lag_ms = (alice_got.ended_at - revoked_at) * 1000
        detail(f"Alice's stream ended: {alice_got.ended} ({revocation_lag_ms:.0f} ms after mining)")

        say("owner grants Bob; Bob subscribes in us")
        tx = owner.grant(TOPIC, bob)
        detail(f"tx {tx.tx_hash} in block {tx.block_number}")
        bob_got = Received("bob", "us")
        bob_sub = c["us"].subscribe(TOPIC, start="earliest", credits=64)
        await wait_until(_opens(bob_sub), "Bob's grant to reach us")
        bob_task = asyncio.create_task(consume(bob_sub, bob_got, SECOND_WAVE))
        await wait_until(lambda: interest_at(c["eu"], "us"), "us's interest to reach eu")

        say(f"publisher publishes {SECOND_WAVE} more orders in eu")
        for n in range(SECOND_WAVE):
            await c["eu"].publish(TOPIC, order(n, "second"))
        await asyncio.wait_for(bob_task, STEP_TIMEOUT)
        alice_after = len(alice_got.offsets) - FIRST_WAVE
        bob_n = len(bob_got.offsets)
        detail(f"Bob received {bob_n} orders in us; Alice {alice_after} after her revoke")
        stored = {
            region: await _stored(GatewayClient(gw.listen)) for region, gw in gateways.items()
        }
    out = {"alice": alice_got, "bob": bob_got, "bob_denied": bob_denied, "stored": stored}
    return out | {"alice_after_revoke": alice_after, "revocation_lag_ms": revocation_lag_ms}


async def _refused_at(gw: GatewayProcess) -> bool:
    text = await asyncio.to_thread(lambda: urlopen(str(gw.metrics_url), timeout=5).read())
    return f'meshgate_federation_refused_interest_total{{peer="{ROGUE}"}}'.encode() in text


def _at_least(got: Received, n: int) -> object:
    async def check() -> bool:
        return len(got.offsets) >= n

    return check


def _opens(sub: Subscription) -> object:
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


async def _stored(client: GatewayClient) -> int:
    async with client:
        try:
            return int((await client.topic(TOPIC)).event_count)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return 0
            raise


def make_keys(keys_dir: Path, chain: DevChain) -> dict[str, LocalAccount]:
    """Encrypted keystores: the owner is a funded dev account, the others are new keys."""
    keys_dir.mkdir(parents=True)
    owner_key = bytes.fromhex(chain.accounts[0].private_key.removeprefix("0x"))
    write_keystore(keys_dir / "owner.json", owner_key, DEMO_PASSWORD, light=True)
    for person in ("publisher", "alice", "bob"):
        new_keystore(keys_dir / f"{person}.json", DEMO_PASSWORD, light=True)
    return {
        person: load_signer(keys_dir / f"{person}.json", DEMO_PASSWORD)
        for person in ("owner", "publisher", "alice", "bob")
    }


def run(work: Path) -> int:
    started = time.monotonic()
    say("starting a local chain (Ganache) and deploying the registry")
    with started_chain() as chain:
        signers = make_keys(work / "keys", chain)
        for person, signer in signers.items():
            detail(f"{person:9} {signer.address}  ({work / 'keys' / (person + '.json')})")
        base = LedgerConfig(rpc_url=chain.url, chain_id=chain.chain_id)
        registry, tx = deploy_registry(base, signers["owner"])
        detail(f"registry {registry} (block {tx.block_number}), chain {chain.url}")
        owner = RegistryClient(
            LedgerConfig(rpc_url=chain.url, chain_id=chain.chain_id, registry=registry),
            signers["owner"],
        )

        say("issuing the federation CA and one certificate per region")
        create_ca(work / "ca")
        tls = {r: work / f"tls-{r}" for r in (*REGIONS, ROGUE)}
        for region, out in tls.items():
            issue_gateway(work / "ca", region, out)

        say(f"starting three regional gateways (eu, us, ap) and a rogue one ({ROGUE})")
        with started_gateways(work / "data", chain, registry, tls) as gateways:
            for region, gw in gateways.items():
                detail(f"{region}: client API {gw.listen}, pid {gw.pid}")
            outcome = asyncio.run(story(gateways, owner, signers))

        say("verifying every gateway's audit log")
        audit_ok = True
        for region in REGIONS:
            result = verify_file(audit_path(work / "data" / region))
            audit_ok &= result.ok
            detail(f"{region}: {result.entries} entries, {'intact' if result.ok else result}")
    summary(outcome, audit_ok, time.monotonic() - started)
    return 0 if _as_expected(outcome, audit_ok) else 1


def _as_expected(o: dict[str, object], audit_ok: bool) -> bool:
    alice, bob = o["alice"], o["bob"]
    assert isinstance(alice, Received) and isinstance(bob, Received)
    return (
        audit_ok
        and len(alice.offsets) == FIRST_WAVE
        and o["alice_after_revoke"] == 0
        and "PERMISSION_DENIED" in alice.ended
        and len(bob.offsets) >= SECOND_WAVE
        and str(o["bob_denied"]).startswith("PERMISSION_DENIED")
        # us had no authorized subscriber during the first wave: it stored none of it.
        and stored_in(o, "us") == SECOND_WAVE
        and stored_in(o, ROGUE) == 0  # no granted reader: no proven interest, no event
    )


def stored_in(o: dict[str, object], region: str) -> int:
    stored = o["stored"]
    assert isinstance(stored, dict)
    return int(stored[region])


def summary(o: dict[str, object], audit_ok: bool, elapsed: float) -> None:
    alice, bob = o["alice"], o["bob"]
    assert isinstance(alice, Received) and isinstance(bob, Received)
    lat = sorted(alice.latencies_ms + bob.latencies_ms)
    print()
    print("summary")
    print(f"  events stored per region : {o['stored']} (us: none before Bob's grant; zz: none)")
    print(f"  delivered                : ap/alice {len(alice.offsets)}, us/bob {len(bob.offsets)}")
    print(f"  cross-region latency     : p50 {statistics.median(lat):.1f} ms, max {lat[-1]:.1f} ms")
    print(f"  revocation lag           : {o['revocation_lag_ms']:.0f} ms (mined -> stream end)")
    print(f"  bob before his grant     : {o['bob_denied']}")
    print(f"  audit logs               : {'all intact' if audit_ok else 'BROKEN'}")
    print(f"  demo took                : {elapsed:.1f} s")
    verdict = "as expected" if _as_expected(o, audit_ok) else "NOT as expected"
    print(f"  outcome                  : {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="meshgate-demo", description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, help="keep everything in this directory")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="meshgate-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        return run(work)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
