"""A rogue region that records everything it is sent: a certified peer built by hand.

`RecordingPeer` dials a gateway's peer port with a valid certificate from the federation CA,
speaks the protocol through federation's own codec, may advertise interest with whatever
proofs it holds (a granted reader's genuine one included: a reader may leak it), answers pings,
acknowledges every batch (so the sender keeps sending) and keeps the serialized bytes of every
message it received: what a rogue operator of a certified region gets over the wire.
The rogue-region tests (tests/integration/test_rogue_region*.py, test_encryption_mesh.py) use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import grpc
from eth_account.signers.local import LocalAccount

from federation.certs import Identity
from federation.codec import message_from_pb, message_to_pb
from federation.identity_tls import dial_channel
from federation.membership import signed_member
from federation.messages import (
    PROTOCOL_VERSION,
    BatchAck,
    EventBatch,
    Hello,
    Interest,
    InterestProof,
    Member,
    PeerMessage,
    Ping,
    Pong,
    RegionInterest,
    ReplicatedEvent,
    TopicInterest,
)
from policy.identity import Challenge
from policy.signin import sign_in
from proto import federation_pb2_grpc
from tests.support.channels import connected

CREDITS = 1024


def interest_proof(
    signer: LocalAccount,
    *,
    region: str,
    topic: str,
    chain_id: int,
    issued: float | None = None,
    ttl: float = 600.0,
) -> InterestProof:
    """A reader's signed statement (an EIP-4361 sign-in naming `region` and `topic`)."""
    challenge = Challenge("0123456789abcdef", f"meshgate-{region}", "meshgate://x", chain_id, 0)
    now = time.time() if issued is None else issued
    signed = sign_in(signer, challenge, [topic], now, ttl, regions=[region])
    return InterestProof(signed.message, signed.signature)


class RecordingPeer:
    """Region `identity.region`, dialling `address` (the peer port of region `region`)."""

    def __init__(self, identity: Identity, address: str, region: str) -> None:
        self.identity, self.address, self.region = identity, address, region
        self.me = signed_member(
            Member(identity.region, "", identity.cert_pem),
            identity.signing_seed,
            int(time.time() * 1000),
        )
        self.received: list[bytes] = []  # every PeerMessage, serialized as it came
        self.events: list[ReplicatedEvent] = []

    async def __aenter__(self) -> RecordingPeer:
        self._channel = dial_channel(self.identity, self.address, self.region)
        try:  # connected first: a Link opened before that can fail with UNAVAILABLE under load
            await connected(self._channel)
        except BaseException:
            await self._channel.close()
            raise
        self._call = federation_pb2_grpc.FederationStub(self._channel).Link()
        await self.send(Hello(PROTOCOL_VERSION, self.identity.region, (self.me,)))
        self._reader = asyncio.create_task(self._answer())
        return self

    async def send(self, msg: PeerMessage) -> None:
        await self._call.write(message_to_pb(msg))

    async def want(self, topic: str, *proofs: InterestProof, version: int = 1) -> None:
        interest = TopicInterest(topic, (), proofs)
        await self.send(Interest(version, (RegionInterest(self.identity.region, 0, (interest,)),)))

    async def _answer(self) -> None:
        while True:
            pb = await self._call.read()
            if pb is grpc.aio.EOF:
                return
            self.received.append(pb.SerializeToString())
            msg = message_from_pb(pb)
            if isinstance(msg, Ping):
                await self.send(Pong(msg.nonce))
            elif isinstance(msg, EventBatch):
                self.events.extend(msg.events)
                await self.send(BatchAck(msg.seq, CREDITS))

    async def __aexit__(self, *exc: object) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
            await self._reader
        self._call.cancel()
        async with asyncio.timeout(5):
            await self._channel.close()
