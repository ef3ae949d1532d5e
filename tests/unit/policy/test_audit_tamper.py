"""Every way of tampering with an audit log named in issue 10 is detected, at rest and live."""

import json
import logging
import os
from pathlib import Path

import grpc
import nacl.signing
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.status import status_for
from policy.access_policy import AccessPolicy, AccessPolicyConfig
from policy.audit import (
    AuditLog,
    audit_path,
    check_log,
    head_path,
    key_path,
    load_key,
    public_key_of,
    read_head,
)
from policy.audit_chain import GENESIS, next_entry
from policy.audit_head import head_problem, sign_head
from policy.decision import Allow
from policy.errors import AuditLogCorrupt, AuditTampered
from policy.grant_view import Checkpoint, GrantView, TopicRegistered
from policy.identity import Identity, SignInConfig
from policy.sessions import new_secret

A = "0x" + "aa" * 20


def write(log: AuditLog, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        log.append(
            time=float(i),
            address=A,
            topic=f"t{i % 3}",
            action="subscribe",
            decision=("allow", "deny", "pause", "resume")[i % 4],
            reason=f"why {i}",
            block=i,
        )


def make_log(tmp_path: Path, n: int = 5) -> Path:
    path = audit_path(tmp_path)
    with AuditLog.open(path) as log:
        write(log, n)
    return path


def recompute_from(path: Path, first: int) -> None:
    """Edit entry `first` (1-based) and recompute every hash from there on, as an attacker
    without the key would: the chain verifies on its own."""
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    prev = GENESIS if first == 1 else rows[first - 2]["hash"]
    out = [json.dumps(r, sort_keys=True, separators=(",", ":")) for r in rows[: first - 1]]
    for row in rows[first - 1 :]:
        if row["seq"] == first:
            row["decision"] = "allow" if row["decision"] != "allow" else "deny"
        fields = {k: row[k] for k in ("time", "address", "topic", "action", "decision", "reason")}
        entry = next_entry(prev, row["seq"], **fields, block=row["block"])
        out.append(entry.to_json())
        prev = entry.hash
    path.write_text("\n".join(out) + "\n")


def problem(path: Path, **kwargs: object) -> str:
    check = check_log(path, **kwargs)  # type: ignore[arg-type]
    assert not check.ok
    return str(check.result.problem)


def test_untouched_log_verifies_against_its_signed_head(tmp_path: Path) -> None:
    path = make_log(tmp_path)
    check = check_log(path)
    assert check.ok and check.result.entries == 5
    assert check.head is not None and check.head.seq == 5
    assert check.head.hash == check.result.last_hash
    assert oct(key_path(path).stat().st_mode & 0o777) == "0o600"
    with AuditLog.open(path) as log:  # reopens and continues
        assert log.last_seq == 5
        write(log, 2, start=5)
    assert check_log(path).result.entries == 7


def test_empty_new_log_verifies(tmp_path: Path) -> None:
    AuditLog.open(audit_path(tmp_path)).close()
    check = check_log(audit_path(tmp_path))
    assert check.ok and check.result.entries == 0 and check.head is not None


@pytest.mark.parametrize("keep", [0, 1, 4])
def test_cut_tail_or_emptied_log_is_detected(tmp_path: Path, keep: int) -> None:
    path = make_log(tmp_path)
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:keep]))
    text = problem(path)
    assert f"log ends at entry {keep} but its head names entry 5" in text
    assert ("emptied" if keep == 0 else "tail cut") in text
    with pytest.raises(AuditLogCorrupt, match="refusing"):
        AuditLog.open(path)


@pytest.mark.parametrize("first", [1, 3, 5])
def test_recomputed_hashes_from_one_entry_on_are_detected(tmp_path: Path, first: int) -> None:
    path = make_log(tmp_path)
    recompute_from(path, first)
    assert "differs from its signed head" in problem(path)
    with pytest.raises(AuditLogCorrupt, match="refusing"):
        AuditLog.open(path)


