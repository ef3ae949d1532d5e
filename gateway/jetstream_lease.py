"""A lease in the region's stream: at most one holder at a time among a region's gateways.

Issue 14's "who sends to each peer": gateway/jetstream_federation.py runs the region's one
federation node on the replica holding the lease `federation`. The lease is one subject,
`mg.<region>.l.<name>`, whose latest message is `{"holder": ..., "expires": unix seconds}`:

- `decide(current, holder, now)` (pure) says whether `holder` may write the lease now: it is
  free (never taken), expired, or already held by `holder` (a renewal);
- `JetStreamLease.acquire()` writes it with `Nats-Expected-Last-Subject-Sequence` = the
  sequence it read, so of two gateways that both saw it free only one write lands; the other
  gets a conflict and answers False.

Clocks: expiry is judged by each gateway's own clock, so the clocks of a region's gateways must
agree to well within `ttl` (NTP); a holder renews every ttl/3 and stops acting as holder when
a renewal fails (`held_until` tells until when it may still act).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.jetstream_client import JetStreamClient, Put
from gateway.jetstream_errors import Conflict
from gateway.jetstream_layout import H_EXPECT_SUBJECT_SEQ, Layout, token


@dataclass(frozen=True, slots=True)
class LeaseState:
    holder: str
    expires: float
    seq: int  # stream sequence of the message that set it


def decide(current: LeaseState | None, holder: str, now: float) -> bool:
    """May `holder` write the lease at `now`?"""
    return current is None or current.expires <= now or current.holder == holder


class JetStreamLease:
    """The lease `name` of one region, contended by gateways each calling `acquire`."""

    def __init__(
        self,
        client: JetStreamClient,
        layout: Layout,
        name: str,
        *,
        holder: str,
        ttl: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._subject = f"{layout.root}.l.{token(name)}"
        self.holder = holder
        self.ttl = ttl
        self._clock = clock
        self.held_until = 0.0  # our lease is valid before this (0: not held)

    async def current(self) -> LeaseState | None:
        record = await self._client.get_last(self._subject)
        if record is None:
            return None
        body = json.loads(record.data)
        return LeaseState(str(body["holder"]), float(body["expires"]), record.seq)

    async def acquire(self) -> bool:
        """Take or renew the lease; True if we hold it now. Raises StoreUnavailable-kinds."""
        now = self._clock()
        state = await self.current()
        if not decide(state, self.holder, now):
            self.held_until = 0.0
            return False
        expires = now + self.ttl
        body = json.dumps({"holder": self.holder, "expires": expires}).encode()
        expect = {H_EXPECT_SUBJECT_SEQ: str(state.seq if state else 0)}
        try:
            await self._client.publish_batch([Put(self._subject, body, expect)], "lease")
        except Conflict:  # someone else wrote it since we read it
            self.held_until = 0.0
            return False
        self.held_until = expires
        return True

    async def release(self) -> None:
        """Give the lease up now (if we hold it), so another gateway need not wait for ttl."""
        state = await self.current()
        if state is None or state.holder != self.holder:
            return
        body = json.dumps({"holder": self.holder, "expires": 0.0}).encode()
        expect = {H_EXPECT_SUBJECT_SEQ: str(state.seq)}
        with contextlib.suppress(Conflict):  # it expired and someone took it meanwhile
            await self._client.publish_batch([Put(self._subject, body, expect)], "lease")
        self.held_until = 0.0
