from pathlib import Path

import pytest

from policy.audit import AuditLog, audit_path, read_entries, verify_file
from policy.errors import AuditLogCorrupt

A = "0x" + "aa" * 20
B = "0x" + "bb" * 20


def write(log: AuditLog, address: str, topic: str, decision: str) -> None:
    log.append(
        time=1.0,
        address=address,
        topic=topic,
        action="subscribe",
        decision=decision,
        reason="why",
        block=7,
    )


def test_append_reopen_continue_and_filter(tmp_path: Path) -> None:
    path = audit_path(tmp_path / "data")
    with AuditLog.open(path) as log:
        write(log, A, "t", "allow")
        write(log, B, "u", "deny")
    with AuditLog.open(path) as log:
        assert log.last_seq == 2
        write(log, A.upper().replace("0X", "0x"), "u", "pause")
    result = verify_file(path)
    assert result.ok and result.entries == 3
    assert [e.seq for e in read_entries(path, address=A)] == [1, 3]
    assert [e.seq for e in read_entries(path, topic="u")] == [2, 3]


def test_edited_entry_is_detected_and_blocks_appending(tmp_path: Path) -> None:
    path = audit_path(tmp_path)
    with AuditLog.open(path) as log:
        for decision in ("allow", "pause", "resume", "deny"):
            write(log, A, "t", decision)
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace('"pause"', '"allow"')
    path.write_text("\n".join(lines) + "\n")
    result = verify_file(path)
    assert not result.ok and result.broken_seq == 2
    with pytest.raises(AuditLogCorrupt, match="refusing"):
        AuditLog.open(path)


def test_closed_log_refuses_appends(tmp_path: Path) -> None:
    log = AuditLog.open(audit_path(tmp_path))
    log.close()
    log.close()
    with pytest.raises(AuditLogCorrupt, match="closed"):
        write(log, A, "t", "allow")


def test_missing_log_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(AuditLogCorrupt, match="no audit log"):
        verify_file(audit_path(tmp_path))
