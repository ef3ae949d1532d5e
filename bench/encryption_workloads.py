"""Encrypted east->west beside plaintext (issue 12): events/s and latency in the same run.

Rows (meshgate-only, registered through bench/families.py, each beside its plaintext row):

- `xregion_encrypted` beside `xregion_pubsub`: publish east, consume west, batches of 100.
- `xregion_encrypted_latency_1k` beside `xregion_latency_1k`: 1,000 events/s, p50/p99/p999.

What differs from the plaintext rows, and only that: the topic is registered encrypted (its
epoch key sealed to owner, publisher and reader by the owner's flow, meshgate/key_custody.py),
the publisher's `GatewayClient` has the bench chain (`chain=`), so each publish seals every
event under the current epoch before signing it, and the reader opens every delivery
(`TopicEncryption.open`, meshgate/client/encryption.py: the same code a subscription runs)
before it reads the payload. Both sides fetch and verify the key set once, before the
measured window (the probe). Like the plaintext rows, the reader takes raw deliveries (no
CloudEvent made of each) and does not re-verify publisher signatures: the gateways did.

Per run a fresh topic (as for the plaintext rows): register encrypted (epoch 1, owner only),
allow the publisher, grant the reader, then rotate to epoch 2 sealed to all three; the
publisher's and reader's X25519 keys are announced once, in `setup`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import grpc

from bench.drivers import Target
from bench.families import WINDOW, Family, RowContext, paced_latency, pubsub_throughput, register
from bench.harness import STAMP
from bench.meshgate_workloads import (
    MeshgateTarget,
    new_topic,
    open_subscription,
    signed_in_client,
)
from bench.procs import BenchError
from meshgate.client import Chain, GatewayClient
from meshgate.client.encryption import TopicEncryption
from proto import gateway_pb2, gateway_pb2_grpc

PUBLISH_REGION, READ_REGION = "east", "west"


def _chain(ctx: RowContext) -> Any:
    if ctx.chain is None:
        raise BenchError("the encrypted rows need the bench chain (policy on)")
    return ctx.chain


def setup(ctx: RowContext) -> None:
    """Check the gateways serve key sets; announce the publisher's and reader's keys."""
    chain = _chain(ctx)
    with grpc.insecure_channel(ctx.addr(PUBLISH_REGION)) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        try:
            stub.GetKeySets(gateway_pb2.GetKeySetsRequest(topic="probe"), timeout=30)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                raise BenchError("the gateways do not serve key sets yet (GetKeySets)") from exc
    from ledger.registry import RegistryClient
    from policy.encryption_keys import announced_public_key

    for account in (chain.publisher, chain.reader):
        client = RegistryClient(chain.config, account)
        public = announced_public_key(bytes(account.key))
        if client.encryption_key_of(account.address) != public:
            client.announce_key(public)


def open_encrypted_topic(chain: Any, topic: str, gateway: str) -> int:
    """Register `topic` encrypted with the publisher and reader in its key set; the epoch."""
    from meshgate.key_custody import KeyCustody
    from meshgate.key_set_port import GatewayKeySets

    owner = chain.owner_client()
    with GatewayKeySets(gateway) as port:
        custody = KeyCustody(owner, chain.owner, port)
        custody.register_encrypted(topic)
        owner.allow_publisher(topic, chain.publisher.address)
        owner.grant(topic, chain.reader.address)
        return custody.rotate(topic).epoch


@dataclass
class EncryptedTarget(MeshgateTarget):
    """A MeshgateTarget whose reader opens each delivery before reading its payload."""

    crypto: TopicEncryption | None = None
    reader: Any = None

    @asynccontextmanager
    async def _subscription(self, on_payload: Callable[[bytes], None]) -> AsyncIterator[None]:
        assert self.crypto is not None
        crypto, topic, reader = self.crypto, self.topic, self.reader
        sub = await open_subscription(self.subscriber, topic, window=self.window)
        probed = asyncio.Event()

        async def pump() -> None:
            async for delivery in sub.deliveries():
                payload = (await crypto.open(delivery.event, topic, reader)).binary_data
                if len(payload) < STAMP.size:
                    probed.set()
                else:
                    on_payload(payload)

        task = asyncio.create_task(pump())
        try:
            if self.probe:
                await self._wait_probed(probed, task)
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                async with asyncio.timeout(10):
                    await task
            await sub.aclose()


def reader_encryption(client: GatewayClient, chain: Chain) -> TopicEncryption:
    """The reader's TopicEncryption over its client's GetKeySets (public API only)."""

    async def fetch(topic: str, from_epoch: int) -> list[gateway_pb2.KeySet]:
        return list((await client.key_sets(topic, from_epoch)).key_sets)

    async def says(topic: str) -> bool:
        return True

    return TopicEncryption(chain=chain, fetch=fetch, gateway_says_encrypted=says)


@asynccontextmanager
async def encrypted_target(ctx: RowContext, family: Family) -> AsyncIterator[Target]:
    bench_chain = _chain(ctx)
    topic = new_topic("enc")
    await asyncio.to_thread(open_encrypted_topic, bench_chain, topic, ctx.addr(PUBLISH_REGION))
    chain = Chain(rpc_url=bench_chain.rpc_url, registry=bench_chain.registry_address)
    async with contextlib.AsyncExitStack() as stack:
        pub = GatewayClient(
            ctx.addr(PUBLISH_REGION),
            timeout=60.0,
            signer=bench_chain.publisher,
            signin_topics=[topic],
            chain=chain,
        )
        stack.push_async_callback(pub.aclose)
        await pub.sign_in()
        sub = await signed_in_client(ctx.addr(READ_REGION), bench_chain.reader, topic)
        stack.push_async_callback(sub.aclose)
        yield EncryptedTarget(
            pub,
            sub,
            topic,
            WINDOW,
            probe=True,
            crypto=reader_encryption(sub, chain),
            reader=bench_chain.reader,
        )


ROWS = (
    register(
        Family(
            name="xregion_encrypted",
            title="publish east, consume west, encrypted topic (sealed, signed, opened)",
            driver=pubsub_throughput,
            cross_region=True,
            compare=False,
            baseline="xregion_pubsub",
            persisted_only=False,
            headline=("events_per_s",),
            concurrency=2,
            batch=100,
            setup=setup,
            target=encrypted_target,
            processes=(PUBLISH_REGION, READ_REGION),
        )
    ),
    register(
        Family(
            name="xregion_encrypted_latency_1k",
            title="latency at 1,000 events/s, east to west, encrypted topic",
            driver=paced_latency,
            cross_region=True,
            compare=False,
            baseline="xregion_latency_1k",
            persisted_only=False,
            headline=("p50_ms", "p99_ms", "p999_ms"),
            concurrency=256,
            batch=1,
            latency=True,
            rate=1000.0,
            setup=setup,
            target=encrypted_target,
            processes=(PUBLISH_REGION, READ_REGION),
        )
    ),
)
