"""Publish to a region of several gateway replicas, each topic to the replica that writes it.

A region on a JetStream cluster runs any number of replicas; each topic has one writing
replica (gateway/jetstream_roster.py), and a replica that takes a publish of a topic another
writes forwards the rows there: a second hop (in the bench, two replicas on one topic spend
1.4x one replica's gateway CPU per event with it, 1.1x without). Its answer names the
writer (`writer` in proto/gateway.proto, a *writer hint*). `RegionClient` holds one
`GatewayClient` per replica it was given and follows those hints, as a Kafka producer sends
a partition to its leader:

- a topic without a hint goes to the replicas in turn (spread, as a load balancer would);
- once a replica's answer names another of the given replicas, the topic's next publishes go
  there (`followed`, pure); an answer without a hint keeps the route;
- a hint naming an address it was not given is ignored: a replica cannot send a client, and
  its credentials, anywhere else;
- a publish a replica answers UNAVAILABLE (it died, or is stopping) drops the topic's route
  and is sent once more to the next replica, and that replica is skipped for DOWN_FOR
  seconds. Safe: a publish is idempotent by (source, id), so what the first attempt stored
  answers as duplicates at its first offsets.

Each replica signs the client in on its own (sessions are per gateway). Subscribing needs no
routing: any replica serves every topic (`client(i)` gives one).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from types import TracebackType
from typing import Any

import grpc

from eventmodel import sdk
from meshgate.client.gateway_client import GatewayClient
from meshgate.client.results import PublishResult
from proto import cloudevents_pb2

MAX_ROUTES = 100_000  # topics whose writer is remembered (then forgotten, and learnt again)
DOWN_FOR = 5.0  # s a replica that answered UNAVAILABLE is skipped (the roster's ttl is 6 s)


def followed(hint: str | None, target: str, targets: Collection[str]) -> str | None:
    """Where a topic goes next after `target` answered its publish with `hint`: the hint
    when it names another of `targets`, else None (the route stays as it was)."""
    if hint is None or hint == target or hint not in targets:
        return None
    return hint


class RegionClient:
    """Publishes through the replicas at `targets` (host:port each) of one region."""

    def __init__(
        self,
        targets: Sequence[str],
        *,
        client_factory: Callable[..., GatewayClient] = GatewayClient,
        **client_options: Any,
    ) -> None:
        if not targets:
            raise ValueError("a RegionClient needs at least one replica address")
        self.targets = list(dict.fromkeys(targets))
        self._clients = {t: client_factory(t, **client_options) for t in self.targets}
        self._turn = itertools.cycle(self.targets)
        self._down: dict[str, float] = {}  # target -> until when it is skipped (monotonic)
        self.routes: dict[str, str] = {}  # topic -> the replica that writes it
        self.retried = 0  # publishes sent again after a replica answered UNAVAILABLE

    async def __aenter__(self) -> RegionClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()

    def client(self, index: int = 0) -> GatewayClient:
        """The client of the `index`-th replica (to subscribe, list topics, ...)."""
        return self._clients[self.targets[index]]

    async def publish(self, topic: str, event: Any) -> PublishResult:
        return (await self.publish_batch(topic, [event]))[0]

    async def publish_batch(self, topic: str, batch: Iterable[Any]) -> list[PublishResult]:
        """Publish CloudEvents all-or-nothing, as GatewayClient.publish_batch."""
        return await self.publish_pb(topic, [sdk.to_pb(e) for e in batch])

    async def publish_pb(
        self, topic: str, pbs: Sequence[cloudevents_pb2.CloudEvent]
    ) -> list[PublishResult]:
        """Publish through the topic's writer if known, else the next replica in turn."""
        target = self.routes.get(topic) or self._in_turn()
        try:
            results = await self._clients[target].publish_pb(topic, pbs)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE or len(self.targets) == 1:
                raise
            self.routes.pop(topic, None)  # gone, or stopping: once more, elsewhere
            self._down[target] = time.monotonic() + DOWN_FOR
            target = self._in_turn(avoid=target)
            self.retried += 1
            results = await self._clients[target].publish_pb(topic, pbs)
        self._learn(topic, target)
        return results

    def _in_turn(self, avoid: str | None = None) -> str:
        """The next replica in turn, not `avoid` and not skipped when another is left."""
        now = time.monotonic()
        others = [t for t in self.targets if t != avoid] or self.targets
        pool = [t for t in others if self._down.get(t, 0.0) <= now] or others
        for _ in range(len(self.targets)):
            target = next(self._turn)
            if target in pool:
                return target
        return pool[0]  # not reached: the turn passes every target

    def _learn(self, topic: str, target: str) -> None:
        hint = self._clients[target].writer_hints.pop(topic, None)  # read once: not kept twice
        writer = followed(hint, target, self._clients)
        if writer is None:
            return
        if len(self.routes) >= MAX_ROUTES:
            self.routes.clear()
        self.routes[topic] = writer
