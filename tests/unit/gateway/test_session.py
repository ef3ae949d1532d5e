"""SubscriptionSession: no batch leaves on an access decision that changed while it was read."""

from __future__ import annotations

from collections.abc import Sequence

from cloudevents.core.v1.event import CloudEvent

from eventmodel import sdk as events
from gateway.access import ALLOW, AccessView, Decision, Deny, Identity, OpenAccess
from gateway.dispatch import Dispatcher
from gateway.hub import SubscriptionHub
from gateway.interest import InterestRegistry
from gateway.memory_store import MemoryEventStore
from gateway.session import SubscriptionSession
from gateway.store import NewEvent, StoredEvent
from policy.errors import AccessDenied


class RevokedDuringRead(MemoryEventStore):
    """A store whose read yields to a revoke: the access view changes mid-fetch."""

    def __init__(self, access: SwitchableAccess) -> None:
        super().__init__()
        self.access = access

    async def read(self, topic: str, offset: int, limit: int) -> Sequence[StoredEvent]:
        rows = await super().read(topic, offset, limit)
        self.access.decision = Deny("revoked")
        return rows


class SwitchableAccess(OpenAccess):
    def __init__(self) -> None:
        super().__init__()
        self.view = AccessView()
        self.decision: Decision = ALLOW

    def check_delivery(self, identity: Identity, topic: str) -> Decision:
        return self.decision


def new(i: int) -> NewEvent:
    ev = CloudEvent({"type": "t", "source": "/s", "id": str(i), "specversion": "1.0"}, {"i": i})
    return NewEvent("/s", str(i), "t", events.to_pb(ev).SerializeToString(deterministic=True))


async def test_a_revoke_during_the_store_read_sends_nothing() -> None:
    access = SwitchableAccess()
    store = RevokedDuringRead(access)
    await store.open()
    try:
        await store.append("orders", [new(i) for i in range(3)], "eu")
        hub = SubscriptionHub(store, InterestRegistry(), ack_timeout=30)
        dispatcher = Dispatcher(store, "orders", "g", [], 0, ack_timeout=30)
        session = SubscriptionSession(
            hub, access, Identity(address="0xabc"), dispatcher, [], credits=10
        )
        sent: list[object] = []
        try:
            async for batch in session.deliveries():
                sent.append(batch)
        except AccessDenied as exc:
            assert "revoked" in str(exc)
        else:
            raise AssertionError("the stream should end with AccessDenied")
        assert sent == []
        assert dispatcher.state.pending_count == 3  # handed back, not lost for the group
    finally:
        await store.aclose()
