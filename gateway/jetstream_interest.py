"""`RegionInterest`: every replica's readers in the cluster, one InterestSource for the region.

The I/O shell of gateway/region_interest.py (the merge and liveness rules live there). Every
replica of a region on JetStream runs one (`run()`, inside `LeasedFederation.run`):

- it writes its registry's interest (`InterestRegistry.proven()`) to `mg.<r>.i.<replica>` in
  the region's stream (`max_msgs_per_subject: 1`, so the subject is a key holding its latest
  entry) on every change and every `ttl / 3` (the heartbeat that keeps it live), and a
  farewell (`at = 0`) when it stops cleanly;
- it watches `mg.<r>.i.*` with an ordered consumer (the latest entry of each replica first,
  then every new one): no polling; an entry whose interest changed wakes `wait_changed`;
- entries dead for over `PURGE_AFTER` are purged (replica ids are per process).

As the lease holder's InterestSource, `local_interest()` is the merge of its own live
registry and every other live entry; `wait_changed` wakes on a registry re-evaluation (a
local change or an access-view change: federation re-judges then), on another replica's
change, and when an entry or a proof expires by time. Proofs are forwarded as the replicas
held them; the receiving peers judge them (the merge authorizes nothing).

Clocks: an entry's `at` is its writer's clock, judged by the reader's: the replicas' clocks
must agree to well within `ttl` (as for the lease). Errors: a failed write or watch is logged
and retried at the next heartbeat; the entries already seen keep counting until their ttl.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import DeliverPolicy

from federation.messages import TopicInterest
from gateway import region_interest as core
from gateway.errors import StoreError
from gateway.federation_port import topic_interests
from gateway.interest import InterestRegistry
from gateway.jetstream_client import JetStreamClient
from gateway.jetstream_errors import store_error
from gateway.jetstream_layout import Layout

log = logging.getLogger(__name__)

DEFAULT_TTL = 10.0  # s: a dead replica's readers stop attracting events within this
PURGE_AFTER = 600.0  # s an entry stays dead before it is purged from the stream


UNSUBSCRIBE_TIMEOUT = 2.0  # s


class RegionInterest:
    """This replica's entry writer and watcher, and the region's merged InterestSource."""

    def __init__(
        self,
        client: Callable[[], JetStreamClient],  # the store's connection, once it is open
        layout: Layout,
        replica: str,
        registry: InterestRegistry,
        *,
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._layout = layout
        self.replica = replica
        self._registry = registry
        self.ttl = ttl
        self._clock = clock
        self._entries: dict[str, core.ReplicaInterest] = {}  # other replicas, latest entry
        self._version = 0
        self._woken = asyncio.Event()

    # -- InterestSource (the lease holder's federation node) ----------------------------------

    def local_interest(self) -> Sequence[TopicInterest]:
        now = self._clock()
        own = self._registry.proven()
        return topic_interests(core.merge(own, self._entries.values(), now=now, ttl=self.ttl))

    async def wait_changed(self, seen_version: int) -> int:
        while self._version == seen_version:
            now = self._clock()
            times = [self._registry.next_expiry(), self.next_change()]
            deadline = min((t for t in times if t is not None), default=None)
            delay = None if deadline is None else max(0.0, deadline - now) + 0.01
            woken = self._woken
            try:
                async with asyncio.timeout(delay):
                    await woken.wait()
            except TimeoutError:  # an entry or a proof ran out
                self._registry.reevaluate()  # drops our own expired proofs
                self._bump()
        return self._version

    def next_change(self) -> float | None:
        """When the merge next changes by time alone (unix s), None if never."""
        return core.next_change(self._entries.values(), now=self._clock(), ttl=self.ttl)

    def replicas(self) -> list[str]:
        """The other replicas whose entries are live now."""
        now = self._clock()
        return sorted(r for r, e in self._entries.items() if e.live(now, self.ttl))

    def _bump(self) -> None:
        self._version += 1
        self._woken.set()
        self._woken = asyncio.Event()

    # -- the writer and the watch ------------------------------------------------------------

    async def run(self) -> None:
        """Write our entry on change and every ttl/3, watch the others'; until cancelled."""
        period = self.ttl / 3
        subject = self._layout.interest(self.replica)
        sub: Subscription | None = None
        written: bytes | None = None  # our last entry with `at` left out
        wrote_at = 0.0
        pulses = self._registry.pulses
        task = asyncio.current_task()
        try:
            while True:
                # Python 3.11's wait_for (inside nats-py's requests) can swallow a cancel that
                # lands as its future completes: a cancelled run would then loop forever.
                if task is not None and task.cancelling():
                    raise asyncio.CancelledError
                client = self._client()
                if sub is None:
                    sub = await self._watch(client)
                now = self._clock()
                proven = self._registry.proven()
                body = core.encode(self.replica, proven, 0.0)
                if body != written or now - wrote_at >= period:
                    try:
                        await client.put(subject, core.encode(self.replica, proven, now))
                        written, wrote_at = body, now
                    except StoreError as exc:
                        log.warning("region interest not written (retried): %s", exc)
                await self._purge_stale(client, now)
                seen = pulses
                due = max(0.05, wrote_at + period - self._clock())  # the next heartbeat
                pulses = await self._registry.wait_pulse(pulses, due)
                if pulses != seen:
                    self._bump()  # federation re-judges on every registry pulse
        finally:
            if sub is not None:  # bounded: a cancelled run must end even if the cluster stalls
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(UNSUBSCRIBE_TIMEOUT):
                        await sub.unsubscribe()

    async def farewell(self) -> None:
        """Mark our entry gone (`at = 0`), so the holder drops it now, not after ttl."""
        body = core.encode(self.replica, {}, 0.0)
        await self._client().put(self._layout.interest(self.replica), body)

    async def _watch(self, client: JetStreamClient) -> Subscription | None:
        try:
            return await client.nc.jetstream().subscribe(
                self._layout.all_interest,
                cb=self._on_entry,
                ordered_consumer=True,
                deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
                stream=self._layout.stream,
            )
        except Exception as exc:
            log.warning("%s (retried)", store_error(exc, "interest watch"))
            return None

    async def _on_entry(self, msg: Msg) -> None:
        try:
            entry = core.decode(msg.data)
        except ValueError as exc:
            log.warning("ignoring a region interest entry on %s: %s", msg.subject, exc)
            return
        if entry.replica == self.replica:
            return
        now = self._clock()
        old = self._entries.get(entry.replica)
        self._entries[entry.replica] = entry
        if (
            old is None
            or old.interests != entry.interests
            or old.live(now, self.ttl) != entry.live(now, self.ttl)
        ):
            self._bump()

    async def _purge_stale(self, client: JetStreamClient, now: float) -> None:
        for replica in core.stale(self._entries.values(), now=now, ttl=self.ttl, keep=PURGE_AFTER):
            try:
                await client.purge(self._layout.interest(replica))
            except StoreError as exc:
                log.warning("stale region interest of %s not purged: %s", replica, exc)
                return
            self._entries.pop(replica, None)
