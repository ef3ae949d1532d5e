"""One webhook subscription's delivery loop: the I/O shell around `WebhookDelivery`.

The subscription reads a durable group through the same machinery as a gRPC subscription
(`SubscriptionHub.open` + `SubscriptionSession`): it resumes from the group's committed
offset after a restart, and the session checks the grant (`check_delivery`, audited by the
access layer like any delivery decision) before every batch it hands out. The runner checks
it again before every POST, retries included: Deny stops delivery (the session closes and its
leases go back to the group: nothing is lost, nothing more is sent) until a later check allows
again (a new grant; re-checked on every access-view change); Pause holds the batch in place
until a later check allows (fail closed, order kept).

Order of effects for one batch (enforced in `_carry_out`): dead-letter write, then ack; an
ack is persisted by the dispatcher before it counts (at least once).

The identity a subscription reads as is its owner's standing identity: the owner's address,
scoped to the subscription's topic, with no sign-in expiry (a webhook outlives the session
that created it; the on-chain grant, re-checked before every batch, is what bounds it).

Federation: other regions route a topic here only on a reader's signed sign-in proof
(gateway/interest.py). The standing identity has none, so the group's interest is registered
with the creator's identity while this process runs: the topic is attracted from other regions
until that sign-in expires. After it, or after a restart, the subscription receives what its
own region stores (and what it attracts for other readers) until a signed-in reader
subscribes to the topic here again. Open gateways route as before.

Resource handling: `run()` returns when the subscription ends (410 Gone, access denied) or
the gateway shuts down; cancelling it closes the session (leases released) under a timeout.
Store failures (full, unavailable) are logged and the loop restarts after a backoff.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Sequence

import aiohttp

from eventmodel.attributes import parse
from eventmodel.errors import UndecodableEvent
from gateway.access import ANONYMOUS, AccessControl, Allow, Deny, Identity
from gateway.dispatch import Outgoing
from gateway.errors import StoreError
from gateway.hub import SubscriptionHub
from gateway.registry_access import RegistryAccess, SignedInIdentity
from gateway.session import SubscriptionSession
from gateway.store import EventStore, NewEvent
from gateway.webhooks import handshake
from gateway.webhooks.delivery_state import (
    Ack,
    Action,
    DeadLetter,
    Post,
    RetryPolicy,
    Unsubscribe,
    WaitUntil,
    WebhookDelivery,
    backoff,
    parse_retry_after,
)
from gateway.webhooks.errors import SinkRefused
from gateway.webhooks.render import Rendered, render
from gateway.webhooks.subscription import Subscription
from gateway.wire import Start
from policy.errors import AccessDenied

log = logging.getLogger(__name__)

SINGLE_MODE_PREFETCH = 32  # events leased at once in binary/structured mode (posted one by one)
_standing_serials = itertools.count(-1, -1)  # apart from RegistryAccess's (positive) serials


def standing_identity(access: AccessControl, sub: Subscription) -> Identity:
    """The identity deliveries of `sub` are checked as (see the module docstring)."""
    if sub.owner is None:
        return ANONYMOUS
    if isinstance(access, RegistryAccess):
        return SignedInIdentity(
            address=sub.owner,
            expires_at=math.inf,
            topics=frozenset({sub.topic}),
            serial=next(_standing_serials),
        )
    return Identity(sub.owner)


class _Stop(Exception):
    """The runner is done (shutdown, 410, or denied): leave the loop."""


class WebhookRunner:
    def __init__(
        self,
        sub: Subscription,
        *,
        hub: SubscriptionHub,
        access: AccessControl,
        store: EventStore,
        http: aiohttp.ClientSession,
        origin: str,
        region: str,
        policy: RetryPolicy,
        post_timeout: float,
        on_gone: Callable[[Subscription, str], Awaitable[None]],
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
        allowed: handshake.Allowed | None = None,
        on_delivered: Callable[[str, int], None] = lambda topic, n: None,
        creator: Identity | None = None,
    ) -> None:
        """`allowed`: the sink's handshake answer if it was just validated (at creation);
        `on_delivered(topic, n)`: n events were accepted by the sink (metrics); `creator`: the
        signed-in identity that created the subscription, whose sign-in proof the group's
        interest carries to federation until it expires (see the module docstring)."""
        self._on_delivered = on_delivered
        self._creator = creator
        self.sub = sub
        self._allowed = allowed
        self.hub = hub
        self.access = access
        self.store = store
        self.http = http
        self.origin = origin
        self.region = region
        self.policy = policy
        self.post_timeout = post_timeout
        self._on_gone = on_gone
        self._clock = clock
        self._rng = rng
        self._view_changed = asyncio.Event()
        self.status = "starting"
        self.delivered = 0
        self.dead_lettered = 0

    async def run(self) -> None:
        """Deliver until the subscription ends or the gateway shuts down."""
        identity = standing_identity(self.access, self.sub)  # one stream key: audits on change
        unsubscribe_view = self.access.view.subscribe(self._view_changed.set)
        try:
            await self._supervise(identity)
        finally:
            unsubscribe_view()

    async def _supervise(self, identity: Identity) -> None:
        failures = 0
        while not self.hub.closing.is_set():
            try:
                await self._run_once(identity)
                return
            except _Stop:
                return
            except AccessDenied as exc:
                self.status = f"stopped: {exc}"
                log.warning("webhook %s stopped: %s", self.sub.id, exc)
                try:
                    await self._wait_granted(identity)
                except _Stop:
                    return
                log.info("webhook %s: access is back, delivering again", self.sub.id)
                # A denied stream stays closed in the access layer (its later allows are not
                # audited): the resumed delivery is a new stream, audited as an allow.
                identity = standing_identity(self.access, self.sub)
                continue
            except (SinkRefused, StoreError) as exc:
                failures += 1
                self.status = f"retrying: {exc}"
                log.warning("webhook %s: %s (retrying)", self.sub.id, exc)
            try:
                await self._sleep_until(self._clock() + backoff(failures, self.policy, self._rng))
            except _Stop:
                return

    async def _run_once(self, identity: Identity) -> None:
        sub = self.sub
        allowed, self._allowed = self._allowed, None
        if allowed is None:
            allowed = await handshake.validate_sink(
                self.http,
                sub.sink,
                self.origin,
                timeout=self.post_timeout,
                headers=dict(sub.headers),
            )
        flts = sub.delivery_filters()
        reader = self._creator if self._creator is not None else identity
        dispatcher = await self.hub.open(
            sub.topic, sub.group, flts, Start("offset", offset=sub.start_offset), reader
        )
        per_fetch = sub.batch_size if sub.mode == "batch" else SINGLE_MODE_PREFETCH
        session = SubscriptionSession(self.hub, self.access, identity, dispatcher, flts, per_fetch)
        policy = RetryPolicy(
            max_attempts=sub.max_attempts,
            initial_backoff=self.policy.initial_backoff,
            max_backoff=self.policy.max_backoff,
            jitter=self.policy.jitter,
            max_retry_after=self.policy.max_retry_after,
        )
        core = WebhookDelivery(policy, min_interval=allowed.min_interval, rng=self._rng)
        self.status = "delivering"
        try:
            async for batch in session.deliveries():
                await self._deliver(session, identity, core, batch)
                session.grant(len(batch))
        finally:
            async with asyncio.timeout(5):
                await session.close()

    async def _deliver(
        self,
        session: SubscriptionSession,
        identity: Identity,
        core: WebhookDelivery,
        batch: Sequence[Outgoing],
    ) -> None:
        step = self.sub.events_per_post()
        for start in range(0, len(batch), step):
            unit = list(batch[start : start + step])
            rendered, unit = await self._render_or_dead_letter(session, unit)
            if not unit:
                continue
            offsets = tuple(o.offset for o in unit)
            actions = core.batch_ready(offsets, self._clock())
            await self._carry_out(session, identity, core, actions, unit, rendered)

    async def _render_or_dead_letter(
        self, session: SubscriptionSession, unit: list[Outgoing]
    ) -> tuple[Rendered, list[Outgoing]]:
        """Render `unit`; stored bytes that are not a protobuf CloudEvent are dead-lettered (as
        stored) and acknowledged, and the rest is rendered without them."""
        good: list[Outgoing] = []
        for out in unit:
            try:
                parse(out.payload)
            except UndecodableEvent as exc:
                await self._dead_letter([out], f"undecodable: {exc}")
                await session.ack([out.offset])
                continue
            good.append(out)
        if not good:
            return Rendered({}, b""), good
        return render([o.payload for o in good], self.sub.mode), good

    async def _carry_out(
        self,
        session: SubscriptionSession,
        identity: Identity,
        core: WebhookDelivery,
        actions: list[Action],
        unit: list[Outgoing],
        rendered: Rendered,
    ) -> None:
        while actions:
            action = actions.pop(0)
            match action:
                case Post():
                    await self._wait_allowed(identity)
                    status, retry_after = await self._post(rendered)
                    actions += core.post_result(status, retry_after, self._clock())
                case WaitUntil(at):
                    await self._sleep_until(at)
                    actions += core.tick(self._clock())
                case DeadLetter(_, reason):
                    await self._dead_letter(unit, reason)
                case Ack(offsets, delivered):
                    await session.ack(offsets)
                    if delivered:
                        self.delivered += len(offsets)
                        self._on_delivered(self.sub.topic, len(offsets))
                case Unsubscribe(reason):
                    self.status = f"ended: {reason}"
                    log.warning("webhook %s ended: %s", self.sub.id, reason)
                    await self._on_gone(self.sub, reason)
                    raise _Stop

    async def _wait_allowed(self, identity: Identity) -> None:
        """Return once a POST may go out; Deny raises AccessDenied, Pause waits for a change."""
        while True:
            self._view_changed.clear()
            decision = self.access.check_delivery(identity, self.sub.topic)
            if isinstance(decision, Allow):
                return
            if isinstance(decision, Deny):
                raise AccessDenied(decision.reason, f"access to topic {self.sub.topic!r} ended")
            self.status = f"paused: {decision.reason}"
            await self._wait_view_change()
            self.status = "delivering"

    async def _wait_granted(self, identity: Identity) -> None:
        """After a Deny: wait, sending nothing, until a check allows again (a new grant)."""
        while True:
            self._view_changed.clear()
            if isinstance(self.access.check_delivery(identity, self.sub.topic), Allow):
                return
            await self._wait_view_change()

    async def _wait_view_change(self) -> None:
        """Until the access view changes; raises _Stop if the gateway shuts down first."""
        closing = asyncio.ensure_future(self.hub.closing.wait())
        changed = asyncio.ensure_future(self._view_changed.wait())
        try:
            await asyncio.wait({closing, changed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
            changed.cancel()
        if self.hub.closing.is_set():
            raise _Stop

    async def _post(self, rendered: Rendered) -> tuple[int | None, float | None]:
        headers = {**dict(self.sub.headers), **rendered.headers}
        try:
            async with self.http.post(
                self.sub.sink,
                data=rendered.body,
                headers=headers,
                allow_redirects=False,  # the Webhook spec: never follow a redirect
                skip_auto_headers=("Content-Type",),  # binary mode: no invented content type
                timeout=aiohttp.ClientTimeout(total=self.post_timeout),
            ) as response:
                retry_after = parse_retry_after(response.headers.get("Retry-After"), time.time())
                return response.status, retry_after
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.info("webhook %s: POST to %s failed: %s", self.sub.id, self.sub.sink, exc)
            return None, None

    async def _dead_letter(self, unit: Sequence[Outgoing], reason: str) -> None:
        """Append the events, bytes unchanged, to the dead-letter topic (idempotent by
        (source, id) like any publish, so a retried dead-letter write stores nothing twice)."""
        staged = []
        for out in unit:
            try:
                pb = parse(out.payload)
                source, event_id, event_type = pb.source, pb.id, pb.type
            except UndecodableEvent:
                source, event_id, event_type = f"/meshgate/{self.sub.topic}", str(out.offset), ""
            staged.append(NewEvent(source, event_id, event_type, out.payload))
        await self.store.append(self.sub.dead_letter_topic, staged, self.region)
        self.dead_lettered += len(unit)
        log.warning(
            "webhook %s: %d event(s) from offset %d dead-lettered to %r: %s",
            self.sub.id,
            len(unit),
            unit[0].offset,
            self.sub.dead_letter_topic,
            reason,
        )

    async def _sleep_until(self, at: float) -> None:
        """Sleep until monotonic `at`; raises _Stop if the gateway shuts down first."""
        delay = max(0.0, at - self._clock())
        try:
            async with asyncio.timeout(delay):
                await self.hub.closing.wait()
        except TimeoutError:
            return
        raise _Stop
