"""Per-stream access state, sans I/O: which decisions change a stream and must be audited.

A subscription is re-decided on every registry change, at its grant's expiry and when the
view turns stale or fresh again. Most re-decisions change nothing and must not flood the
audit log; `StreamGate.step` returns the audit decision only on a state change.

Transition table (state, decision -> new state, audited as):

    START   + Allow -> OPEN    "allow"      OPEN    + Pause -> PAUSED  "pause"
    START   + Pause -> PAUSED  "pause"      OPEN    + Deny  -> CLOSED  "deny"
    START   + Deny  -> CLOSED  "deny"       PAUSED  + Allow -> OPEN    "resume"
    OPEN    + Allow -> OPEN    -            PAUSED  + Deny  -> CLOSED  "deny"
    PAUSED  + Pause -> PAUSED  -            CLOSED  + any   -> CLOSED  -   (terminal)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from policy.decision import Allow, Decision, Deny, Pause


class StreamState(enum.Enum):
    START = "start"
    OPEN = "open"
    PAUSED = "paused"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class StreamStep:
    state: StreamState
    audit: str | None  # "allow" | "deny" | "pause" | "resume", or None if nothing changed
    decision: Decision


class StreamGate:
    def __init__(self) -> None:
        self.state = StreamState.START

    def step(self, decision: Decision) -> StreamStep:
        old = self.state
        if old is StreamState.CLOSED:
            return StreamStep(old, None, decision)
        audit: str | None
        if isinstance(decision, Deny):
            new, audit = StreamState.CLOSED, "deny"
        elif isinstance(decision, Pause):
            new = StreamState.PAUSED
            audit = None if old is StreamState.PAUSED else "pause"
        else:
            assert isinstance(decision, Allow)
            new = StreamState.OPEN
            audit = {StreamState.START: "allow", StreamState.PAUSED: "resume"}.get(old)
        self.state = new
        return StreamStep(new, audit, decision)
