"""Durable groups shared by a region's replicas: one JetStream durable consumer per group.

With the SQLite store a group's dispatch state (who holds which offset, what is acked) lives
in the one gateway process (gateway/delivery.py). A region with several replicas cannot keep
it in any one of them, so on the JetStream store the state is the cluster's: each (topic,
group) is a durable pull consumer on the topic's event subjects (R3 like the stream), and
every replica with members of the group pulls from it.

Theory of operation (each rule where it is enforced):

- Shared work: the consumer hands each event to ONE pull at a time, across replicas; a member
  gets what its replica pulled (`fetch`), at most its credits, within the byte budget (what
  does not fit is naked back at once, for anyone).
- Acks: a member's acks are sent to the consumer and confirmed by one double ack on the last
  (`JetStreamClient.ack_many`: the server answers once it recorded them all), so an ack the
  gateway completed survives the gateway, and the event is never handed to the group again.
  Acks that fail (leader election) are kept and sent again with the next ack or fetch, for
  up to ack_timeout (after that the event is redelivered anyway): an ack not yet confirmed
  when a NATS node dies may be lost, and its event then comes again (at-least-once, as for a
  gateway that dies before it saved an ack).
- Redelivery: an event not acked `ack_timeout` after it was pulled is redelivered by the
  cluster to whichever replica pulls next; that is how a dead replica's in-flight deliveries
  reach the others. A member leaving, or a batch handed back, naks its deliveries (redelivered
  at once). JetStream does not push to a pull consumer nobody waits on, so a member with
  credit asks again every `ack_timeout / 2` (`seconds_until_deadline`): a dead replica's
  work resumes within about 1.5 x ack_timeout. A pull right after an append may find nothing
  yet (the consumer's leader applies the commit after the quorum acked it): then a few quick
  looks follow (`PullPacing`), so a burst's last events do not wait for that tick. Members on
  several replicas race for each append; a replica whose pulls keep coming back empty waits
  a little (at most LOSING_MAX) before pulling on the next append. A pull
  whose messages the filters all skip is followed by another at once. Redeliveries back off
  as on SQLite: the consumer's `backoff` list doubles the ack wait per attempt up to
  `max_redelivery_delay`.
  A pull that fails (the cluster electing a leader) gives nothing and is asked again then: a
  member's stream rides through an election, as reads do (gateway/jetstream_client.py).
- Committed offset: the consumer's ack floor (every event up to it acked) mapped to the
  next topic offset; written to the group record (`save_group`) when it moves, for
  GetGroups and restarts, at most PERSIST_EVERY after an ack (and at once when a member
  leaves). The cluster's consumer state wins over the record when both exist.
- Bound: `max_ack_pending` is the consumer's, so it bounds the group across all replicas.
- Filters: an event the group's filters do not match is acked at once (it needs no delivery).
  All replicas must open a group with the same filters (a replica checks only its own members).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from nats.aio.msg import Msg

from eventmodel import attributes, filters
from gateway.delivery import DEFAULT_MAX_REDELIVERY_DELAY, Lease, ack_wait
from gateway.dispatch import Dispatcher, Outgoing, _Budget
from gateway.errors import GatewayError, StoreError
from gateway.jetstream_client import JetStreamClient
from gateway.jetstream_layout import H_OFFSET, Layout
from gateway.store import EventStore, GroupRecord

log = logging.getLogger(__name__)


def consumer_name(topic: str, group: str) -> str:
    """A durable name for (topic, group): fixed size, unambiguous, a valid consumer name."""
    raw = f"{len(topic)}:{topic}\x00{group}".encode()
    return "g_" + hashlib.sha256(raw).hexdigest()[:40]


PERSIST_EVERY = 0.1  # s: the group record follows the consumer's ack floor this soon
MAX_BACKOFF_STEPS = 20  # ack waits listed; the server repeats the last one


def redelivery_backoff(ack_timeout: float, max_delay: float) -> list[int]:
    """Nanoseconds each delivery attempt waits for its ack: `ack_wait` of gateway/delivery.py
    (doubling from ack_timeout up to max_delay), as JetStream's consumer `backoff` list."""
    waits: list[int] = []
    for attempt in range(1, MAX_BACKOFF_STEPS + 1):
        wait = int(ack_wait(attempt, ack_timeout, max_delay) * 1e9)
        waits.append(wait)
        if waits[-1] >= int(max(ack_timeout, max_delay) * 1e9):
            break
    return waits


