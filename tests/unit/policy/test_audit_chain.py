import json

from hypothesis import given
from hypothesis import strategies as st

from policy.audit_chain import GENESIS, AuditEntry, next_entry, verify_lines


def chain(n: int) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    prev = GENESIS
    for seq in range(1, n + 1):
        entry = next_entry(
            prev,
            seq,
            time=float(seq),
            address="0x" + "ab" * 20,
            topic=f"t{seq % 3}",
            action="subscribe",
            decision=["allow", "deny", "pause", "resume"][seq % 4],
            reason="r",
            block=seq,
        )
        entries.append(entry)
        prev = entry.hash
    return entries


def test_intact_chain_verifies() -> None:
    entries = chain(5)
    result = verify_lines(e.to_json() for e in entries)
    assert result.ok and result.entries == 5 and result.last_hash == entries[-1].hash
    assert verify_lines([]).ok


@given(n=st.integers(min_value=1, max_value=8), data=st.data())
def test_editing_any_field_of_any_entry_is_named(n: int, data: st.DataObject) -> None:
    lines = [json.loads(e.to_json()) for e in chain(n)]
    victim = data.draw(st.integers(min_value=0, max_value=n - 1))
    key = data.draw(st.sampled_from(["time", "address", "topic", "decision", "reason", "block"]))
    lines[victim][key] = "tampered"
    result = verify_lines(json.dumps(d) for d in lines)
    assert not result.ok
    assert result.broken_seq == victim + 1
    assert result.entries == victim


def test_removed_and_reordered_entries_are_detected() -> None:
    lines = [e.to_json() for e in chain(4)]
    removed = verify_lines(lines[:1] + lines[2:])
    assert removed.broken_seq == 3 and "seq" in str(removed.problem)
    swapped = verify_lines([lines[0], lines[2], lines[1], lines[3]])
    assert swapped.broken_seq == 3


def test_rehashed_edit_breaks_the_next_link() -> None:
    entries = chain(3)
    fields = json.loads(entries[1].to_json())
    fields["decision"] = "allow" if entries[1].decision != "allow" else "deny"
    rebuilt = next_entry(
        fields["prev_hash"],
        2,
        **{k: fields[k] for k in ("time", "address", "topic", "action", "decision", "reason")},
        block=fields["block"],
    )
    result = verify_lines([entries[0].to_json(), rebuilt.to_json(), entries[2].to_json()])
    assert result.broken_seq == 3 and "prev_hash" in str(result.problem)


def test_garbage_line_is_named_by_line_number() -> None:
    lines = [e.to_json() for e in chain(2)] + ["{not json"]
    result = verify_lines(lines)
    assert result.broken_seq == 3 and result.entries == 2


@given(n=st.integers(min_value=1, max_value=10), data=st.data())
def test_an_anchor_catches_any_cut_and_any_recomputed_suffix(n: int, data: st.DataObject) -> None:
    entries = chain(n)
    lines = [e.to_json() for e in entries]
    head = {n: entries[-1].hash}
    assert verify_lines(lines, head).ok
    keep = data.draw(st.integers(min_value=0, max_value=n - 1), label="keep")
    cut = verify_lines(lines[:keep], head)
    assert not cut.ok and cut.entries == keep and cut.broken_seq == keep + 1
    assert ("emptied" if keep == 0 else "tail cut") in str(cut.problem)
    first = data.draw(st.integers(min_value=1, max_value=n), label="first")
    rebuilt = [e.to_json() for e in entries[: first - 1]]
    prev = GENESIS if first == 1 else entries[first - 2].hash
    for e in entries[first - 1 :]:
        redo = next_entry(
            prev,
            e.seq,
            time=e.time + (1.0 if e.seq == first else 0.0),
            address=e.address,
            topic=e.topic,
            action=e.action,
            decision=e.decision,
            reason=e.reason,
            block=e.block,
        )
        rebuilt.append(redo.to_json())
        prev = redo.hash
    assert verify_lines(rebuilt).ok  # the chain alone cannot tell
    broken = verify_lines(rebuilt, head)
    assert not broken.ok and broken.broken_seq == n
    assert "signed head" in str(broken.problem)
    assert not verify_lines(lines, {0: "1" * 64}).ok
