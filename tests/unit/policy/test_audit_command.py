import json
from pathlib import Path

import pytest

from meshgate.cli import main
from policy.audit import AuditLog, audit_path

A = "0x" + "aa" * 20


def make_log(data: Path) -> None:
    with AuditLog.open(audit_path(data)) as log:
        for topic, decision in (("t", "allow"), ("u", "deny"), ("t", "pause")):
            log.append(
                time=1.0,
                address=A,
                topic=topic,
                action="subscribe",
                decision=decision,
                reason="because",
                block=3,
            )


def test_verify_ok_then_tampered(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_log(tmp_path)
    assert main(["audit", "verify", "--data", str(tmp_path)]) == 0
    assert "3 entries verified" in capsys.readouterr().out
    path = audit_path(tmp_path)
    path.write_text(path.read_text().replace('"because"', '"innocent"', 1))
    assert main(["audit", "verify", "--data", str(tmp_path)]) == 1
    assert "broken at entry 1" in capsys.readouterr().err


def test_show_filters_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_log(tmp_path)
    assert main(["audit", "show", "--data", str(tmp_path), "--topic", "t", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["decision"] for r in rows] == ["allow", "pause"]
    assert main(["audit", "show", "--data", str(tmp_path), "--address", A.upper()[2:]]) == 0
    assert capsys.readouterr().out == ""
    assert main(["audit", "show", "--data", str(tmp_path), "--address", A]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_missing_log_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "verify", "--data", str(tmp_path)]) == 1
    assert capsys.readouterr().err.startswith("meshgate: no audit log")


def test_verify_names_the_signed_head_and_checks_external_heads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_log(tmp_path)
    head = json.loads((tmp_path / "audit.head").read_text())
    assert main(["audit", "verify", "--data", str(tmp_path)]) == 0
    assert "signed head at entry 3 (key in audit.key)" in capsys.readouterr().out
    anchor = f"3:{head['hash']}"
    assert main(["audit", "verify", "--data", str(tmp_path), "--head", anchor]) == 0
    assert "1 external head(s) matched" in capsys.readouterr().out
    assert main(["audit", "key", "--data", str(tmp_path)]) == 0
    key = capsys.readouterr().out.strip()
    assert key == head["key"]
    pinned = ["audit", "verify", "--data", str(tmp_path), "--public-key", key]
    assert main(pinned) == 0
    assert "(pinned key)" in capsys.readouterr().out
    assert main([*pinned[:-1], "ab" * 32]) == 1
    assert "not the audit key" in capsys.readouterr().err
    wrong = f"2:{head['hash']}"
    assert main(["audit", "verify", "--data", str(tmp_path), "--head", wrong]) == 1
    assert "entry 2: hash differs" in capsys.readouterr().err
    assert main(["audit", "verify", "--data", str(tmp_path), "--head", "3:xyz"]) == 1
    assert "not SEQ:HASH" in capsys.readouterr().err


def test_verify_reports_a_cut_tail_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_log(tmp_path)
    path = audit_path(tmp_path)
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:2]))
    assert main(["audit", "verify", "--data", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "log ends at entry 2 but its head names entry 3: tail cut" in err