def consumer_config(
    subject: str,
    start_seq: int,
    ack_timeout: float,
    max_ack_pending: int,
    max_redelivery_delay: float = DEFAULT_MAX_REDELIVERY_DELAY,
) -> dict[str, object]:
    return {
        "deliver_policy": "by_start_sequence",
        "opt_start_seq": max(1, start_seq),
        "ack_policy": "explicit",
        "ack_wait": int(ack_timeout * 1e9),
        "backoff": redelivery_backoff(ack_timeout, max_redelivery_delay),
        "max_deliver": -1,
        "filter_subject": subject,
        "max_ack_pending": max_ack_pending,
        "replay_policy": "instant",
        "num_replicas": 0,  # the stream's (R3)
    }


SETTLE_FIRST = 0.01  # s: the first look again after an empty pull that followed an append
SETTLE_TRIES = 7  # looks, doubling: 0.01 .. 0.64 s, 1.27 s in all
LOSING_AFTER = 2  # empty pulls in a row: another replica's members take this group's events
LOSING_FIRST = 0.005  # s an append's wake then waits, doubling per further empty pull
LOSING_MAX = 0.05  # s at most: a replica that keeps losing still looks this often


class PullPacing:
    """When a member whose pull came back empty asks the cluster again (pure, no I/O).

    A commit is acknowledged once a quorum of the stream stored it, but the group's consumer
    may lead on another node, which sees the events only when its copy of the stream applies
    them: a pull right after the append can find nothing. Nothing would wake the members
    again until the next append or the ack_timeout / 2 tick, so the last events of a burst
    could wait 15 s. After an append, an empty pull is followed by a few quick looks, doubling
    (SETTLE_TRIES from SETTLE_FIRST); once a pull brings messages, or the looks are spent, the
    tick alone remains."""

    def __init__(self, tick: float) -> None:
        self.tick = tick
        self._looks_left = 0
        self._next: float | None = None
        self._empty = 0  # pulls in a row that brought nothing

    def appended(self) -> float:
        """An append: the seconds the members' wake waits (0: at once).

        Every replica's members wake on every append, and the first pull takes the events:
        with members on two replicas, the other one's pulls come back empty, about two per
        append. After LOSING_AFTER empty pulls in a row an append's wake waits (LOSING_FIRST,
        doubling to LOSING_MAX) and the looks go on where they were: what the winner leaves
        is still pulled within LOSING_MAX, and one pull that brings messages ends it."""
        if self._empty < LOSING_AFTER:
            self._looks_left = SETTLE_TRIES
            self._next = None
            return 0.0
        self._looks_left = max(self._looks_left, 1)
        return min(LOSING_FIRST * 2 ** (self._empty - LOSING_AFTER), LOSING_MAX)

    def pulled(self, messages: int) -> None:
        if messages:
            self._empty = 0
            self._next = None
            return
        self._empty += 1
        if self._looks_left > 0:
            self._next = SETTLE_FIRST * 2 ** (SETTLE_TRIES - self._looks_left)
            self._looks_left -= 1
        else:
            self._next = None

    def wait(self) -> float:
        """Seconds until the members should pull again, if nothing wakes them sooner."""
        return self.tick if self._next is None else min(self._next, self.tick)


@dataclass(slots=True)
class _Held:
    member: int
    reply: str


