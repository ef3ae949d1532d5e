"""The append-only audit log file (JSON lines) in a gateway's data dir.

Resource handling: `AuditLog.open` reads the file once to find the tail (and refuses to
append to a broken chain: AuditLogCorrupt); `append` writes one line and flushes it before
returning, so an entry is on disk before the decision it records takes effect; `close`
is idempotent. One writer per file (the gateway); readers (`read_entries`, `verify_file`)
may run at any time and see whole lines only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from policy.audit_chain import (
    GENESIS,
    AuditEntry,
    VerifyResult,
    next_entry,
    parse_line,
    verify_lines,
)
from policy.errors import AuditLogCorrupt

AUDIT_FILE_NAME = "audit.jsonl"


def audit_path(data_dir: Path) -> Path:
    return data_dir / AUDIT_FILE_NAME


class AuditLog:
    def __init__(self, path: Path, handle: IO[str], seq: int, last_hash: str, fsync: bool):
        self.path = path
        self._handle: IO[str] | None = handle
        self._seq = seq
        self._last_hash = last_hash
        self._fsync = fsync

    @classmethod
    def open(cls, path: Path, *, fsync: bool = False) -> AuditLog:
        """Open (creating) the log at `path`; raise AuditLogCorrupt if it does not verify."""
        path.parent.mkdir(parents=True, exist_ok=True)
        result = verify_file(path) if path.exists() else VerifyResult(0, GENESIS, None, None)
        if not result.ok:
            raise AuditLogCorrupt(f"{path}: {result.problem}; refusing to append")
        handle = path.open("a", encoding="utf-8")
        return cls(path, handle, result.entries, result.last_hash, fsync)

    @property
    def last_seq(self) -> int:
        return self._seq

    def append(
        self,
        *,
        time: float,
        address: str,
        topic: str,
        action: str,
        decision: str,
        reason: str,
        block: int | None,
    ) -> AuditEntry:
        if self._handle is None:
            raise AuditLogCorrupt(f"{self.path}: audit log is closed")
        entry = next_entry(
            self._last_hash,
            self._seq + 1,
            time=time,
            address=address,
            topic=topic,
            action=action,
            decision=decision,
            reason=reason,
            block=block,
        )
        self._handle.write(entry.to_json() + "\n")
        self._handle.flush()
        if self._fsync:
            os.fsync(self._handle.fileno())
        self._seq = entry.seq
        self._last_hash = entry.hash
        return entry

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _lines(path: Path) -> Iterator[str]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.endswith("\n"):
                yield line.rstrip("\n")
            elif line:  # a torn last line: show it so verify names it
                yield line


def verify_file(path: Path) -> VerifyResult:
    if not path.exists():
        raise AuditLogCorrupt(f"no audit log at {path}")
    return verify_lines(_lines(path))


def read_entries(
    path: Path, *, address: str | None = None, topic: str | None = None
) -> Iterator[AuditEntry]:
    """Entries in order, optionally only one address's (case-insensitive) or topic's."""
    if not path.exists():
        raise AuditLogCorrupt(f"no audit log at {path}")
    wanted = None if address is None else address.lower()
    for number, line in enumerate(_lines(path), start=1):
        try:
            entry = parse_line(line)
        except ValueError as exc:
            raise AuditLogCorrupt(f"{path}: line {number}: {exc}") from exc
        if wanted is not None and entry.address.lower() != wanted:
            continue
        if topic is not None and entry.topic != topic:
            continue
        yield entry
