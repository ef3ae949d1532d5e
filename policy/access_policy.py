"""The policy layer's one entry point for a gateway: sign-in, decisions, per-stream state, audit.

`AccessPolicy` is synchronous and does no network I/O; it reads the wall clock (injectable)
and appends to the audit log. The gateway's adapter feeds `view` from the ledger follower
and calls the methods below; it never decides anything itself.

Audit rule: one entry per publish decision and per subscribe decision, then one per state
change of a stream (allow -> pause/deny, pause -> resume), never one per delivered batch.

Sessions end streams: a stream lives no longer than the sign-in it was opened with. At the
identity's `expires_at` the next check of the stream audits a deny ("session expired") and
raises SessionInvalid ("session expired; sign in again", UNAUTHENTICATED); `next_recheck`
includes that moment, so the gateway's timer ends an idle stream on time. A client keeps
reading by signing in again and reopening the stream (durable groups resume where they were).

Streams are keyed by an object the caller owns for the stream's lifetime (the gateway's
per-stream identity); entries vanish when that object is garbage-collected, so no close
hook is needed and memory stays bounded by the number of live streams.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

from policy.audit import AuditLog
from policy.decision import (
    Allow,
    Decision,
    DecisionConfig,
    Deny,
    DenyReason,
    Pause,
    decide_publish,
    decide_read,
)
from policy.errors import SessionInvalid
from policy.grant_view import GrantView
from policy.identity import Challenge, Identity, SignInConfig, SignInVerifier
from policy.sessions import SessionTokens
from policy.stream_gate import StreamGate, StreamState


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessPolicyConfig:
    signin: SignInConfig
    decision: DecisionConfig = field(default_factory=DecisionConfig)


SESSION_EXPIRED_MESSAGE = "session expired; sign in again"


@dataclass(slots=True)
class _Stream:
    gate: StreamGate
    session_expires_at: float
    recheck_at: float | None = None


class AccessPolicy:
    def __init__(
        self,
        config: AccessPolicyConfig,
        *,
        view: GrantView,
        session_secret: bytes,
        audit: AuditLog | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.view = view
        self.audit = audit
        self._clock = clock
        self._verifier = SignInVerifier(config.signin)
        self._sessions = SessionTokens(session_secret)
        self._streams: weakref.WeakKeyDictionary[object, dict[str, _Stream]] = (
            weakref.WeakKeyDictionary()
        )

    # -- identity ------------------------------------------------------------------------

    def challenge(self) -> Challenge:
        return self._verifier.challenge(self._clock())

    def sign_in(self, message: str, signature: bytes) -> tuple[str, Identity]:
        """Verify a proof; return a session token and the identity it stands for."""
        identity = self._verifier.verify(message, signature, self._clock())
        return self._sessions.issue(identity), identity

    def verify_proof(self, message: str, signature: bytes) -> Identity:
        return self._verifier.verify(message, signature, self._clock())

    def verify_token(self, token: str) -> Identity:
        return self._sessions.check(token, self._clock())

    # -- decisions -----------------------------------------------------------------------

    def check_publish(self, identity: Identity, topic: str) -> Decision:
        identity.require_topic(topic)
        now = self._clock()
        if now >= identity.expires_at:
            raise SessionInvalid(SESSION_EXPIRED_MESSAGE)
        decision = decide_publish(self.view, identity.address, topic, now, self.config.decision)
        self._record(now, identity.address, topic, "publish", _audit_name(decision), decision)
        return decision

    def check_subscribe(self, stream: object, identity: Identity, topic: str) -> Decision:
        """Decide at stream open; the stream's state starts from this decision."""
        identity.require_topic(topic)
        return self._step_stream(stream, identity, topic, "subscribe")

    def may_read(self, address: str, topic: str) -> bool:
        """Pure query (no stream state, no audit): does `address` still hold read access?

        A paused view (stale chain) counts as yes: data for the reader is held, not refused.
        """
        decision = decide_read(self.view, address, topic, self._clock(), self.config.decision)
        return not isinstance(decision, Deny)

    def may_publish(self, address: str, topic: str) -> bool:
        """Pure query like `may_read`: would a publish by `address` not be denied now?"""
        decision = decide_publish(self.view, address, topic, self._clock(), self.config.decision)
        return not isinstance(decision, Deny)

    def check_delivery(self, stream: object, identity: Identity, topic: str) -> Decision:
        """Decide before a batch; audited only when the stream's state changes."""
        return self._step_stream(stream, identity, topic, "stream")

    def _step_stream(self, stream: object, identity: Identity, topic: str, action: str) -> Decision:
        """Decide a read for one stream, move its state, audit the change if there is one.

        Raises SessionInvalid once the stream's sign-in has expired (audited as a deny)."""
        now = self._clock()
        entry = self._stream(stream, topic, identity.expires_at)
        if now >= identity.expires_at:
            expired = Deny(
                DenyReason.SESSION_EXPIRED,
                f"sign-in of {identity.address} expired at {identity.expires_at:.0f}",
            )
            step = entry.gate.step(expired)
            if step.audit is not None:
                self._record(now, identity.address, topic, action, step.audit, expired)
            raise SessionInvalid(SESSION_EXPIRED_MESSAGE)
        decision = decide_read(self.view, identity.address, topic, now, self.config.decision)
        step = entry.gate.step(decision)
        entry.recheck_at = decision.recheck_at if isinstance(decision, Allow) else None
        if step.audit is not None:
            self._record(now, identity.address, topic, action, step.audit, decision)
        return decision

    def next_recheck(self, after: float | None = None) -> float | None:
        """The earliest time (later than `after`) an open stream's answer may change with no
        registry change: a grant's expiry, the view turning stale, or the stream's sign-in
        expiring (paused streams too)."""
        times = [
            t
            for topics in list(self._streams.values())
            for s in topics.values()
            for t in _recheck_times(s)
            if after is None or t > after
        ]
        return min(times) if times else None

    def open_streams(self) -> int:
        return sum(
            1
            for topics in list(self._streams.values())
            for s in topics.values()
            if s.gate.state is not StreamState.CLOSED
        )

    def _stream(self, stream: object, topic: str, session_expires_at: float) -> _Stream:
        topics = self._streams.setdefault(stream, {})
        entry = topics.get(topic)
        if entry is None:
            entry = topics[topic] = _Stream(StreamGate(), session_expires_at)
        return entry

    def _record(
        self, now: float, address: str, topic: str, action: str, name: str, decision: Decision
    ) -> None:
        if self.audit is None:
            return
        fresh = self.view.freshness
        self.audit.append(
            time=now,
            address=address,
            topic=topic,
            action=action,
            decision=name,
            reason=_reason(decision),
            block=None if fresh is None else fresh.synced_block,
        )


def _recheck_times(stream: _Stream) -> list[float]:
    state = stream.gate.state
    if state is StreamState.CLOSED:
        return []
    times = [stream.session_expires_at]
    if state is StreamState.OPEN and stream.recheck_at is not None:
        times.append(stream.recheck_at)
    return times


def _audit_name(decision: Decision) -> str:
    if isinstance(decision, Allow):
        return "allow"
    return "deny" if isinstance(decision, Deny) else "pause"


def _reason(decision: Decision) -> str:
    if isinstance(decision, Allow):
        return "allowed" if decision.until is None else f"allowed until {decision.until:.0f}"
    assert isinstance(decision, Deny | Pause)
    return f"{decision.reason}: {decision.detail}"
