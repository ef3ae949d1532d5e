"""Who may publish, subscribe and receive: the extension point the policy layer plugs into.

The gateway calls an `AccessControl` at four points:

1. `authenticate(credentials)` once per RPC (publish) or stream (subscribe) -> `Identity`.
   Raise an error for bad credentials; status.py maps it (the policy layer's errors are in
   its table). `None` credentials mean the caller sent none.
2. `check_publish(identity, topic)` before a publish is stored.
3. `check_subscribe(identity, topic)` when a stream opens; only allowed subscriptions count
   as interest (gateway/interest.py).
   Before 2 and 3 the gateway awaits `wait_current(identity, topic, publish=...)`: an access
   layer whose view lags its source (the chain) catches up there before it would deny.
4. `check_delivery(identity, topic)` before EVERY batch is sent. It must be pure and cheap
   (answer from a cache); `Deny` ends the stream with PERMISSION_DENIED, `Pause` holds
   deliveries until a later call answers `Allow` (fail closed: nothing is sent while paused).

Access views change without traffic (a revoke on chain): the access layer calls
`AccessView.changed()`; every open stream then re-runs `check_delivery` at once, so a revoke
ends a stream that has nothing to send. Sign-In with Ethereum is delegated too: `get_nonce`
and `sign_in` back the GetNonce / SignIn RPCs.

The gateway maps protobuf credentials to `Credentials` here, so implementers never see pb2.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from gateway.errors import RegistryNotConfigured, TopicNotFound
from policy.errors import AccessDenied, AccessPaused

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Identity:
    """The caller: an Ethereum address (checksummed) or anonymous (address None)."""

    address: str | None = None

    @property
    def anonymous(self) -> bool:
        return self.address is None


ANONYMOUS = Identity()


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a caller presented: a fresh EIP-4361 proof or a session token from SignIn."""

    message: str | None = None
    signature: bytes | None = None
    session_token: str | None = None


@dataclass(frozen=True, slots=True)
class Allow:
    pass


@dataclass(frozen=True, slots=True)
class Deny:
    reason: str


@dataclass(frozen=True, slots=True)
class UnknownTopic(Deny):
    """The topic is not registered on chain: NOT_FOUND (404), not PERMISSION_DENIED."""


@dataclass(frozen=True, slots=True)
class Pause:
    """Not known right now (e.g. the chain is unreachable): hold deliveries, fail closed."""

    reason: str


Decision = Allow | Deny | Pause
ALLOW = Allow()


def enforce(decision: Decision, action: str, topic: str, *, hold: bool = False) -> None:
    """What every door (gRPC, HTTP) does with a decision: UnknownTopic raises TopicNotFound,
    Deny AccessDenied; Pause raises AccessPaused unless the caller can hold (a stream)."""
    if isinstance(decision, UnknownTopic):
        raise TopicNotFound(f"{decision.reason}; cannot {action} topic {topic!r}")
    if isinstance(decision, Deny):
        raise AccessDenied(decision.reason, f"may not {action} topic {topic!r}")
    if isinstance(decision, Pause) and not hold:
        raise AccessPaused(decision.reason, f"cannot {action} topic {topic!r} right now")


@dataclass(frozen=True, slots=True)
class NonceChallenge:
    nonce: str
    domain: str
    uri: str
    chain_id: int
    expires_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Session:
    token: str
    address: str
    expires_at: dt.datetime


class AccessView:
    """A change signal: `changed()` wakes every waiter; each waiter then re-checks.

    Waiters call `subscribe(callback)`; callbacks run on the event loop, must not block, and
    are removed with the returned function. Thread-safe `changed_threadsafe` exists for
    access layers that learn of changes on another thread.
    """

    def __init__(self) -> None:
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._next = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        key = self._next
        self._next += 1
        self._callbacks[key] = callback

        def unsubscribe() -> None:
            self._callbacks.pop(key, None)

        return unsubscribe

    def changed(self) -> None:
        for callback in list(self._callbacks.values()):
            callback()

    def changed_threadsafe(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.changed)


@runtime_checkable
class AccessControl(Protocol):
    """See the module docstring for when each method is called."""

    view: AccessView

    async def authenticate(self, credentials: Credentials | None) -> Identity: ...

    async def wait_current(self, identity: Identity, topic: str, *, publish: bool) -> None: ...

    def check_publish(self, identity: Identity, topic: str) -> Decision: ...

    def check_subscribe(self, identity: Identity, topic: str) -> Decision: ...

    def check_delivery(self, identity: Identity, topic: str) -> Decision: ...

    def may_read(self, identity: Identity, topic: str) -> bool:
        """Pure, unaudited: does `identity` still hold read access (paused counts as yes)?
        Grant-aware interest asks this whenever `view` changes."""
        ...

    async def get_nonce(self) -> NonceChallenge: ...

    async def sign_in(self, message: str, signature: bytes) -> Session: ...


class OpenAccess:
    """Anyone may do anything: used when no registry is configured. Logs loudly."""

    def __init__(self) -> None:
        self.view = AccessView()
        log.warning("gateway runs OPEN: no registry configured, every caller may publish and read")

    async def authenticate(self, credentials: Credentials | None) -> Identity:
        return ANONYMOUS

    async def wait_current(self, identity: Identity, topic: str, *, publish: bool) -> None:
        return

    def check_publish(self, identity: Identity, topic: str) -> Decision:
        return ALLOW

    def check_subscribe(self, identity: Identity, topic: str) -> Decision:
        return ALLOW

    def check_delivery(self, identity: Identity, topic: str) -> Decision:
        return ALLOW

    def may_read(self, identity: Identity, topic: str) -> bool:
        return True

    async def get_nonce(self) -> NonceChallenge:
        raise RegistryNotConfigured("gateway runs without a registry")

    async def sign_in(self, message: str, signature: bytes) -> Session:
        raise RegistryNotConfigured("gateway runs without a registry")
