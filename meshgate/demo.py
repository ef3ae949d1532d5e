"""`make demo`: the whole mission on one machine, narrated, in under a minute.

A local chain, the registry, four keys (owner, publisher, Alice, Bob), a federation CA and three
regional gateways (eu, us, ap) as separate processes, peered over mutual TLS and following the
registry. The owner registers `orders` encrypted end to end and authorizes the publisher; the
publisher publishes in eu; Alice, granted, reads them in plaintext in ap, while ap's operator
finds only ciphertext in its data directory; Bob, not granted, is denied in us; a rogue region
zz (a valid certificate from the CA, run --open) with an anonymous subscriber gets none of them;
the owner revokes Alice (her stream ends, and a new key epoch leaves her out); Bob is granted and
receives; Alice, holding a later order's ciphertext, cannot open it; audit logs verify.
(The encryption steps: meshgate/demo_encryption.py; the parts: meshgate/demo_parts.py.)

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
from pathlib import Path

import grpc
from eth_account.signers.local import LocalAccount

from federation.certs import create_ca, issue_gateway
from ledger.config import LedgerConfig
from ledger.registry import RegistryClient, deploy_registry
from meshgate import demo_encryption as enc
from meshgate.client import Chain, GatewayClient
from meshgate.demo_parts import (
    REGIONS,
    ROGUE,
    STEP_TIMEOUT,
    TOPIC,
    Received,
    at_least,
    clients_for,
    consume,
    detail,
    holds_key_set,
    interest_at,
    make_keys,
    opens,
    order,
    peered,
    refused_at,
    say,
    started_chain,
    started_gateways,
    stored,
    wait_until,
)
from meshgate.key_custody import KeyCustody
from meshgate.key_set_port import GatewayKeySets
from meshgate.processes import GatewayProcess
from policy.audit import audit_path, verify_file

FIRST_WAVE = 20  # orders Alice should receive
SECOND_WAVE = 20  # orders published after the revoke: Bob's, never Alice's


async def story(
    gateways: dict[str, GatewayProcess],
    owner: RegistryClient,
    signers: dict[str, LocalAccount],
    work: Path,
) -> dict[str, object]:
    alice, bob = signers["alice"].address, signers["bob"].address
    names = {s.address.lower(): person for person, s in signers.items()}
    chain = Chain(rpc_url=owner.config.rpc_url, registry=owner.address)
    port = GatewayKeySets(gateways["eu"].listen)  # the owner hands key sets to eu
    keys = KeyCustody(owner, signers["owner"], port)
    async with clients_for(gateways, signers, chain) as c, contextlib.AsyncExitStack() as stack:
        stack.callback(port.close)
        say("waiting for the three regions to peer (mTLS, membership learnt through eu)")
        await wait_until(lambda: peered(c), "eu, us and ap to see each other")
        detail("eu <-> us, eu <-> ap, us <-> ap: up")

        say(f"owner registers topic '{TOPIC}' encrypted end to end, authorizes the publisher")
        done = keys.register_encrypted(TOPIC)
        detail(f"tx {done.register_tx.tx_hash} in block {done.register_tx.block_number}")
        detail(enc.sealed_to(done.first, names) + ": a fresh random key, owner-signed")
        publisher = signers["publisher"].address
        owner.allow_publisher(TOPIC, publisher)
        detail(enc.reissued(keys.reissue(TOPIC, publisher), names))
        say(f"owner grants Alice ({alice}) read access; the key is re-issued to her")
        tx = owner.grant(TOPIC, alice)
        detail(f"tx {tx.tx_hash} in block {tx.block_number}")
        detail(enc.reissued(keys.reissue(TOPIC, alice), names))
        await wait_until(
            lambda: holds_key_set(gateways["ap"], 1, alice), "Alice's key set to reach ap"
        )
        detail("the key set reached ap through the mesh (gateways hold only sealed keys)")

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
        await wait_until(lambda: refused_at(gateways["eu"]), f"{ROGUE}'s interest to reach eu")
        detail(f"eu refused {ROGUE}'s interest: no granted reader signed it (no proof, no events)")

        say(f"publisher publishes {FIRST_WAVE} orders in eu (sealed by its client, then signed)")
        for n in range(FIRST_WAVE):
            await c["eu"].publish(TOPIC, order(n, "first"))
        await wait_until(
            at_least(alice_got, FIRST_WAVE), f"Alice to receive {FIRST_WAVE} orders in ap"
        )
        p50 = statistics.median(alice_got.latencies_ms)
        detail(f"Alice received {len(alice_got.offsets)} orders in ap; eu -> ap p50 {p50:.1f} ms")
        detail(f"Alice reads plaintext: {alice_got.first_data}")
        detail(f"{ROGUE} stored {await stored(GatewayClient(gateways[ROGUE].listen))} of them")

        say("ap's operator looks at its data directory")
        operator = enc.operator_view(work / "data" / "ap", "first-0")
        detail(operator)
        async with GatewayClient(gateways["ap"].listen, signer=signers["owner"]) as raw:
            (held_first,) = await enc.raw_events(raw, TOPIC, 1)
        detail("what ap holds and sends: " + enc.describe_sealed(held_first))

        say("owner revokes Alice: her open stream must end, and a new key epoch leaves her out")
        tx = owner.revoke(TOPIC, alice)
        revoked_at = time.monotonic()
        detail(f"tx {tx.tx_hash} in block {tx.block_number}")
        await asyncio.wait_for(alice_task, STEP_TIMEOUT)
        revocation_lag_ms = (alice_got.ended_at - revoked_at) * 1000
        detail(f"Alice's stream ended: {alice_got.ended} ({revocation_lag_ms:.0f} ms after mining)")
        detail(enc.sealed_to(keys.rotate(TOPIC), names) + ": the revoke's rotation")

        say("owner grants Bob (he gets epoch 2's key); Bob subscribes in us")
        tx = owner.grant(TOPIC, bob)
        detail(f"tx {tx.tx_hash} in block {tx.block_number}")
        detail(enc.reissued(keys.reissue(TOPIC, bob), names))
        await wait_until(lambda: holds_key_set(gateways["us"], 2, bob), "Bob's key set in us")
        bob_got = Received("bob", "us")
        bob_sub = c["us"].subscribe(TOPIC, start="earliest", credits=64)
        await wait_until(opens(bob_sub), "Bob's grant to reach us")
        bob_task = asyncio.create_task(consume(bob_sub, bob_got, SECOND_WAVE))
        await wait_until(lambda: interest_at(c["eu"], "us"), "us's interest to reach eu")

        say(f"publisher publishes {SECOND_WAVE} more orders in eu (epoch 2)")
        for n in range(SECOND_WAVE):
            await c["eu"].publish(TOPIC, order(n, "second"))
        await asyncio.wait_for(bob_task, STEP_TIMEOUT)
        alice_after = len(alice_got.offsets) - FIRST_WAVE
        bob_n = len(bob_got.offsets)
        detail(f"Bob received {bob_n} orders in us; Alice {alice_after} after her revoke")

        say("Alice obtains a later order's ciphertext anyway (say, from a rogue operator)")
        async with GatewayClient(gateways["us"].listen, signer=signers["owner"]) as raw:
            (later,) = await enc.raw_events(raw, TOPIC, 1)
        detail(enc.describe_sealed(later))
        targets = [gw.listen for region, gw in gateways.items() if region in REGIONS]
        held = await enc.keys_held_by(signers["alice"], TOPIC, owner, targets)
        detail(f"the key sets on every gateway give Alice the keys of epochs {sorted(held)}")
        refused = enc.try_to_open(later, TOPIC, held)
        detail(f"she cannot open it: {refused}" if refused else "SHE OPENED IT (unexpected)")
        detail("nor can any reader of epoch 1: epoch 2's key is fresh, never derived from it")
        counts = {region: await stored(GatewayClient(gw.listen)) for region, gw in gateways.items()}
    out = {"alice": alice_got, "bob": bob_got, "bob_denied": bob_denied, "stored": counts}
    out |= {"operator": operator, "alice_keys": sorted(held), "alice_refused": refused}
    return out | {"alice_after_revoke": alice_after, "revocation_lag_ms": revocation_lag_ms}


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
        config = LedgerConfig(rpc_url=chain.url, chain_id=chain.chain_id, registry=registry)
        owner = RegistryClient(config, signers["owner"])
        say("publisher, Alice and Bob announce their encryption keys on chain")
        others = {p: s for p, s in signers.items() if p != "owner"}  # the owner's: at register
        for line in enc.announce_keys(config, others):
            detail(line)

        say("issuing the federation CA and one certificate per region")
        create_ca(work / "ca")
        tls = {r: work / f"tls-{r}" for r in (*REGIONS, ROGUE)}
        for region, out in tls.items():
            issue_gateway(work / "ca", region, out)

        say(f"starting three regional gateways (eu, us, ap) and a rogue one ({ROGUE})")
        with started_gateways(work / "data", chain, registry, tls) as gateways:
            for region, gw in gateways.items():
                detail(f"{region}: client API {gw.listen}, pid {gw.pid}")
            outcome = asyncio.run(story(gateways, owner, signers, work))

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
        and str(o["operator"]).endswith(
            f"{enc.PLAINTEXT_MARKER.decode()!r} (in every order's data) in 0"
        )
        and o["alice_keys"] == [1]  # epoch 2 was never sealed to her
        and bool(o["alice_refused"])
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
    print(f"  ap's operator sees       : {o['operator']}")
    print(f"  alice after her revoke   : keys of epochs {o['alice_keys']}; a later order: refused")
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
