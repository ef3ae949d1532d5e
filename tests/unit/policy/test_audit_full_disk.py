"""A full disk is not tampering: a refused audit write leaves the log as it was (real tmpfs).

Mounting needs root (CI and this machine run as root); elsewhere the test skips and says so.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from policy.audit import AuditLog, audit_path, verify_file
from policy.errors import AuditUnwritable


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str = "64k") -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def entry(log: AuditLog, n: int) -> None:
    log.append(
        time=1000.0 + n,
        address="0x" + "ab" * 20,
        topic="orders",
        action="publish",
        decision="allow",
        reason="x" * 200,
        block=n,
    )


def test_a_full_disk_refuses_the_entry_and_the_log_recovers(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "disk") as disk:
        path = audit_path(disk)
        log = AuditLog.open(path)
        try:
            entry(log, 1)
            filler = disk / "filler"
            with contextlib.suppress(OSError), filler.open("wb", buffering=0) as f:
                while True:  # fill the disk to the last byte
                    f.write(b"\0" * 512)
            size = path.stat().st_size
            refused = 0
            for n in range(2, 40):
                try:
                    entry(log, n)
                except AuditUnwritable:
                    refused += 1
            assert refused > 0, "the disk never filled"
            assert log.tampered is None  # a torn write is not an edit
            filler.unlink()  # space returns: the next entry is written
            entry(log, 99)
            assert path.stat().st_size > size
        finally:
            log.close()
        result = verify_file(path)
        assert result.ok, result.problem
