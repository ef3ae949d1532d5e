"""NATS targets for the shared drivers: JetStream (persisted, the like-for-like peer) and core NATS.

- single region: a file-backed JetStream stream placed in east; publisher and consumer on east.
- cross region: stream placed in east, a second stream in west that sources it; publisher on
  east, consumer on west (the same shape as meshgate: publish in one region, consume in another).
- core NATS (no persistence) is measured as a reference ceiling, publisher and subscriber apart.

Consumers are push consumers with AckPolicy.ALL and `max_ack_pending` equal to the driver's
window, acked every `ACK_EVERY` messages: the server-side equivalent of meshgate's credits.
Each target is a fresh stream, deleted when the run ends.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    Placement,
    StorageType,
    StreamConfig,
    StreamSource,
)

from bench.harness import STAMP
from bench.nats_cluster import NatsSuperCluster

ACK_EVERY = 64
_names = itertools.count(1)


@asynccontextmanager
async def _connect(url: str) -> AsyncIterator[NatsClient]:
    nc = await nats.connect(
        url, max_reconnect_attempts=0, pending_size=64 * 1024 * 1024, connect_timeout=10
    )
    try:
        yield nc
    finally:
        async with asyncio.timeout(10):
            await nc.close()


@dataclass
class JetStreamTarget:
    """Publishes into `stream` (awaiting every ack), consumes from `consume_stream`."""

    js_pub: JetStreamContext
    js_sub: JetStreamContext
    subject: str
    stream: str
    consume_stream: str
    window: int

    async def publish(self, payloads: Sequence[bytes]) -> None:
        if len(payloads) == 1:
            await self.js_pub.publish(self.subject, payloads[0])
            return
        futures = [await self.js_pub.publish_async(self.subject, p) for p in payloads]
        await asyncio.gather(*futures)

    @asynccontextmanager
    async def _subscription(self, on_payload: Callable[[bytes], None]) -> AsyncIterator[None]:
        seen = 0

        async def on_msg(msg: Msg) -> None:
            nonlocal seen
            seen += 1
            on_payload(msg.data)
            if seen % ACK_EVERY == 0:
                await msg.ack()

        sub = await self.js_sub.subscribe(
            self.subject,
            stream=self.consume_stream,
            cb=on_msg,
            manual_ack=True,
            config=ConsumerConfig(ack_policy=AckPolicy.ALL, max_ack_pending=self.window),
        )
        try:
            yield
        finally:
            async with asyncio.timeout(10):
                await sub.unsubscribe()

    def subscribe(self, on_payload: Callable[[bytes], None]) -> AbstractAsyncContextManager[None]:
        return self._subscription(on_payload)


@asynccontextmanager
async def jetstream_target(
    cluster: NatsSuperCluster, *, cross_region: bool, window: int
) -> AsyncIterator[JetStreamTarget]:
    n = next(_names)
    subject = f"bench.{n}.events"
    east_stream, west_stream = f"BENCH{n}EAST", f"BENCH{n}WEST"
    async with (
        _connect(cluster.url("east")) as pub_nc,
        _connect(cluster.url("west" if cross_region else "east")) as sub_nc,
    ):
        js_pub, js_sub = pub_nc.jetstream(timeout=10), sub_nc.jetstream(timeout=10)
        await js_pub.add_stream(
            StreamConfig(
                name=east_stream,
                subjects=[subject],
                storage=StorageType.FILE,
                placement=Placement(cluster="east"),
            )
        )
        if cross_region:
            await js_pub.add_stream(
                StreamConfig(
                    name=west_stream,
                    storage=StorageType.FILE,
                    placement=Placement(cluster="west"),
                    sources=[StreamSource(name=east_stream)],
                )
            )
        try:
            yield JetStreamTarget(
                js_pub=js_pub,
                js_sub=js_sub,
                subject=subject,
                stream=east_stream,
                consume_stream=west_stream if cross_region else east_stream,
                window=window,
            )
        finally:
            async with asyncio.timeout(20):
                for name in (west_stream, east_stream) if cross_region else (east_stream,):
                    await js_pub.delete_stream(name)


@dataclass
class CoreNatsTarget:
    """Core NATS: at-most-once, nothing persisted. `publish` returns once buffered."""

    pub: NatsClient
    sub: NatsClient
    subject: str

    async def publish(self, payloads: Sequence[bytes]) -> None:
        for payload in payloads:
            await self.pub.publish(self.subject, payload)

    @asynccontextmanager
    async def _subscription(self, on_payload: Callable[[bytes], None]) -> AsyncIterator[None]:
        ready = asyncio.Event()

        async def on_msg(msg: Msg) -> None:
            if len(msg.data) < STAMP.size:  # the readiness probe below
                ready.set()
                return
            on_payload(msg.data)

        sub = await self.sub.subscribe(self.subject, cb=on_msg, pending_msgs_limit=-1)
        await self.sub.flush()
        try:
            # Interest crosses the gateway asynchronously: probe until the subscriber hears us.
            async with asyncio.timeout(20):
                while not ready.is_set():
                    await self.pub.publish(self.subject, b"probe")
                    await self.pub.flush()
                    try:
                        async with asyncio.timeout(0.2):
                            await ready.wait()
                    except TimeoutError:
                        continue
            yield
        finally:
            async with asyncio.timeout(10):
                await sub.unsubscribe()

    def subscribe(self, on_payload: Callable[[bytes], None]) -> AbstractAsyncContextManager[None]:
        return self._subscription(on_payload)


@asynccontextmanager
async def core_target(
    cluster: NatsSuperCluster, *, cross_region: bool
) -> AsyncIterator[CoreNatsTarget]:
    subject = f"core.{next(_names)}.events"
    async with (
        _connect(cluster.url("east")) as pub_nc,
        _connect(cluster.url("west" if cross_region else "east")) as sub_nc,
    ):
        yield CoreNatsTarget(pub=pub_nc, sub=sub_nc, subject=subject)