class JetStreamGroup(Dispatcher):
    """A Dispatcher whose state is a durable consumer: same surface for sessions and the hub.

    `state.committed` is the group's committed offset (refreshed by `persist`), and
    `state.leases` this replica's in-flight deliveries (so `state.unacked` counts them)."""

    def __init__(
        self,
        store: EventStore,
        client: JetStreamClient,
        layout: Layout,
        topic: str,
        group: str,
        flts: Sequence[filters.Filter],
        committed: int,
        ack_timeout: float,
        *,
        max_ack_pending: int,
        max_redelivery_delay: float = DEFAULT_MAX_REDELIVERY_DELAY,
        max_batch_bytes: int | None,
    ) -> None:
        super().__init__(
            store,  # only for save_group: every read goes through the consumer
            topic,
            group,
            flts,
            committed,
            ack_timeout,
            stored=False,  # the first persist writes the group record (list_groups, interest)
            max_ack_pending=max_ack_pending,
            max_redelivery_delay=max_redelivery_delay,
            max_batch_bytes=max_batch_bytes,
        )
        self._client = client
        self._layout = layout
        self.consumer = consumer_name(topic, group)
        self._held: dict[int, _Held] = {}  # offset -> who holds this replica's delivery
        self._unacked_replies: list[tuple[str, float]] = []  # (reply, first sent) unconfirmed
        self._to_nak: list[str] = []
        self._save_failing = False
        self._persisting: asyncio.Task[None] | None = None
        self._pacing = PullPacing(tick=ack_timeout / 2)
        self._deferred: asyncio.TimerHandle | None = None  # an append's wake, waiting

    async def open_consumer(self, start_seq: int) -> None:
        """Create the group's consumer at `start_seq` or join the one that exists."""
        config = consumer_config(
            self._layout.topic_events(self.topic),
            start_seq,
            self.state.ack_timeout,
            self.state.max_ack_pending,
            self.state.max_redelivery_delay,
        )
        info = await self._client.ensure_consumer(self.consumer, config)
        await self._set_committed(info)

    # -- what sessions call ----------------------------------------------------------------

    async def leave(self, member: int) -> None:
        self._members.pop(member, None)
        self._give_back(member)
        await self._send_naks()
        if self._persisting is not None:
            self._persisting.cancel()
        await self.persist()

    def hand_back(self, member: int) -> None:
        if self._give_back(member):
            self.wake_all()

    def appended(self) -> None:
        delay = self._pacing.appended()
        if not delay:
            self.wake_all()
        elif self._deferred is None:
            self._deferred = asyncio.get_running_loop().call_later(delay, self._wake_deferred)

    def _wake_deferred(self) -> None:
        self._deferred = None
        self.wake_all()

    def seconds_until_deadline(self) -> float | None:
        """Ask the cluster again after this long: redeliveries are pulled, never pushed, and
        a pull right after an append may come too early (PullPacing)."""
        return self._pacing.wait()

    def expire(self) -> None:
        self.wake_all()

    async def fetch(self, member: int, limit: int) -> list[Outgoing]:
        if limit <= 0:
            return []
        async with self._lock:
            await self._send_acks([])
            await self._send_naks()
            try:
                msgs = await self._client.pull(self.consumer, limit)
            except StoreError as exc:  # a leader election: members ask again (see above)
                log.info("group %r on topic %r: pull failed: %s", self.group, self.topic, exc)
                self._pacing.pulled(0)
                return []
            self._pacing.pulled(len(msgs))
            out: list[Outgoing] = []
            budget = _Budget(self.max_batch_bytes)
            skipped: list[str] = []
            for msg in msgs:
                offset = int((msg.headers or {})[H_OFFSET])
                if self.filters and not filters.matches_all(
                    self.filters, attributes.attribute_strings(attributes.parse(msg.data))
                ):
                    skipped.append(msg.reply)
                elif not budget.take(len(msg.data)):
                    self._to_nak.append(msg.reply)
                else:
                    attempt = _attempt(msg)
                    self._held[offset] = _Held(member, msg.reply)
                    self.state.leases[offset] = Lease(member, attempt, 0.0)
                    out.append(Outgoing(offset, attempt, msg.data))
            await self._send_acks(skipped)
            await self._send_naks()
            if msgs and not out:  # all filtered out: what follows them may match, look again
                self.wake_all()
            return out

    async def ack(self, offsets: Sequence[int]) -> None:
        replies = []
        for offset in offsets:
            held = self._held.pop(offset, None)
            self.state.leases.pop(offset, None)
            if held is not None:
                replies.append(held.reply)
        await self._send_acks(replies)
        self.wake_all()  # room under max_ack_pending may have opened, for any member
        self._persist_soon()

    def _persist_soon(self) -> None:
        """Refresh the group record PERSIST_EVERY after an ack, once for every ack meanwhile:
        the acks themselves are in the cluster already (what redelivery obeys); the record
        is what GetGroups, lag and restarts read, and it costs three requests."""
        if self._persisting is None or self._persisting.done():
            self._persisting = asyncio.get_running_loop().create_task(self._persist_later())

    async def _persist_later(self) -> None:
        await asyncio.sleep(PERSIST_EVERY)
        try:
            await self.persist()
        except GatewayError as exc:  # the store closed meanwhile: the next open reads the cluster
            log.debug("group %r on topic %r: not saved: %s", self.group, self.topic, exc)

    async def persist(self) -> None:
        """Refresh the committed offset from the consumer's ack floor; save it if it moved.

        A cluster that cannot answer now is logged; the next ack or leave tries again."""
        try:
            await self._set_committed(await self._client.consumer_info(self.consumer))
            if self.state.committed != self._persisted:
                record = GroupRecord(
                    self.topic,
                    self.group or "",
                    self.state.committed,
                    json.dumps(filters.list_to_json(self.filters)),
                )
                await self.store.save_group(record)
                self._persisted = self.state.committed
            self._save_failing = False
        except StoreError as exc:
            if not self._save_failing:  # once per outage, not once per ack
                log.warning("group %r on topic %r: not saved yet: %s", self.group, self.topic, exc)
            self._save_failing = True

    # -- internals -------------------------------------------------------------------------

    def _give_back(self, member: int) -> bool:
        mine = [o for o, h in self._held.items() if h.member == member]
        for offset in mine:
            self._to_nak.append(self._held.pop(offset).reply)
            self.state.leases.pop(offset, None)
        return bool(mine)

    async def _send_acks(self, replies: list[str]) -> None:
        now = time.monotonic()
        # an ack not confirmed for ack_timeout is moot: the cluster redelivers that event
        retry = [(r, t) for r, t in self._unacked_replies if now - t < self.state.ack_timeout]
        todo = [*retry, *((r, now) for r in replies)]
        self._unacked_replies = []
        if not todo:
            return
        try:
            await self._client.ack_many([r for r, _ in todo])
        except StoreError as exc:
            log.warning(
                "group %r: %d acks not confirmed yet, sent again later: %s",
                self.group,
                len(todo),
                exc,
            )
            self._unacked_replies.extend(todo)

    async def _send_naks(self) -> None:
        todo, self._to_nak = self._to_nak, []
        for i, reply in enumerate(todo):
            try:
                await self._client.nak(reply)
            except StoreError:
                self._to_nak.extend(todo[i:])  # else ack_wait redelivers them anyway
                return

    async def _set_committed(self, info: dict[str, object]) -> None:
        floor = int(info.get("ack_floor", {}).get("stream_seq", 0))  # type: ignore[attr-defined]
        nxt = await self._client.get_next(floor + 1, self._layout.topic_events(self.topic))
        if nxt is not None:
            committed = int(nxt.headers[H_OFFSET])
        else:
            head = await self._client.get_last(self._layout.head(self.topic))
            committed = int(head.data) if head is not None else self.state.committed
        self.state.committed = committed  # the cluster's consumer state wins over the record
        self.state.read_pos = committed


def _attempt(msg: Msg) -> int:
    try:
        return int(msg.metadata.num_delivered)
    except Exception:  # a reply subject not in the $JS.ACK form: count it as a first delivery
        return 1
