"""LinkProtocol driven by hand: no network, no event loop."""

import pytest

from federation.errors import LocalProtocolError
from federation.messages import BatchAck, EventBatch, Hello, Interest, Ping, Pong
from federation.protocol import (
    AdvanceCursor,
    CloseLink,
    CloseReason,
    LinkProtocol,
    LinkSettings,
    LinkState,
    PeerHello,
    PeerInterest,
    SendMessage,
    StoreBatch,
)

SETTINGS = LinkSettings(window=2, ping_interval=1.0, stale_after=5.0, handshake_timeout=3.0)


def link(expected: str | None = "bb", cursor: int = 0) -> LinkProtocol:
    return LinkProtocol(
        local_region="aa", expected_region=expected, members=(), cursor=cursor,
        settings=SETTINGS, now=0.0,
    )  # fmt: skip


def streaming(cursor: int = 0) -> LinkProtocol:
    p = link(cursor=cursor)
    p.start()
    assert p.receive(Hello(1, "bb", ()), 0.1) == [PeerHello("bb", ())]
    assert p.receive(Interest(1, ()), 0.2) == [PeerInterest(Interest(1, ()))]
    return p


def test_handshake_checks_region_against_certificate() -> None:
    p = link()
    assert p.start() == [SendMessage(Hello(1, "aa", ()))]
    [close] = p.receive(Hello(1, "cc", ()), 0.1)
    assert isinstance(close, CloseLink) and close.reason is CloseReason.WRONG_REGION
    assert p.state is LinkState.CLOSED


@pytest.mark.parametrize("first", [EventBatch(1, ()), Hello(2, "bb", ()), Hello(1, "aa", ())])
def test_bad_first_message_closes(first: object) -> None:
    p = link()
    p.start()
    [close] = p.receive(first, 0.1)  # type: ignore[arg-type]
    assert isinstance(close, CloseLink)
    assert close.reason in (CloseReason.PROTOCOL_VIOLATION, CloseReason.WRONG_REGION)


def test_no_batches_before_peer_interest_then_window_limits() -> None:
    p = link(cursor=10)
    p.start()
    p.receive(Hello(1, "bb", ()), 0.1)
    assert p.next_read() is None  # routing needs the peer's interest first
    p.receive(Interest(1, ()), 0.2)
    assert p.next_read() == 10
    p.send_batch(15, ())
    p.send_batch(20, ())
    assert p.next_read() is None  # window of 2 full
    assert p.receive(BatchAck(15, 2), 0.3) == [AdvanceCursor(15)]
    assert p.next_read() == 20
    with pytest.raises(LocalProtocolError):
        p.send_batch(20, ())


def test_ack_for_unsent_batch_is_a_violation() -> None:
    p = streaming()
    [close] = p.receive(BatchAck(7, 1), 0.3)
    assert isinstance(close, CloseLink) and close.reason is CloseReason.PROTOCOL_VIOLATION


def test_persist_before_ack_and_in_order() -> None:
    p = streaming()
    assert p.receive(EventBatch(3, ()), 0.3) == [StoreBatch(EventBatch(3, ()))]
    assert p.receive(EventBatch(5, ()), 0.3) == [StoreBatch(EventBatch(5, ()))]
    with pytest.raises(LocalProtocolError):
        p.batch_stored(5)  # 3 first
    assert p.batch_stored(3) == [SendMessage(BatchAck(3, 2))]
    [close] = p.receive(EventBatch(4, ()), 0.4)  # seq went backwards
    assert isinstance(close, CloseLink)


def test_window_overrun_by_peer_closes() -> None:
    p = streaming()
    p.receive(EventBatch(1, ()), 0.3)
    p.receive(EventBatch(2, ()), 0.3)
    [close] = p.receive(EventBatch(3, ()), 0.3)
    assert isinstance(close, CloseLink) and close.reason is CloseReason.PROTOCOL_VIOLATION


def test_ping_pong_and_staleness() -> None:
    p = streaming()
    assert p.receive(Ping(4), 0.5) == [SendMessage(Pong(4))]
    assert p.tick(1.6) == [SendMessage(Ping(1))]
    assert p.tick(1.7) == []
    [close] = p.tick(5.6)
    assert isinstance(close, CloseLink) and close.reason is CloseReason.PEER_STALE


def test_handshake_timeout() -> None:
    p = link()
    p.start()
    [close] = p.tick(3.5)
    assert isinstance(close, CloseLink) and close.reason is CloseReason.HANDSHAKE_TIMEOUT


def test_drain_waits_for_inflight_acks() -> None:
    p = streaming()
    p.send_batch(4, ())
    assert p.drain(1.0) == []
    assert p.state is LinkState.DRAINING and p.next_read() is None
    actions = p.receive(BatchAck(4, 2), 1.1)
    assert actions[0] == AdvanceCursor(4)
    assert isinstance(actions[1], CloseLink) and actions[1].reason is CloseReason.SHUTDOWN
