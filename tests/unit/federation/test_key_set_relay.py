"""KeySetRelay over a real LinkProtocol per peer and a host port that verifies by signature:
what it sends on link up, after a local put, and after a peer's set is accepted or refused."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from federation.key_set_relay import KeySetRelay
from federation.messages import Hello, KeySets, TopicKeySet
from federation.metrics import FederationMetrics
from federation.protocol import Action, LinkProtocol, LinkSettings, SendMessage
from tests.support.waiting import async_wait_for


async def until(done: Callable[[], bool], what: str) -> None:
    async def check() -> bool:
        return done()

    await async_wait_for(check, timeout=5, what=what)


GOOD = TopicKeySet("orders", b'{"epoch":1}', b"ok")
OTHER = TopicKeySet("orders", b'{"epoch":2}', b"ok")
FORGED = TopicKeySet("orders", b'{"epoch":3}', b"forged")


class Host:
    """The KeySetSource port: holds what it accepted (signature b"ok" stands for the chain)."""

    def __init__(self, *held: TopicKeySet) -> None:
        self.held = list(held)
        self.version = 0
        self._changed = asyncio.Condition()

    def key_sets(self) -> Sequence[TopicKeySet]:
        return list(self.held)

    async def wait_key_sets(self, seen_version: int) -> int:
        async with self._changed:
            await self._changed.wait_for(lambda: self.version != seen_version)
            return self.version

    async def put(self, key_set: TopicKeySet) -> None:
        self.held.append(key_set)
        async with self._changed:
            self.version += 1
            self._changed.notify_all()

    async def accept_key_set(self, key_set: TopicKeySet) -> str | None:
        if key_set.signature != b"ok":
            return "not_owner_signed"
        if key_set not in self.held:
            await self.put(key_set)
        return None


class Link:
    """What the relay uses of a PeerLink: its protocol and send(actions)."""

    def __init__(self, region: str) -> None:
        self.protocol = LinkProtocol(
            local_region="aa", expected_region=region, members=(), cursor=0,
            settings=LinkSettings(), now=0.0,
        )  # fmt: skip
        self.protocol.start()
        self.protocol.receive(Hello(1, region, ()), 0.0)
        self.sent: list[TopicKeySet] = []

    def send(self, actions: list[Action]) -> None:
        for action in actions:
            assert isinstance(action, SendMessage) and isinstance(action.message, KeySets)
            self.sent.extend(action.message.sets)


async def test_the_relay_floods_held_and_accepted_sets_and_drops_refused_ones() -> None:
    host = Host(GOOD)
    metrics = FederationMetrics()
    relay = KeySetRelay(host, metrics)
    bb, cc = Link("bb"), Link("cc")
    runner = asyncio.create_task(relay.run())
    try:
        await until(lambda: relay.flood.held == 1, "the held set")
        relay.link_up("bb", bb)  # type: ignore[arg-type]
        relay.link_up("cc", cc)  # type: ignore[arg-type]
        assert bb.sent == [GOOD] and cc.sent == [GOOD]  # everything held, on link up
        relay.received("bb", [OTHER, FORGED, GOOD])
        await until(lambda: cc.sent == [GOOD, OTHER], "OTHER forwarded to cc")
        assert bb.sent == [GOOD]  # never back to where it came from
        await host.put(TopicKeySet("orders", b'{"epoch":4}', b"ok"))  # a PutKeySet
        await until(lambda: len(bb.sent) == 2 and len(cc.sent) == 3, "the put set to both")
        refused = metrics.key_sets.labels("not_owner_signed")
        await until(lambda: refused._value.get() == 1, "FORGED refused")
        assert FORGED not in host.held and FORGED not in cc.sent
        relay.link_down("cc")
        relay.received("cc", [TopicKeySet("orders", b'{"epoch":5}', b"ok")])  # gone: ignored
        assert len(host.held) == 3  # decided at once: nothing was queued
    finally:
        runner.cancel()
        await asyncio.wait({runner})


async def test_without_a_source_the_relay_does_nothing() -> None:
    relay = KeySetRelay(None, FederationMetrics())
    await relay.run()  # returns at once
    link = Link("bb")
    relay.link_up("bb", link)  # type: ignore[arg-type]
    relay.received("bb", [GOOD])
    assert link.sent == []
