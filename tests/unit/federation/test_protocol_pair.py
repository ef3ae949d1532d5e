"""Two LinkProtocols joined by an in-memory pipe (h11's ConnectionPair): both sides at once.

Every message crosses the pipe as protobuf bytes (codec both ways), so the pair also checks that
what one side sends is what the other side's state machine accepts. No event loop, no network.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import pytest

from federation.codec import canonical_event, message_from_pb, message_to_pb
from federation.errors import LocalProtocolError
from federation.messages import EventBatch, Hello, Interest, Member, ReplicatedEvent
from federation.protocol import (
    TRANSITIONS,
    Action,
    AdvanceCursor,
    CloseLink,
    CloseReason,
    LinkProtocol,
    LinkSettings,
    LinkState,
    PeerHello,
    PeerInterest,
    PeerMembers,
    SendMessage,
    StoreBatch,
)
from proto import cloudevents_pb2, federation_pb2

SETTINGS = LinkSettings(window=2, ping_interval=1.0, stale_after=5.0, drain_timeout=3.0)


@dataclass
class Side:
    protocol: LinkProtocol
    inbox: deque[bytes] = field(default_factory=deque)  # wire bytes from the other side
    stored: list[int] = field(default_factory=list)  # batch seqs handed to the store
    pending_store: deque[int] = field(default_factory=deque)
    events: list[Action] = field(default_factory=list)  # everything but SendMessage/StoreBatch
    cursor: int = 0


class Pair:
    """aa dials bb. `pump()` delivers messages until both pipes are empty."""

    def __init__(self, *, auto_store: bool = True, cursor: int = 0) -> None:
        self.now = 0.0
        self.auto_store = auto_store
        self.aa = Side(self._protocol("aa", "bb", cursor))
        self.bb = Side(self._protocol("bb", "aa", cursor))

    def _protocol(self, local: str, peer: str, cursor: int) -> LinkProtocol:
        return LinkProtocol(
            local_region=local,
            expected_region=peer,
            members=(Member(local, f"{local}:1", b"pem"),),
            cursor=cursor,
            settings=SETTINGS,
            now=self.now,
        )

    def other(self, side: Side) -> Side:
        return self.bb if side is self.aa else self.aa

    def apply(self, side: Side, actions: list[Action]) -> None:
        for action in actions:
            match action:
                case SendMessage(message):
                    self.other(side).inbox.append(message_to_pb(message).SerializeToString())
                case StoreBatch(batch):
                    side.stored.append(batch.seq)
                    side.pending_store.append(batch.seq)
                case AdvanceCursor(seq):
                    side.cursor = seq
                    side.events.append(action)
                case _:
                    side.events.append(action)
        if self.auto_store:
            self.store_all(side)

    def store_all(self, side: Side) -> None:
        while side.pending_store:
            self.apply(side, side.protocol.batch_stored(side.pending_store.popleft()))

    def pump(self, limit: int = 100) -> None:
        for _ in range(limit):
            moved = False
            for side in (self.aa, self.bb):
                if side.inbox:
                    raw = side.inbox.popleft()
                    message = message_from_pb(federation_pb2.PeerMessage.FromString(raw))
                    self.apply(side, side.protocol.receive(message, self.now))
                    moved = True
            if not moved:
                return
        raise AssertionError("the pair never went quiet")

    def handshake(self) -> None:
        self.apply(self.aa, self.aa.protocol.start())
        self.apply(self.bb, self.bb.protocol.start())
        self.pump()
        for side in (self.aa, self.bb):
            self.apply(side, side.protocol.send_interest(Interest(1, ())))
        self.pump()

    def send(self, side: Side, seq: int, count: int = 1) -> None:
        self.apply(side, side.protocol.send_batch(seq, events(seq, count)))

    def tick(self, dt: float) -> None:
        self.now += dt
        for side in (self.aa, self.bb):
            self.apply(side, side.protocol.tick(self.now))


def events(seq: int, count: int) -> tuple[ReplicatedEvent, ...]:
    return tuple(
        ReplicatedEvent(
            topic="orders",
            event=canonical_event(
                cloudevents_pb2.CloudEvent(
                    id=f"{seq}-{i}", source="/s", spec_version="1.0", type="t"
                )
            ),
            origin_region="aa",
            origin_offset=seq,
            path=("aa",),
            destinations=("bb",),
            hop_limit=4,
            signature=None,
        )
        for i in range(count)
    )


def closes(side: Side) -> list[CloseLink]:
    return [a for a in side.events if isinstance(a, CloseLink)]


def test_handshake_streams_both_sides_and_exchanges_members_and_interest() -> None:
    pair = Pair()
    pair.handshake()
    for side, peer in ((pair.aa, "bb"), (pair.bb, "aa")):
        assert side.protocol.state is LinkState.STREAMING
        assert side.protocol.peer_region == peer
        hello = next(a for a in side.events if isinstance(a, PeerHello))
        assert hello.members == (Member(peer, f"{peer}:1", b"pem"),)
        assert any(isinstance(a, PeerInterest) for a in side.events)
        assert side.protocol.next_read() == 0
    pair.apply(pair.aa, pair.aa.protocol.send_members((Member("cc", "cc:1", b"x"),)))
    pair.pump()
    assert PeerMembers((Member("cc", "cc:1", b"x"),)) in pair.bb.events


def test_batches_are_stored_then_acked_and_the_cursor_follows() -> None:
    pair = Pair(auto_store=False)
    pair.handshake()
    pair.send(pair.aa, 5, count=3)
    pair.pump()
    assert pair.bb.stored == [5]
    assert pair.aa.cursor == 0  # persist before ack: nothing acked while bb has not stored
    assert pair.aa.protocol.inflight == 1
    pair.store_all(pair.bb)
    pair.pump()
    assert pair.aa.cursor == 5 and pair.aa.protocol.acked_seq == 5
    assert pair.aa.protocol.inflight == 0
    assert pair.bb.protocol.batches_received == 1


def test_window_shuts_until_acks_arrive_and_both_directions_run_at_once() -> None:
    pair = Pair(auto_store=False)
    pair.handshake()
    pair.send(pair.aa, 1)
    pair.send(pair.aa, 2)
    pair.send(pair.bb, 7)
    assert pair.aa.protocol.next_read() is None  # window of 2 is full
    with pytest.raises(LocalProtocolError):
        pair.send(pair.aa, 3)
    pair.pump()
    pair.store_all(pair.bb)
    pair.store_all(pair.aa)
    pair.pump()
    assert pair.aa.protocol.next_read() == 2 and pair.aa.cursor == 2
    assert pair.bb.cursor == 7 and pair.aa.stored == [7]


def test_a_sender_that_ignores_the_window_is_closed_by_the_receiver() -> None:
    pair = Pair(auto_store=False)
    pair.handshake()
    pair.send(pair.aa, 1)
    pair.send(pair.aa, 2)
    pair.pump()
    # aa's shell misbehaves: it writes a third batch past the protocol (the window is 2)
    pair.bb.inbox.append(message_to_pb(EventBatch(3, events(3, 1))).SerializeToString())
    pair.pump()
    [close] = closes(pair.bb)
    assert close.reason is CloseReason.PROTOCOL_VIOLATION and "window" in close.detail


def test_pings_keep_a_quiet_link_alive_and_silence_closes_it() -> None:
    pair = Pair()
    pair.handshake()
    for _ in range(20):  # 20 s of ticks: pings and pongs keep both sides fresh
        pair.tick(1.0)
        pair.pump()
    assert pair.aa.protocol.state is LinkState.STREAMING
    assert pair.bb.protocol.state is LinkState.STREAMING
    pair.tick(1.0)  # aa's ping is lost: bb hears nothing for longer than stale_after
    pair.aa.inbox.clear()
    pair.bb.inbox.clear()
    for _ in range(6):
        pair.now += 1.0
        pair.apply(pair.bb, pair.bb.protocol.tick(pair.now))
        pair.bb.inbox.clear()
    [close] = closes(pair.bb)
    assert close.reason is CloseReason.PEER_STALE


def test_drain_waits_for_inflight_acks_then_closes_as_shutdown() -> None:
    pair = Pair(auto_store=False)
    pair.handshake()
    pair.send(pair.aa, 4)
    pair.apply(pair.aa, pair.aa.protocol.drain(pair.now))
    assert pair.aa.protocol.state is LinkState.DRAINING
    assert pair.aa.protocol.next_read() is None  # no new batches while draining
    pair.pump()
    assert closes(pair.aa) == []
    pair.store_all(pair.bb)
    pair.pump()
    [close] = closes(pair.aa)
    assert close.reason is CloseReason.SHUTDOWN and pair.aa.cursor == 4
    assert pair.aa.protocol.state is LinkState.CLOSED
    # the other side learns of it from the stream's end
    pair.apply(pair.bb, pair.bb.protocol.peer_closed())
    assert closes(pair.bb)[0].reason is CloseReason.PEER_CLOSED


def test_drain_times_out_when_the_peer_never_acks() -> None:
    pair = Pair(auto_store=False)
    pair.handshake()
    pair.send(pair.aa, 4)
    pair.apply(pair.aa, pair.aa.protocol.drain(pair.now))
    pair.tick(SETTINGS.drain_timeout)
    [close] = closes(pair.aa)
    assert close.reason is CloseReason.SHUTDOWN and "timed out" in close.detail
    assert pair.aa.cursor == 0  # never acked: the cursor stays, the batch is resent later


def test_a_draining_side_still_stores_and_acks_what_the_peer_sends() -> None:
    pair = Pair()
    pair.handshake()
    pair.apply(pair.bb, pair.bb.protocol.drain(pair.now))
    assert closes(pair.bb)[0].reason is CloseReason.SHUTDOWN  # nothing in flight: closes at once
    pair2 = Pair(auto_store=False)
    pair2.handshake()
    pair2.send(pair2.bb, 9)
    pair2.apply(pair2.bb, pair2.bb.protocol.drain(pair2.now))
    pair2.send(pair2.aa, 3)
    pair2.pump()
    assert pair2.bb.stored == [3]  # bb, draining, still accepts aa's batch


@pytest.mark.parametrize("state", [LinkState.STREAMING, LinkState.DRAINING])
def test_a_second_hello_is_a_violation_in_every_streaming_state(state: LinkState) -> None:
    pair = Pair(auto_store=False)
    pair.handshake()
    if state is LinkState.DRAINING:
        pair.send(pair.bb, 1)  # keeps bb draining rather than closed
        pair.apply(pair.bb, pair.bb.protocol.drain(pair.now))
    pair.apply(pair.aa, pair.aa.protocol.start())  # aa's shell sends Hello twice
    pair.pump()
    [close] = closes(pair.bb)
    assert close.reason is CloseReason.PROTOCOL_VIOLATION and "Hello" in close.detail


def test_the_table_covers_every_message_kind_once_streaming() -> None:
    streaming = {kind for (state, kind) in TRANSITIONS if state is LinkState.STREAMING}
    draining = {kind for (state, kind) in TRANSITIONS if state is LinkState.DRAINING}
    handshaking = {kind for (state, kind) in TRANSITIONS if state is LinkState.HANDSHAKING}
    assert streaming == draining
    assert {k.__name__ for k in streaming} == {
        "Interest",
        "Members",
        "KeySets",
        "EventBatch",
        "BatchAck",
        "Ping",
        "Pong",
    }
    assert handshaking == {Hello}
    assert not any(state is LinkState.CLOSED for state, _ in TRANSITIONS)