def test_recomputed_log_with_a_head_forged_without_the_key_is_detected(tmp_path: Path) -> None:
    path = make_log(tmp_path)
    recompute_from(path, 2)
    last = json.loads(path.read_text().splitlines()[-1])
    stranger = nacl.signing.SigningKey.generate()
    head_path(path).write_text(sign_head(stranger, 5, last["hash"], 9.0).to_json())
    assert "signed by key" in problem(path)
    # the same head claiming the real key's name: the signature fails
    real = public_key_of(key_path(path))
    forged = sign_head(stranger, 5, last["hash"], 9.0)
    head_path(path).write_text(forged.to_json().replace(forged.key, real))
    assert "signature does not verify" in problem(path)


def test_a_rewrite_resigned_with_the_key_is_caught_only_by_an_external_head(
    tmp_path: Path,
) -> None:
    path = make_log(tmp_path)
    kept = read_head(head_path(path))  # what the operator's log collector saw
    assert kept is not None
    recompute_from(path, 2)
    last = json.loads(path.read_text().splitlines()[-1])
    head_path(path).write_text(sign_head(load_key(key_path(path)), 5, last["hash"], 9.0).to_json())
    assert check_log(path).ok  # the key holder can rewrite history...
    text = problem(path, anchors={kept.seq: kept.hash})  # ...an external head shows it
    assert "signed head for entry 5 differs from the given head" in text
    assert "hash differs" in problem(path, anchors={3: kept.hash, 1: "0" * 64})


def test_removed_or_garbled_head_and_missing_key_are_detected(tmp_path: Path) -> None:
    path = make_log(tmp_path)
    saved = head_path(path).read_text()
    head_path(path).unlink()
    assert "no signed head" in problem(path)
    with pytest.raises(AuditLogCorrupt, match="no signed head"):
        AuditLog.open(path)
    head_path(path).write_text("{garbage")
    assert "malformed" in problem(path)
    head_path(path).write_text(saved)
    key_path(path).rename(tmp_path / "elsewhere.key")
    assert "pass the public key" in problem(path)
    with pytest.raises(AuditLogCorrupt, match=r"key .* is missing"):
        AuditLog.open(path)
    pinned = public_key_of(tmp_path / "elsewhere.key")
    assert check_log(path, public_key=pinned).ok
    other = bytes(nacl.signing.SigningKey.generate().verify_key).hex()
    assert "not the audit key" in problem(path, public_key=other)


def test_deleted_log_with_its_head_left_is_refused(tmp_path: Path) -> None:
    path = make_log(tmp_path)
    path.unlink()
    with pytest.raises(AuditLogCorrupt, match="missing"):
        AuditLog.open(path)


def test_log_from_before_signed_heads_is_adopted_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = make_log(tmp_path)
    head_path(path).unlink()
    key_path(path).unlink()
    with caplog.at_level(logging.WARNING, logger="policy.audit"), AuditLog.open(path) as log:
        write(log, 1, start=5)
    assert any("no signed head" in r.message for r in caplog.records)
    assert check_log(path).ok and check_log(path).result.entries == 6


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: data.rfind(b"\n", 0, len(data) - 1) + 1])


def _empty(path: Path) -> None:
    with path.open("r+b") as handle:
        handle.truncate(0)


def _replace(path: Path) -> None:
    copy = path.with_suffix(".copy")
    copy.write_bytes(path.read_bytes())
    os.replace(copy, path)


def _rewrite_last_same_size(path: Path) -> None:
    data = path.read_bytes()
    flipped = data.replace(b'"why 4"', b'"why 9"')
    assert flipped != data and len(flipped) == len(data)
    with path.open("r+b") as handle:
        handle.write(flipped)


def _append_foreign(path: Path) -> None:
    with path.open("ab") as handle:
        handle.write(b'{"seq": 99}\n')


def _remove(path: Path) -> None:
    path.unlink()


@pytest.mark.parametrize(
    "edit, why",
    [
        (_truncate, "size"),
        (_empty, "size 0 bytes"),
        (_replace, "file replaced"),
        (_rewrite_last_same_size, "last entry rewritten"),
        (_append_foreign, "size"),
        (_remove, "file removed"),
    ],
)
def test_running_log_notices_an_edit_and_fails_closed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, edit: object, why: str
) -> None:
    path = audit_path(tmp_path)
    log = AuditLog.open(path)
    write(log, 5)
    edit(path)  # type: ignore[operator]
    size_after_edit = path.stat().st_size if path.exists() else None
    with caplog.at_level(logging.ERROR, logger="policy.audit"):
        with pytest.raises(AuditTampered, match=why):
            write(log, 1, start=5)
        with pytest.raises(AuditTampered, match=why):  # and every later append
            write(log, 1, start=6)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "changed under the gateway" in errors[0].getMessage()
    assert log.tampered is not None and why.split()[0] in log.tampered
    assert (path.stat().st_size if path.exists() else None) == size_after_edit  # nothing appended
    log.close()


