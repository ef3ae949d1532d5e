"""`RegistryAccess`: the gateway's AccessControl backed by the on-chain registry (policy layer).

Adapter only: decisions, sign-in and the audit log are `policy.AccessPolicy`'s; the grant
view is fed by `gateway.grant_feed` from the ledger follower. This module maps between the
gateway's access types (gateway/access.py) and policy's, and keeps one timer so that a
grant's expiry or the view turning stale re-checks open streams with no traffic.

Mapping rules:
- no credentials -> CredentialsMissing (UNAUTHENTICATED); a proof or a session token is
  verified by policy (its errors name what failed).
- each `authenticate` returns a new `SignedInIdentity` (unique `serial`): it is the key of
  that stream's access state in policy, dropped when the stream drops the identity.
- publish: Pause and Deny are returned; the service raises AccessPaused (UNAVAILABLE: retry
  later) or AccessDenied.
- subscribe: Pause opens the stream with deliveries held (policy audits it as a pause);
  the first `check_delivery` holds them until the view is fresh again.
- a stream ends at its sign-in's expiry: the timer wakes it then, and `check_delivery`
  raises SessionInvalid ("session expired; sign in again", UNAUTHENTICATED).
- before a publish or subscribe is decided, `wait_current` catches the grant view up to
  the chain head when (and only when) the answer would be a Deny
  (`gateway.view_catch_up`): a grant mined before the call is never denied as absent.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from eth_utils import to_checksum_address

from gateway.access import (
    ALLOW,
    AccessView,
    Credentials,
    Decision,
    Deny,
    Identity,
    NonceChallenge,
    Pause,
    Session,
    UnknownTopic,
)
from gateway.view_catch_up import ViewCatchUp
from policy import decision as policy_decision
from policy.access_policy import AccessPolicy
from policy.errors import CredentialsMissing
from policy.identity import Identity as PolicyIdentity
from policy.identity import SignedStatement

log = logging.getLogger(__name__)

# Re-check a little after the exact moment, so the decision is already the new one.
RECHECK_MARGIN = 0.005


@dataclass(frozen=True, slots=True, weakref_slot=True)
class SignedInIdentity(Identity):
    """A proven caller; `serial` makes each stream's identity a distinct key."""

    expires_at: float = 0.0
    topics: frozenset[str] | None = None
    serial: int = 0
    # The signed sign-in when it names a region: forwarded as the reader's interest proof.
    proof: SignedStatement | None = field(default=None, compare=False, repr=False)
    # The policy layer's spelling (lower-case address), made once per sign-in rather than
    # once per delivery batch.
    _policy: PolicyIdentity | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        policy = PolicyIdentity(
            address=(self.address or "").lower(), expires_at=self.expires_at, topics=self.topics
        )
        object.__setattr__(self, "_policy", policy)

    def as_policy(self) -> PolicyIdentity:
        assert self._policy is not None  # set in __post_init__
        return self._policy


