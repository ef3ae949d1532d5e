"""LinkProtocol: the sans-I/O state machine of one peer link (either side of the stream).

It is fed decoded peer messages, results of the shell's work and clock ticks, and returns
actions; it never touches a socket, a store or a clock of its own.

Transitions are data: `TRANSITIONS` maps (state, message kind) to the handler that applies the
message and the state the link enters when the handler did not close it. A message kind with no
entry for the current state is the peer's protocol violation. Summary:

    HANDSHAKING --Hello (version + region ok)--> STREAMING
    HANDSHAKING --Hello (bad)-------------------> CLOSED (PROTOCOL_VIOLATION / WRONG_REGION)
    HANDSHAKING --anything else-----------------> CLOSED (PROTOCOL_VIOLATION)
    HANDSHAKING --handshake_timeout-------------> CLOSED (HANDSHAKE_TIMEOUT)
    STREAMING   --drain()-----------------------> DRAINING  (no new batches; wait for acks)
    DRAINING    --last in-flight batch acked----> CLOSED (SHUTDOWN)
    DRAINING    --drain_timeout-----------------> CLOSED (SHUTDOWN)
    any         --nothing heard for stale_after-> CLOSED (PEER_STALE)
    any         --protocol violation------------> CLOSED (PROTOCOL_VIOLATION)
    any         --peer_closed()-----------------> CLOSED (PEER_CLOSED)

Error handling: the peer's violations are raised inside handlers as `PeerProtocolError` and
turned by `receive()` into `CloseLink(PROTOCOL_VIOLATION, detail)`: a peer can never make us
raise. Our own misuse (storing out of order, sending while the window is shut) raises
`LocalProtocolError`: a bug in the shell, not something to recover from.

Rules:
- Outbound batches start only after the peer's first Interest (routing needs it) and while
  fewer than `window` batches are unacked. Acks are cumulative and must name a sent batch.
- Persist before ack: an inbound batch becomes StoreBatch; the BatchAck goes out only when the
  shell reports `batch_stored(seq)`. The sender's cursor advances only on that ack
  (AdvanceCursor), so after any crash it resends from the last durable point.
- Inbound batch seqs strictly increase within one link; at most `window` may be unacked.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from federation.errors import LocalProtocolError, PeerProtocolError
from federation.messages import (
    PROTOCOL_VERSION,
    BatchAck,
    EventBatch,
    Hello,
    Interest,
    KeySets,
    Member,
    Members,
    PeerMessage,
    Ping,
    Pong,
    ReplicatedEvent,
    TopicKeySet,
)


class LinkState(enum.Enum):
    HANDSHAKING = "handshaking"
    STREAMING = "streaming"
    DRAINING = "draining"
    CLOSED = "closed"


class CloseReason(enum.Enum):
    SHUTDOWN = "shutdown"
    PEER_CLOSED = "peer_closed"
    PEER_STALE = "peer_stale"
    HANDSHAKE_TIMEOUT = "handshake_timeout"
    PROTOCOL_VIOLATION = "protocol_violation"
    WRONG_REGION = "wrong_region"
    DUPLICATE = "duplicate"
    PROBED = "probed"
    STORE_FAILED = "store_failed"
    INTERNAL_ERROR = "internal_error"


# ---- actions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendMessage:
    message: PeerMessage


@dataclass(frozen=True)
class PeerHello:
    """The handshake is done: register the link, learn the members, send our Interest."""

    region: str
    members: tuple[Member, ...]


@dataclass(frozen=True)
class PeerInterest:
    interest: Interest


@dataclass(frozen=True)
class PeerMembers:
    members: tuple[Member, ...]


@dataclass(frozen=True)
class PeerKeySets:
    """Key sets the peer floods: the host checks each against the chain (key_set_flood)."""

    sets: tuple[TopicKeySet, ...]


@dataclass(frozen=True)
class StoreBatch:
    """Verify and persist, then call `batch_stored(seq)`."""

    batch: EventBatch


@dataclass(frozen=True)
class AdvanceCursor:
    """Everything up to `seq` of our log is durable at the peer: persist the cursor."""

    seq: int


@dataclass(frozen=True)
class CloseLink:
    reason: CloseReason
    detail: str = ""


Action = (
    SendMessage
    | PeerHello
    | PeerInterest
    | PeerMembers
    | PeerKeySets
    | StoreBatch
    | AdvanceCursor
    | CloseLink
)


@dataclass(frozen=True, kw_only=True)
class LinkSettings:
    window: int = 8
    ping_interval: float = 1.0
    stale_after: float = 5.0
    handshake_timeout: float = 10.0
    drain_timeout: float = 3.0


class LinkProtocol:
    """One link's protocol state. `expected_region` is what TLS proved about the peer."""

    def __init__(
        self,
        *,
        local_region: str,
        expected_region: str | None,
        members: tuple[Member, ...],
        cursor: int,
        settings: LinkSettings,
        now: float,
    ) -> None:
        self.local_region = local_region
        self.expected_region = expected_region
        self.peer_region: str | None = None
        self.state = LinkState.HANDSHAKING
        self.close_reason: CloseReason | None = None
        self._members = members
        self._settings = settings
        self._started = now
        self._last_heard = now
        self._last_ping = now
        self._ping_nonce = 0
        self._drain_deadline: float | None = None
        # outbound
        self.acked_seq = cursor
        self._read_seq = cursor
        self._inflight: list[int] = []
        self._window = settings.window
        self._peer_interest_seen = False
        self.batches_sent = 0
        # inbound
        self._last_inbound = -1
        self._unacked_inbound: list[int] = []
        self.batches_received = 0

    # ---- lifecycle ----------------------------------------------------------------------------

    def start(self) -> list[Action]:
        """The first message of both sides."""
        hello = Hello(PROTOCOL_VERSION, self.local_region, self._members)
        return [SendMessage(hello)]

    def drain(self, now: float) -> list[Action]:
        """Stop sending new batches; close once in-flight ones are acked or the drain times out."""
        if self.state is LinkState.STREAMING:
            self.state = LinkState.DRAINING
            self._drain_deadline = now + self._settings.drain_timeout
            return self._maybe_drained()
        if self.state is LinkState.HANDSHAKING:
            return self._close(CloseReason.SHUTDOWN)
        return []

    def peer_closed(self) -> list[Action]:
        if self.state is LinkState.CLOSED:
            return []
        return self._close(CloseReason.PEER_CLOSED)

    def abort(self, reason: CloseReason, detail: str = "") -> list[Action]:
        """The shell gave up on the link (e.g. it failed to store)."""
        if self.state is LinkState.CLOSED:
            return []
        return self._close(reason, detail)

    def tick(self, now: float) -> list[Action]:
        if self.state is LinkState.CLOSED:
            return []
        if (
            self.state is LinkState.HANDSHAKING
            and now - self._started > self._settings.handshake_timeout
        ):
            return self._close(CloseReason.HANDSHAKE_TIMEOUT)
        if now - self._last_heard > self._settings.stale_after:
            return self._close(CloseReason.PEER_STALE, f"silent {now - self._last_heard:.1f}s")
        if self._drain_deadline is not None and now >= self._drain_deadline:
            return self._close(CloseReason.SHUTDOWN, "drain timed out")
        if self.state is not LinkState.HANDSHAKING and now - self._last_ping >= (
            self._settings.ping_interval
        ):
            self._last_ping = now
            self._ping_nonce += 1
            return [SendMessage(Ping(self._ping_nonce))]
        return []

    # ---- inbound messages ---------------------------------------------------------------------

    def receive(self, message: PeerMessage, now: float) -> list[Action]:
        """Apply one peer message (see TRANSITIONS); never raises for what the peer sent."""
        if self.state is LinkState.CLOSED:
            return []
        self._last_heard = now
        transition = TRANSITIONS.get((self.state, type(message)))
        try:
            if transition is None:
                raise PeerProtocolError(f"{type(message).__name__} while {self.state.value}")
            actions = transition.handler(self, message)
        except PeerProtocolError as exc:
            return self._violation(str(exc))
        if transition.next_state is not None and self.state is not LinkState.CLOSED:
            self.state = transition.next_state
        return actions

    def _on_interest(self, interest: Interest) -> list[Action]:
        self._peer_interest_seen = True
        return [PeerInterest(interest)]

    def _on_members(self, members: Members) -> list[Action]:
        return [PeerMembers(members.members)]

    def _on_key_sets(self, key_sets: KeySets) -> list[Action]:
        return [PeerKeySets(key_sets.sets)] if key_sets.sets else []

    def _on_ping(self, ping: Ping) -> list[Action]:
        return [SendMessage(Pong(ping.nonce))]

    def _on_pong(self, pong: Pong) -> list[Action]:
        return []

    def _on_hello(self, hello: Hello) -> list[Action]:
        if hello.protocol_version != PROTOCOL_VERSION:
            raise PeerProtocolError(f"protocol version {hello.protocol_version}")
        if hello.region == self.local_region:
            return self._close(CloseReason.WRONG_REGION, "peer claims our own region")
        if self.expected_region is not None and hello.region != self.expected_region:
            return self._close(
                CloseReason.WRONG_REGION,
                f"Hello says {hello.region!r}, certificate says {self.expected_region!r}",
            )
        self.peer_region = hello.region
        return [PeerHello(hello.region, hello.members)]

    def _on_batch(self, batch: EventBatch) -> list[Action]:
        if batch.seq <= self._last_inbound:
            raise PeerProtocolError(f"batch seq {batch.seq} not after {self._last_inbound}")
        if len(self._unacked_inbound) >= self._settings.window:
            raise PeerProtocolError("peer exceeded its window")
        self._last_inbound = batch.seq
        self._unacked_inbound.append(batch.seq)
        self.batches_received += 1
        return [StoreBatch(batch)]

    def _on_ack(self, ack: BatchAck) -> list[Action]:
        if ack.seq not in self._inflight:
            raise PeerProtocolError(f"ack for unsent batch {ack.seq}")
        while self._inflight and self._inflight[0] <= ack.seq:
            self._inflight.pop(0)
        self.acked_seq = ack.seq
        if ack.credits > 0:
            self._window = ack.credits
        return [AdvanceCursor(ack.seq), *self._maybe_drained()]

    # ---- shell results ------------------------------------------------------------------------

    def batch_stored(self, seq: int) -> list[Action]:
        """The shell persisted inbound batch `seq` (in order): acknowledge it."""
        if self.state is LinkState.CLOSED:
            return []
        if not self._unacked_inbound or self._unacked_inbound[0] != seq:
            raise LocalProtocolError(f"batch {seq} stored out of order")
        self._unacked_inbound.pop(0)
        return [SendMessage(BatchAck(seq, self._settings.window))]

    def next_read(self) -> int | None:
        """Where the shell should read our log from for the next batch, or None (not now)."""
        if self.state is not LinkState.STREAMING or not self._peer_interest_seen:
            return None
        if len(self._inflight) >= self._window:
            return None
        return self._read_seq

    def send_batch(self, seq: int, events: tuple[ReplicatedEvent, ...]) -> list[Action]:
        """Send what the shell read up to `seq` (events may be empty: the cursor still moves)."""
        if self.next_read() is None:
            raise LocalProtocolError("send_batch while the link cannot send")
        if seq <= self._read_seq:
            raise LocalProtocolError(f"batch seq {seq} does not advance past {self._read_seq}")
        self._read_seq = seq
        self._inflight.append(seq)
        self.batches_sent += 1
        return [SendMessage(EventBatch(seq, events))]

    def send_interest(self, interest: Interest) -> list[Action]:
        if self.state in (LinkState.STREAMING, LinkState.DRAINING):
            return [SendMessage(interest)]
        return []

    def send_members(self, members: tuple[Member, ...]) -> list[Action]:
        if self.state in (LinkState.STREAMING, LinkState.DRAINING):
            return [SendMessage(Members(members))]
        return []

    def send_key_sets(self, sets: tuple[TopicKeySet, ...]) -> list[Action]:
        if sets and self.state in (LinkState.STREAMING, LinkState.DRAINING):
            return [SendMessage(KeySets(sets))]
        return []

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    # ---- internals ----------------------------------------------------------------------------

    def _maybe_drained(self) -> list[Action]:
        if self.state is LinkState.DRAINING and not self._inflight:
            return self._close(CloseReason.SHUTDOWN)
        return []

    def _violation(self, detail: str) -> list[Action]:
        return self._close(CloseReason.PROTOCOL_VIOLATION, detail)

    def _close(self, reason: CloseReason, detail: str = "") -> list[Action]:
        self.state = LinkState.CLOSED
        self.close_reason = reason
        return [CloseLink(reason, detail)]


@dataclass(frozen=True)
class Transition:
    """How a message kind is handled in a state; `next_state` applies unless the handler closed."""

    handler: Callable[[LinkProtocol, Any], list[Action]]
    next_state: LinkState | None = None


_STREAMING_MESSAGES: Mapping[type, Transition] = {
    Interest: Transition(LinkProtocol._on_interest),
    Members: Transition(LinkProtocol._on_members),
    KeySets: Transition(LinkProtocol._on_key_sets),
    EventBatch: Transition(LinkProtocol._on_batch),
    BatchAck: Transition(LinkProtocol._on_ack),
    Ping: Transition(LinkProtocol._on_ping),
    Pong: Transition(LinkProtocol._on_pong),
}

TRANSITIONS: Mapping[tuple[LinkState, type], Transition] = {
    (LinkState.HANDSHAKING, Hello): Transition(LinkProtocol._on_hello, LinkState.STREAMING),
    **{(LinkState.STREAMING, kind): t for kind, t in _STREAMING_MESSAGES.items()},
    # Draining stops only our new batches: the peer may still send, and we still store and ack.
    **{(LinkState.DRAINING, kind): t for kind, t in _STREAMING_MESSAGES.items()},
}
