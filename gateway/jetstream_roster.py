"""Which replica of a region writes each topic: rendezvous hashing over the live replicas (pure).

Two replicas appending to one topic race for its head (gateway/jetstream_writer.py): one of
every two batches planned at the same moment is refused and sent again, which doubled the CPU
per event of a two-replica region. So each topic has one writing replica, its *owner*, and
the others forward the topic's rows to it once they found they race for it
(gateway/jetstream_forward.py: a topic only one replica publishes is written where it is):

- every replica announces itself in the region's stream (`mg.<r>.w.<replica>`: its forward
  inbox and an expiry, renewed well within `ttl`); `Roster` is what a replica last read of
  those entries, judged live by its own clock;
- `owner_of(topic, live)` is the live replica with the highest hash of (topic, replica):
  replicas that read the same roster agree without talking, and a replica that joins or dies
  moves only its share of topics.

Ownership is a placement, never a safety rule: the writer's optimistic concurrency keeps offsets
dense and (topic, source, id) unique whoever writes. Two replicas that briefly disagree (one has
read a newer roster) both write, or forward to each other; a forwarded row is always written
where it lands, never forwarded again, so nothing loops and nothing is lost, it only costs a
re-planned batch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Member:
    """One replica's roster entry: where to forward rows to it, until when it is live, and
    where clients reach it (its writer hints; "" before it listens, or from an older one)."""

    replica: str
    inbox: str
    expires: float  # the writer's clock; 0: it left
    address: str = ""  # its client API, host:port


def encode(member: Member) -> bytes:
    body = {"replica": member.replica, "inbox": member.inbox, "expires": member.expires}
    if member.address:
        body["address"] = member.address
    return json.dumps(body).encode()


def decode(data: bytes) -> Member | None:
    """A roster entry, or None for anything that is not one (it is then ignored)."""
    try:
        body = json.loads(data)
        address = str(body.get("address", ""))
        return Member(str(body["replica"]), str(body["inbox"]), float(body["expires"]), address)
    except (ValueError, TypeError, KeyError, AttributeError):  # AttributeError: not an object
        return None


MAX_CACHED_OWNERS = 100_000  # topics whose owner is remembered (per live set)


def _score(topic: str, replica: str) -> bytes:
    return hashlib.blake2b(f"{topic}\x00{replica}".encode(), digest_size=8).digest()


def owner_of(topic: str, replicas: Sequence[str]) -> str | None:
    """The replica that writes `topic` among `replicas` (None: there is none)."""
    if not replicas:
        return None
    return max(replicas, key=lambda replica: _score(topic, replica))


class Roster:
    """The live replicas of a region as `me` last read them; answers each topic's owner.

    `me` always counts as live: a replica that could not renew its entry still writes its own
    topics (the others may forward to it or write themselves, both are safe)."""

    def __init__(self, me: str) -> None:
        self.me = me
        self._members: dict[str, Member] = {}
        self._live: tuple[str, ...] = (me,)
        self._soonest = float("inf")  # the earliest expiry among the live others
        self._owners: dict[str, str] = {}  # topic -> owner, for the current live set

    def observe(self, member: Member, now: float) -> None:
        """`member`'s latest entry (read from the stream; our own is ignored)."""
        if member.replica == self.me:
            return
        self._members[member.replica] = member
        self._judge(now)

    def stale(self, now: float, keep: float) -> list[str]:
        """Replicas whose entries have been dead for over `keep` seconds (to purge)."""
        return sorted(r for r, m in self._members.items() if m.expires + keep < now)

    def forget(self, replica: str, now: float) -> None:
        self._members.pop(replica, None)
        self._judge(now)

    def _judge(self, now: float) -> None:
        others = [m for m in self._members.values() if m.expires > now]
        live = tuple(sorted([self.me, *(m.replica for m in others)]))
        self._soonest = min((m.expires for m in others), default=float("inf"))
        if live != self._live:
            self._live = live
            self._owners.clear()

    @property
    def live(self) -> tuple[str, ...]:
        return self._live

    def owner(self, topic: str, now: float) -> Member | None:
        """Who writes `topic`: None when it is `me`, else the owner's entry."""
        if now >= self._soonest:
            self._judge(now)  # an entry expired since the last read
        owner = self._owners.get(topic)
        if owner is None:
            owner = owner_of(topic, self._live) or self.me
            if len(self._owners) >= MAX_CACHED_OWNERS:
                self._owners.clear()  # bounded: hashing again costs ~1 us a topic
            self._owners[topic] = owner
        return None if owner == self.me else self._members.get(owner)
