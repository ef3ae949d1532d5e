"""`WebhookService`: the gateway's webhook subscriptions, their runners and the API behind
`/subscriptions`.

One aiohttp client session serves every runner. `run()` loads the persisted subscriptions and
runs one `WebhookRunner` each inside one TaskGroup until cancelled; `create`/`replace`/`delete`
change the set while it runs (persisted before the runner starts or after it stops).

Rules:
- Creating or replacing needs what subscribing needs: `wait_current` then `check_subscribe`
  on the topic (Deny -> AccessDenied, Pause -> AccessPaused: try later), and, for a
  dead-letter topic other than `<topic>.dlq`, `check_publish` on it (the gateway writes there
  on the owner's behalf). Then the sink must pass the handshake (SinkRefused otherwise), and
  only then is the subscription stored: a refused request stores nothing.
- Ownership: only the identity that created a subscription (same address; anonymous on an
  open gateway) lists, reads, replaces or deletes it. Others get SubscriptionNotFound, so ids
  of other owners are not revealed.
- A sink answering 410 Gone deletes its subscription (persisted) and ends its runner.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp

from gateway.access import AccessControl, Identity, enforce
from gateway.errors import GatewayClosing
from gateway.hub import SubscriptionHub
from gateway.store import EventStore
from gateway.webhooks import handshake
from gateway.webhooks.delivery_state import DEFAULT_RETRY, RetryPolicy
from gateway.webhooks.errors import InvalidSubscription, SubscriptionNotFound
from gateway.webhooks.runner import WebhookRunner
from gateway.webhooks.subscription import Subscription, check_id, parse
from gateway.webhooks.subscriptions_file import SubscriptionsFile
from gateway.wire import Start

log = logging.getLogger(__name__)

DEFAULT_POST_TIMEOUT = 30.0  # seconds for one POST (or handshake) to be answered


class WebhookService:
    def __init__(
        self,
        *,
        data_dir: Path,
        hub: SubscriptionHub,
        access: AccessControl,
        store: EventStore,
        region: str,
        origin: str | None = None,
        policy: RetryPolicy = DEFAULT_RETRY,
        post_timeout: float = DEFAULT_POST_TIMEOUT,
        on_delivered: Callable[[str, int], None] = lambda topic, n: None,
    ) -> None:
        self._on_delivered = on_delivered
        self.hub = hub
        self.access = access
        self.store = store
        self.region = region
        # WebHook-Request-Origin: who is asking the sink for permission.
        self.origin = origin or f"meshgate-{region}"
        self.policy = policy
        self.post_timeout = post_timeout
        self._file = SubscriptionsFile(data_dir)
        self._subs: dict[str, Subscription] = {}
        self._runners: dict[str, tuple[WebhookRunner, asyncio.Task[None]]] = {}
        self._tg: asyncio.TaskGroup | None = None
        self._http: aiohttp.ClientSession | None = None
        self._lock = asyncio.Lock()
        self._started = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------------

    async def run(self) -> None:
        """Run every subscription's runner until cancelled."""
        subs = await asyncio.to_thread(self._file.load)
        async with aiohttp.ClientSession() as http, asyncio.TaskGroup() as tg:
            self._http, self._tg = http, tg
            try:
                for sub in subs:
                    self._subs[sub.id] = sub
                    self._start(sub)
                self._started.set()
                await asyncio.Event().wait()  # until cancelled
            finally:
                self._tg = None
                for _, task in self._runners.values():
                    task.cancel()

    async def wait_started(self) -> None:
        await self._started.wait()

    def statistics(self, sub_id: str) -> dict[str, Any]:
        runner = self._runners.get(sub_id)
        if runner is None:
            return {"status": "not running"}
        r = runner[0]
        return {"status": r.status, "delivered": r.delivered, "deadlettered": r.dead_lettered}

    # -- the API ---------------------------------------------------------------------------

    def list(self, caller: Identity) -> list[Subscription]:
        return sorted(
            (s for s in self._subs.values() if s.owner == caller.address), key=lambda s: s.id
        )

    def get(self, caller: Identity, sub_id: str) -> Subscription:
        sub = self._subs.get(sub_id)
        if sub is None or sub.owner != caller.address:
            raise SubscriptionNotFound(f"no subscription {sub_id!r}")
        return sub

    async def create(self, caller: Identity, body: Mapping[str, Any]) -> Subscription:
        """POST /subscriptions: a new subscription (id from the body or a fresh one)."""
        sub_id = body.get("id") if isinstance(body, Mapping) else None
        sub_id = check_id(sub_id) if isinstance(sub_id, str) else uuid.uuid4().hex
        if sub_id in self._subs:
            raise InvalidSubscription(f"subscription {sub_id!r} exists; PUT replaces it")
        return await self.put(caller, sub_id, body, create_only=True)

    async def put(
        self, caller: Identity, sub_id: str, body: Mapping[str, Any], *, create_only: bool = False
    ) -> Subscription:
        """PUT /subscriptions/{id}: create or replace (the group, and so its offset, stays
        unless the replacement names another)."""
        taken = self._subs.get(sub_id)
        if taken is not None and taken.owner != caller.address and not create_only:
            raise SubscriptionNotFound(f"no subscription {sub_id!r}")  # before any other check
        sub = parse(body, sub_id=sub_id, owner=caller.address)
        await self._check_access(caller, sub)
        allowed = await handshake.validate_sink(
            self._client(),
            sub.sink,
            self.origin,
            timeout=self.post_timeout,
            headers=dict(sub.headers),
        )
        async with self._lock:
            existing = self._subs.get(sub_id)
            if existing is not None and (create_only or existing.owner != caller.address):
                if create_only:
                    raise InvalidSubscription(f"subscription {sub_id!r} exists; PUT replaces it")
                raise SubscriptionNotFound(f"no subscription {sub_id!r}")
            start = await self.hub.resolve_start(sub.topic, Start("latest"))
            sub = dataclasses.replace(sub, start_offset=start)
            await self._save({**self._subs, sub_id: sub})  # persisted before it runs
            await self._stop(sub_id)
            self._subs[sub_id] = sub
            self._start(sub, allowed, caller)
        log.info(
            "webhook %s %s: %s -> %s",
            sub_id,
            "replaced" if existing else "created",
            sub.topic,
            sub.sink,
        )
        return sub

    async def delete(self, caller: Identity, sub_id: str) -> None:
        async with self._lock:
            self.get(caller, sub_id)
            await self._save({k: v for k, v in self._subs.items() if k != sub_id})
            await self._stop(sub_id)
            del self._subs[sub_id]
        log.info("webhook %s deleted", sub_id)

    # -- internals -------------------------------------------------------------------------

    async def _check_access(self, caller: Identity, sub: Subscription) -> None:
        await self.access.wait_current(caller, sub.topic, publish=False)
        enforce(self.access.check_subscribe(caller, sub.topic), "subscribe to", sub.topic)
        if sub.dead_letter_topic != f"{sub.topic}.dlq":
            await self.access.wait_current(caller, sub.dead_letter_topic, publish=True)
            topic = sub.dead_letter_topic
            enforce(self.access.check_publish(caller, topic), "dead-letter to", topic)

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None or self._tg is None:
            raise GatewayClosing("webhook delivery is not running")
        return self._http

    def _start(
        self,
        sub: Subscription,
        allowed: handshake.Allowed | None = None,
        creator: Identity | None = None,
    ) -> None:
        if self._tg is None or self._http is None:
            return
        runner = WebhookRunner(
            sub,
            hub=self.hub,
            access=self.access,
            store=self.store,
            http=self._http,
            origin=self.origin,
            region=self.region,
            policy=self.policy,
            post_timeout=self.post_timeout,
            on_gone=self._gone,
            allowed=allowed,
            on_delivered=self._on_delivered,
            creator=creator,
        )
        task = self._tg.create_task(_guarded(runner), name=f"webhook {sub.id}")
        self._runners[sub.id] = (runner, task)

    async def _stop(self, sub_id: str) -> None:
        entry = self._runners.pop(sub_id, None)
        if entry is None:
            return
        _, task = entry
        if task is asyncio.current_task():
            return  # a runner ending itself (410): it returns on its own
        task.cancel()
        await asyncio.wait({task})

    async def _gone(self, sub: Subscription, reason: str) -> None:
        """The sink said 410 Gone: the subscription ends for good."""
        async with self._lock:
            if self._subs.get(sub.id) is sub:
                await self._save({k: v for k, v in self._subs.items() if k != sub.id})
                await self._stop(sub.id)
                del self._subs[sub.id]

    async def _save(self, subs: Mapping[str, Subscription]) -> None:
        """Write the set `subs`; the caller changes memory only once this succeeded (a failed
        write raises StoreUnavailable and leaves both as they were)."""
        await asyncio.to_thread(self._file.save, list(subs.values()))


async def _guarded(runner: WebhookRunner) -> None:
    """One subscription's failure is logged and ends that runner only, not its siblings."""
    try:
        await runner.run()
    except Exception as exc:
        runner.status = f"failed: {exc}"
        log.exception("webhook %s failed", runner.sub.id)
