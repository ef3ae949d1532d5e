from policy.decision import Allow, Deny, DenyReason, Pause, PauseReason
from policy.stream_gate import StreamGate, StreamState

ALLOW = Allow(until=None, recheck_at=1.0)
PAUSE = Pause(PauseReason.STALE_VIEW, "stale")
DENY = Deny(DenyReason.REVOKED, "revoked")


def run(*decisions: Allow | Deny | Pause) -> list[tuple[StreamState, str | None]]:
    gate = StreamGate()
    return [(s.state, s.audit) for s in map(gate.step, decisions)]


def test_only_state_changes_are_audited() -> None:
    assert run(ALLOW, ALLOW, PAUSE, PAUSE, ALLOW, ALLOW, DENY, ALLOW) == [
        (StreamState.OPEN, "allow"),
        (StreamState.OPEN, None),
        (StreamState.PAUSED, "pause"),
        (StreamState.PAUSED, None),
        (StreamState.OPEN, "resume"),
        (StreamState.OPEN, None),
        (StreamState.CLOSED, "deny"),
        (StreamState.CLOSED, None),
    ]


def test_paused_from_the_start_then_denied() -> None:
    assert run(PAUSE, DENY, PAUSE) == [
        (StreamState.PAUSED, "pause"),
        (StreamState.CLOSED, "deny"),
        (StreamState.CLOSED, None),
    ]


def test_denied_at_once() -> None:
    assert run(DENY) == [(StreamState.CLOSED, "deny")]
