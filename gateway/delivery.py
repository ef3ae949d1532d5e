"""Dispatch state of one consumer group (or one ephemeral subscription): pure, no I/O.

Invariants, for offsets o of the topic:

- o < committed: done (acknowledged, filtered out, or gone to retention). `committed` is the
  contiguous acknowledged prefix, the value persisted for durable groups.
- committed <= o < read_pos: exactly one of leased (sent to one member, awaiting ack),
  pending (lease expired or member left, waiting for redelivery), or done.
- o >= read_pos: never dispatched.

An offset is leased to ONE member at a time. A lease expires `ack_wait(attempt)` seconds after
it was handed out: `ack_timeout` for the first delivery, doubling with each redelivery up to
`max_redelivery_delay` (never below `ack_timeout`), so an event nobody acknowledges is resent
ever more rarely instead of every ack timeout. `expire(now)` moves expired leases to pending,
and the next `take_pending` redelivers them with attempt + 1. An ack from any member completes
an offset (a late ack after redelivery still counts: the work is done).

Bound (like JetStream's `max_ack_pending`): at most `max_ack_pending` offsets are unacknowledged
(leased or pending) at once. `lease_new` is refused beyond it, so a consumer that reads but
never acks holds that many events, not the whole backlog; credits alone cannot bound it (a
client tops them up as it reads). Redeliveries are always allowed: they are already counted.

Transitions::

    never dispatched --lease_new (room)--> leased --ack--> done
                     --skip-------> done           leased --expire/release--> pending
    pending --take_pending--> leased                pending --ack/forget--> done
    leased --unsend--> pending (attempt not counted)
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass

# JetStream's default `max_ack_pending` for a consumer is 1000 as well.
DEFAULT_MAX_ACK_PENDING = 1000
# Cap of the doubling ack wait of redeliveries (5 min: 30 s, 60 s, 120 s, 240 s, 300 s, ...).
DEFAULT_MAX_REDELIVERY_DELAY = 300.0


@dataclass(slots=True)
class Lease:
    member: int
    attempt: int
    deadline: float


def ack_wait(attempt: int, ack_timeout: float, max_delay: float) -> float:
    """Seconds a lease of delivery `attempt` (1 = first) waits for its ack before redelivery."""
    cap = max(ack_timeout, max_delay)
    exponent = min(attempt - 1, 62)  # 2**62 * any timeout is past every cap
    return min(cap, ack_timeout * 2.0**exponent)


class DeliveryState:
    def __init__(
        self,
        committed: int,
        ack_timeout: float,
        *,
        max_ack_pending: int = DEFAULT_MAX_ACK_PENDING,
        max_redelivery_delay: float = DEFAULT_MAX_REDELIVERY_DELAY,
    ) -> None:
        if max_ack_pending <= 0:
            raise ValueError("max_ack_pending must be > 0")
        self.committed = committed
        self.read_pos = committed
        self.ack_timeout = ack_timeout
        self.max_ack_pending = max_ack_pending
        self.max_redelivery_delay = max_redelivery_delay
        self.leases: dict[int, Lease] = {}
        self._pending: list[int] = []  # heap of offsets
        self._pending_set: set[int] = set()
        self._attempts: dict[int, int] = {}

    # -- queries -------------------------------------------------------------

    @property
    def pending_count(self) -> int:
        return len(self._pending_set)

    @property
    def unacked(self) -> int:
        """Offsets handed out and not yet acknowledged: leased plus waiting for redelivery."""
        return len(self.leases) + len(self._pending_set)

    def room(self) -> int:
        """How many never-dispatched offsets may still be leased (max_ack_pending bound)."""
        return max(0, self.max_ack_pending - self.unacked)

    def attempts(self, offset: int) -> int:
        """Deliveries of `offset` so far (0 if never delivered or done)."""
        return self._attempts.get(offset, 0)

    def next_deadline(self) -> float | None:
        return min((lease.deadline for lease in self.leases.values()), default=None)

    def outstanding(self, member: int) -> int:
        return sum(1 for lease in self.leases.values() if lease.member == member)

    # -- transitions -----------------------------------------------------------

    def expire(self, now: float) -> bool:
        """Move expired leases to pending; True if any expired."""
        expired = [o for o, lease in self.leases.items() if lease.deadline <= now]
        for offset in expired:
            del self.leases[offset]
            self._push_pending(offset)
        return bool(expired)

    def release(self, member: int) -> bool:
        """A member left: its leases become pending at once. True if any."""
        mine = [o for o, lease in self.leases.items() if lease.member == member]
        for offset in mine:
            del self.leases[offset]
            self._push_pending(offset)
        return bool(mine)

    def take_pending(self, member: int, limit: int, now: float) -> list[tuple[int, int]]:
        """Lease up to `limit` pending offsets to `member`; returns (offset, attempt) pairs."""
        out: list[tuple[int, int]] = []
        while self._pending and len(out) < limit:
            offset = heapq.heappop(self._pending)
            if offset not in self._pending_set:
                continue
            self._pending_set.discard(offset)
            out.append((offset, self._lease(member, offset, now)))
        return out

    def unsend(self, offsets: Iterable[int]) -> None:
        """Leased offsets the shell took but did not send (no room in the message): back to
        pending, their attempt count as before the lease."""
        for offset in offsets:
            if self.leases.pop(offset, None) is None:
                continue
            self._attempts[offset] -= 1
            if not self._attempts[offset]:
                del self._attempts[offset]
            self._push_pending(offset)

    def lease_new(self, member: int, offset: int, now: float) -> int:
        """Lease a never-dispatched offset; offsets between read_pos and it are gone (done).

        Raises ValueError if `offset` was dispatched already or no room is left (a caller bug:
        check `room()` first)."""
        if offset < self.read_pos:
            raise ValueError(f"offset {offset} was already dispatched")
        if self.room() <= 0:
            raise ValueError(f"max_ack_pending ({self.max_ack_pending}) reached")
        self.read_pos = offset + 1
        attempt = self._lease(member, offset, now)
        self._advance()
        return attempt

    def skip(self, offset: int) -> None:
        """A never-dispatched offset that needs no delivery (filtered out)."""
        if offset >= self.read_pos:
            self.read_pos = offset + 1
            self._advance()

    def skip_to(self, offset: int) -> None:
        """Nothing below `offset` is left to dispatch (e.g. retention removed it)."""
        if offset > self.read_pos:
            self.read_pos = offset
            self._advance()

    def forget(self, offset: int) -> None:
        """A pending/leased offset that can no longer be read (retention): treat as done."""
        self.leases.pop(offset, None)
        self._pending_set.discard(offset)
        self._attempts.pop(offset, None)
        self._advance()

    def ack(self, offsets: Iterable[int]) -> bool:
        """Complete the offsets; True if `committed` moved."""
        before = self.committed
        for offset in offsets:
            if offset < self.committed or offset >= self.read_pos:
                continue
            self.leases.pop(offset, None)
            self._pending_set.discard(offset)
            self._attempts.pop(offset, None)
        self._advance()
        return self.committed != before

    # -- internals ------------------------------------------------------------------

    def _lease(self, member: int, offset: int, now: float) -> int:
        attempt = self._attempts.get(offset, 0) + 1
        self._attempts[offset] = attempt
        wait = ack_wait(attempt, self.ack_timeout, self.max_redelivery_delay)
        self.leases[offset] = Lease(member, attempt, now + wait)
        return attempt

    def _push_pending(self, offset: int) -> None:
        if offset not in self._pending_set:
            self._pending_set.add(offset)
            heapq.heappush(self._pending, offset)

    def _advance(self) -> None:
        while (
            self.committed < self.read_pos
            and self.committed not in self.leases
            and self.committed not in self._pending_set
        ):
            self.committed += 1
