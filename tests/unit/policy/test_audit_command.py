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
