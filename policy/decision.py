"""Pure access decisions over a `GrantView`: Allow, Deny(reason) or Pause(reason).

Rules, applied in this order (the first that matches wins):

1. the view is stale (never synced, or the chain node unheard for longer than the bound)
   -> Pause(STALE_VIEW). Fail closed: nothing is allowed on old facts.
2. the topic is not registered on chain                      -> Deny(UNKNOWN_TOPIC)
3. the address owns the topic                                  -> Allow (no expiry): the
   owner always reads and publishes its own topic, as the contract's canRead/canPublish say
4. read:    grant revoked -> Deny(REVOKED); no grant -> Deny(NO_GRANT);
            now >= expiry -> Deny(EXPIRED); otherwise Allow(until=expiry)
   publish: address is an authorized publisher -> Allow; otherwise Deny(NOT_PUBLISHER)

Every Deny's detail names the block the view had synced ("... at block 123"), so a reader who
saw its grant mined in a later block knows the gateway's view was behind, not its grant absent.

Expiry is by wall clock (`now`, unix seconds), not block time: a grant ends at its time
whether or not a block is mined. `Allow.recheck_at` tells the shell when the answer can
change without any registry change (the expiry, or the moment the view turns stale).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from policy.grant_view import GrantView

DEFAULT_STALENESS_BOUND = 30.0


class DenyReason(enum.StrEnum):
    NO_GRANT = "no grant"
    EXPIRED = "expired"
    REVOKED = "revoked"
    UNKNOWN_TOPIC = "unknown topic"
    NOT_PUBLISHER = "not a publisher"
    SESSION_EXPIRED = "session expired"  # set by AccessPolicy for a stream, never by decide_*


class PauseReason(enum.StrEnum):
    STALE_VIEW = "stale view"


@dataclass(frozen=True, slots=True)
class Allow:
    until: float | None  # when the grant ends; None = not time-limited
    recheck_at: float  # earliest time this answer may change with no registry change


@dataclass(frozen=True, slots=True)
class Deny:
    reason: DenyReason
    detail: str


@dataclass(frozen=True, slots=True)
class Pause:
    reason: PauseReason
    detail: str


Decision = Allow | Deny | Pause


@dataclass(frozen=True, slots=True, kw_only=True)
class DecisionConfig:
    """`staleness_bound`: seconds without hearing from the chain node before we fail closed."""

    staleness_bound: float = DEFAULT_STALENESS_BOUND

    def __post_init__(self) -> None:
        if not self.staleness_bound > 0:
            raise ValueError("staleness_bound must be positive")


DEFAULT_DECISION_CONFIG = DecisionConfig()


def decide_read(
    view: GrantView,
    address: str,
    topic: str,
    now: float,
    config: DecisionConfig = DEFAULT_DECISION_CONFIG,
) -> Decision:
    """May `address` read `topic` at wall time `now`?"""
    gate = _common(view, address, topic, now, config)
    if not isinstance(gate, float):
        return gate
    stale_at = gate
    grant = view.grant(topic, address)
    at = _at_block(view)
    if grant is None:
        return Deny(DenyReason.NO_GRANT, f"no read grant for {address} on {topic!r}{at}")
    if grant.revoked:
        return Deny(
            DenyReason.REVOKED,
            f"read grant of {address} on {topic!r} revoked in block {grant.block}{at}",
        )
    if grant.expires_at is not None and now >= grant.expires_at:
        return Deny(
            DenyReason.EXPIRED,
            f"read grant of {address} on {topic!r} expired at {grant.expires_at}{at}",
        )
    if grant.expires_at is None:
        return Allow(until=None, recheck_at=stale_at)
    return Allow(until=float(grant.expires_at), recheck_at=min(stale_at, grant.expires_at))


def decide_publish(
    view: GrantView,
    address: str,
    topic: str,
    now: float,
    config: DecisionConfig = DEFAULT_DECISION_CONFIG,
) -> Decision:
    """May `address` publish to `topic` (owner or authorized publisher)?"""
    gate = _common(view, address, topic, now, config)
    if not isinstance(gate, float):
        return gate
    if view.is_publisher(topic, address):
        return Allow(until=None, recheck_at=gate)
    return Deny(
        DenyReason.NOT_PUBLISHER, f"{address} may not publish to {topic!r}{_at_block(view)}"
    )


def _common(
    view: GrantView, address: str, topic: str, now: float, config: DecisionConfig
) -> Decision | float:
    """Rules 1-3; returns the decision, or (to continue) the time the view turns stale."""
    fresh = view.freshness
    if fresh is None:
        return Pause(PauseReason.STALE_VIEW, "grant view not synced with the chain yet")
    age = fresh.age(now)
    if age > config.staleness_bound:
        return Pause(
            PauseReason.STALE_VIEW,
            f"chain node not heard for {age:.1f}s (bound {config.staleness_bound:g}s)",
        )
    stale_at = fresh.observed_at + config.staleness_bound
    owner = view.owner(topic)
    if owner is None:
        return Deny(
            DenyReason.UNKNOWN_TOPIC,
            f"topic {topic!r} is not registered on chain{_at_block(view)}",
        )
    if owner == address.lower():
        return Allow(until=None, recheck_at=stale_at)
    return stale_at


def _at_block(view: GrantView) -> str:
    """' at block N': the block the view had synced when it decided (for Deny details)."""
    fresh = view.freshness
    return "" if fresh is None else f" at block {fresh.synced_block}"
