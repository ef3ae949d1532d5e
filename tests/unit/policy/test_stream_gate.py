import itertools

from hypothesis import given
from hypothesis import strategies as st

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


decisions = st.lists(st.sampled_from([ALLOW, PAUSE, DENY]), max_size=30)


@given(seq=decisions)
def test_audit_trail_is_a_valid_state_sequence(seq: list[Allow | Deny | Pause]) -> None:
    audits = [audit for _, audit in run(*seq) if audit is not None]
    # at most one deny, and it is last; allow only first; resume only right after a pause
    assert audits.count("deny") <= 1 and ("deny" not in audits or audits[-1] == "deny")
    assert "allow" not in audits[1:]
    for before, after in itertools.pairwise(audits):
        assert before != after
        if after == "resume":
            assert before == "pause"
        if after == "pause":
            assert before in ("allow", "resume")
