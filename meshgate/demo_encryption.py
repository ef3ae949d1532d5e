"""`make demo`'s encryption chapter (issue 12): the steps meshgate/demo.py's story calls.

The owner's topic is registered encrypted: its epoch keys go through the owner's own flow
(meshgate/key_custody.py), every client seals and opens through `GatewayClient(chain=...)`.
These steps show what the issue asks to see: a region operator looking at its data directory
finds ciphertext (the order ids, attributes, are there; the data is not), and Alice, after her
revoke, cannot open what follows even with its ciphertext in hand: the key sets any gateway
holds give her epoch 1's key only, which does not open an epoch 2 event.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from eth_account.signers.local import LocalAccount

from eventmodel.encryption import epoch_of, open_event
from eventmodel.errors import DecryptionError
from ledger.config import LedgerConfig
from ledger.registry import RegistryClient
from meshgate.client import GatewayClient
from meshgate.key_custody import Issued, Reissue
from policy import key_sets
from policy.encryption_keys import announced_public_key, derive_x25519
from policy.errors import KeySetError
from proto import cloudevents_pb2, gateway_pb2

PLAINTEXT_MARKER = b"sent_at"  # a key of every order's JSON data: visible only in plaintext


def announce_keys(config: LedgerConfig, people: dict[str, LocalAccount]) -> list[str]:
    """Each person announces the X25519 key derived from its key file (`keys announce`)."""
    out = []
    for person, signer in people.items():
        client = RegistryClient(config, signer)
        public = announced_public_key(bytes(signer.key))
        tx = client.announce_key(public)
        out.append(f"{person:9} X25519 {public.hex()[:16]}.. (block {tx.block_number})")
    return out


def sealed_to(issued: Issued, names: dict[str, str]) -> str:
    """'epoch 2 sealed to owner, publisher' (names by lower-case address)."""
    who = ", ".join(sorted(names.get(a, a) for a in issued.recipients))
    return f"key epoch {issued.epoch} sealed to {who} (tx block {issued.tx.block_number})"


def reissued(done: Reissue, names: dict[str, str]) -> str:
    if done.skipped is not None:
        return f"no key for {done.skipped.address}: {done.skipped.reason}"
    return "; ".join(sealed_to(i, names) for i in done.issued) or "nothing to re-issue"


def operator_view(data_dir: Path, event_id: str) -> str:
    """What a region's operator finds grepping its data directory (logs included)."""
    files = [p for p in sorted(data_dir.rglob("*")) if p.is_file()]
    blobs = [p.read_bytes() for p in files]
    ids = sum(event_id.encode() in b for b in blobs)
    plain = sum(PLAINTEXT_MARKER in b for b in blobs)
    return (
        f"{len(files)} files: order id {event_id!r} in {ids} (attributes stay visible), "
        f"{PLAINTEXT_MARKER.decode()!r} (in every order's data) in {plain}"
    )


def describe_sealed(pb: cloudevents_pb2.CloudEvent) -> str:
    data = pb.binary_data
    kind = pb.attributes["datacontenttype"].ce_string if "datacontenttype" in pb.attributes else ""
    return (
        f"{pb.id}: mgepoch={epoch_of(pb)} datacontenttype={kind or '-'} data={len(data)} bytes "
        f"{data[:16].hex()}.. (24-byte nonce, XChaCha20-Poly1305 ciphertext)"
    )


async def raw_events(
    client: GatewayClient, topic: str, count: int
) -> list[cloudevents_pb2.CloudEvent]:
    """The first `count` events of `topic` exactly as the gateway holds and sends them."""
    out: list[cloudevents_pb2.CloudEvent] = []
    async with client.subscribe(topic, start="earliest", credits=count) as sub:
        async for delivery in sub.deliveries():
            out.append(delivery.event)
            if len(out) >= count:
                break
    return out


async def keys_held_by(
    who: LocalAccount, topic: str, chain: RegistryClient, gateways: Iterable[str]
) -> dict[int, bytes]:
    """Every epoch key `who` can unseal from a key set any of `gateways` holds that the chain
    vouches for (owner-signed, hash recorded under its epoch)."""
    owner = chain.owner_of(topic) or ""
    private = derive_x25519(bytes(who.key))
    out: dict[int, bytes] = {}
    for target in gateways:
        async with GatewayClient(target) as client:
            request = gateway_pb2.GetKeySetsRequest(topic=topic)
            reply = await client.stub.GetKeySets(request, timeout=10)
        for ks in reply.key_sets:
            raw = bytes(ks.document)
            recorded = chain.key_set_epoch_of(topic, key_sets.key_set_hash(raw))
            try:
                doc = key_sets.verify(
                    raw, bytes(ks.signature), topic=topic, owner=owner, recorded_epoch=recorded
                )
                out[doc.epoch] = key_sets.unseal(doc, who.address, private)
            except KeySetError:
                continue  # not sealed to `who` (or not vouched for): no key from it
    return out


def try_to_open(pb: cloudevents_pb2.CloudEvent, topic: str, keys: dict[int, bytes]) -> str:
    """What opening `pb` with each key gives: '' when one opens it, else every refusal."""
    refusals = []
    for epoch, key in sorted(keys.items()):
        try:
            open_event(pb, topic, key)
        except DecryptionError as exc:
            refusals.append(f"epoch {epoch}'s key: {exc}")
            continue
        return ""
    return "; ".join(refusals) or "no key at all"