class Stream:
    """A per-stream key (weak-referenceable), as the gateway's stream identity is."""


def test_tampering_maps_to_unavailable_and_access_fails_closed(tmp_path: Path) -> None:
    assert status_for(AuditTampered("audit log unavailable")) is grpc.StatusCode.UNAVAILABLE
    view = GrantView()
    view.apply(TopicRegistered(topic="t", owner=A, block=1))
    view.checkpoint(Checkpoint(block=1, block_timestamp=0, observed_at=1.0))
    config = AccessPolicyConfig(
        signin=SignInConfig(domain="gw:1", uri="meshgate://gw:1", chain_id=1337)
    )
    audit = AuditLog.open(audit_path(tmp_path))
    policy = AccessPolicy(
        config, view=view, session_secret=new_secret(), audit=audit, clock=lambda: 2.0
    )
    owner = Identity(address=A, expires_at=3600.0, topics=None)
    assert isinstance(policy.check_publish(owner, "t"), Allow)
    _empty(audit_path(tmp_path))
    with pytest.raises(AuditTampered):  # the decision is not handed out unaudited
        policy.check_publish(owner, "t")
    with pytest.raises(AuditTampered):
        policy.check_subscribe(Stream(), owner, "t")
    audit.close()


def test_head_problem_on_a_garbled_signature() -> None:
    key = nacl.signing.SigningKey.generate()
    head = sign_head(key, 3, "ab" * 32, 1.5)
    trusted = head.key
    assert head_problem(head, trusted) is None
    flipped = head.sig[:-2] + f"{int(head.sig[-2:], 16) ^ 1:02x}"
    for sig in ("zz", "", flipped):
        bad = type(head)(seq=head.seq, hash=head.hash, time=head.time, key=head.key, sig=sig)
        assert head_problem(bad, trusted) is not None
    moved = type(head)(seq=4, hash=head.hash, time=head.time, key=head.key, sig=head.sig)
    assert head_problem(moved, trusted) is not None


TAMPERINGS = st.sampled_from(["cut", "empty", "recompute", "edit", "drop", "swap", "none"])


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(n=st.integers(min_value=1, max_value=12), how=TAMPERINGS, data=st.data())
def test_property_any_tampering_fails_and_only_an_untouched_log_verifies(
    tmp_path_factory: pytest.TempPathFactory, n: int, how: str, data: st.DataObject
) -> None:
    path = audit_path(tmp_path_factory.mktemp("audit"))
    with AuditLog.open(path) as log:
        write(log, n)
    lines = path.read_text().splitlines(keepends=True)
    k = data.draw(st.integers(min_value=1, max_value=n), label="entry")
    if how == "cut":
        path.write_text("".join(lines[: k - 1]))
    elif how == "empty":
        path.write_text("")
    elif how == "recompute":
        recompute_from(path, k)
    elif how == "edit":
        row = json.loads(lines[k - 1])
        row["reason"] = row["reason"] + "!"
        lines[k - 1] = json.dumps(row) + "\n"
        path.write_text("".join(lines))
    elif how == "drop":
        path.write_text("".join(lines[: k - 1] + lines[k:]))
    elif how == "swap" and n >= 2:
        j = k - 2 if k == n else k
        lines[k - 1], lines[j] = lines[j], lines[k - 1]
        path.write_text("".join(lines))
    else:
        how = "none"
    check = check_log(path)
    assert check.ok is (how == "none"), (how, k, check.result.problem)


def test_signed_head_is_logged_at_open_and_close_for_an_external_collector(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="policy.audit"):
        path = make_log(tmp_path, n=3)
    heads = [r.getMessage() for r in caplog.records if r.getMessage().startswith("audit head")]
    assert len(heads) == 2 and heads[0].startswith("audit head seq=0 ")
    seq, head_hash = heads[-1].split()[2:4]
    assert seq == "seq=3"
    kept = head_hash.removeprefix("hash=")
    assert check_log(path, anchors={3: kept}).ok