class RegistryAccess:
    """AccessControl over `AccessPolicy`; `run()` keeps the expiry/staleness timer."""

    def __init__(self, policy: AccessPolicy, clock: Callable[[], float] = time.time) -> None:
        self.policy = policy
        # Set by the wiring once the grant feed exists (it needs the feed's wait_synced);
        # None: decisions use the view as it is.
        self.catch_up: ViewCatchUp | None = None
        self.view = AccessView()
        self._clock = clock
        self._serials = itertools.count(1)
        self._reschedule = asyncio.Event()
        self._scheduled_at: float | None = None

    # -- identity -------------------------------------------------------------------------

    async def authenticate(self, credentials: Credentials | None) -> Identity:
        if credentials is None or (
            credentials.session_token is None and credentials.message is None
        ):
            raise CredentialsMissing(
                "this gateway checks the registry: sign in (GetNonce + SignIn) and send "
                "a session token or a signed proof"
            )
        if credentials.session_token is not None:
            proven = self.policy.verify_token(credentials.session_token)
        else:
            proven = self.policy.verify_proof(
                credentials.message or "", credentials.signature or b""
            )
        return SignedInIdentity(
            address=to_checksum_address(proven.address),
            expires_at=proven.expires_at,
            topics=proven.topics,
            serial=next(self._serials),
            proof=proven.proof,
        )

    async def get_nonce(self) -> NonceChallenge:
        c = self.policy.challenge()
        return NonceChallenge(c.nonce, c.domain, c.uri, c.chain_id, _utc(c.expires_at))

    async def sign_in(self, message: str, signature: bytes) -> Session:
        token, proven = self.policy.sign_in(message, signature)
        return Session(token, to_checksum_address(proven.address), _utc(proven.expires_at))

    # -- decisions ------------------------------------------------------------------------

    async def wait_current(self, identity: Identity, topic: str, *, publish: bool) -> None:
        """Before `check_publish`/`check_subscribe`: if the answer would be a Deny, wait
        (bounded) until the view covers the chain head seen now, so the decision that
        follows is not taken on a view older than what the caller saw mined."""
        if self.catch_up is None or not isinstance(identity, SignedInIdentity):
            return
        who = identity.as_policy()
        if who.topics is not None and topic not in who.topics:
            return  # out of scope: the check raises; the chain cannot change that
        allowed = self.policy.may_publish if publish else self.policy.may_read
        if not allowed(who.address, topic):
            await self.catch_up.wait()

    def check_publish(self, identity: Identity, topic: str) -> Decision:
        decision = self.policy.check_publish(_policy_identity(identity), topic)
        return self._to_gateway(decision)

    def check_subscribe(self, identity: Identity, topic: str) -> Decision:
        who = _policy_identity(identity)
        decision = self.policy.check_subscribe(identity, who, topic)
        if not isinstance(decision, policy_decision.Deny):
            self._schedule(who.expires_at)  # the stream ends with its sign-in
        if isinstance(decision, policy_decision.Pause):
            return ALLOW  # stream opens; deliveries are held by check_delivery
        return self._to_gateway(decision)

    def may_read(self, identity: Identity, topic: str) -> bool:
        if identity.address is None:
            return False
        if isinstance(identity, SignedInIdentity):
            return self.policy.may_read(identity.as_policy().address, topic)
        return self.policy.may_read(identity.address.lower(), topic)

    def check_delivery(self, identity: Identity, topic: str) -> Decision:
        decision = self.policy.check_delivery(identity, _policy_identity(identity), topic)
        return self._to_gateway(decision)

    # -- change signals -------------------------------------------------------------------

    def changed(self) -> None:
        """The grant view changed (or turned fresh): every open stream re-checks now."""
        self.view.changed()
        self._reschedule.set()

    async def run(self) -> None:
        """Wake open streams when a grant expires or the view turns stale. Runs until cancelled."""
        fired: float | None = None  # streams already woken for every time up to this
        while True:
            self._reschedule.clear()
            due = self.policy.next_recheck(after=fired)
            self._scheduled_at = due
            delay = None if due is None else max(0.0, due - self._clock()) + RECHECK_MARGIN
            try:
                async with asyncio.timeout(delay):
                    await self._reschedule.wait()
            except TimeoutError:
                fired = due
                self.view.changed()

    def _schedule(self, at: float) -> None:
        """Make the timer wake by `at` (it re-reads next_recheck when woken)."""
        if self._scheduled_at is None or at < self._scheduled_at:
            self._reschedule.set()

    def _to_gateway(self, decision: policy_decision.Decision) -> Decision:
        if isinstance(decision, policy_decision.Allow):
            self._schedule(decision.recheck_at)
            return ALLOW
        if isinstance(decision, policy_decision.Deny):
            if decision.reason is policy_decision.DenyReason.UNKNOWN_TOPIC:
                return UnknownTopic(f"{decision.reason}: {decision.detail}")
            return Deny(f"{decision.reason}: {decision.detail}")
        return Pause(f"{decision.reason}: {decision.detail}")


def _policy_identity(identity: Identity) -> PolicyIdentity:
    if not isinstance(identity, SignedInIdentity):
        raise CredentialsMissing("caller is not signed in")
    return identity.as_policy()


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC)
