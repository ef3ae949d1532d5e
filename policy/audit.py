"""The append-only audit log file (JSON lines) in a gateway's data dir, and its signed head.

Files (all in the data dir): `audit.jsonl` (the hash chain, `policy.audit_chain`),
`audit.head` (the signed head after the last append, `policy.audit_head`, rewritten in
place) and `audit.key` (the Ed25519 seed that signs heads, created 0600 at first open).

Tamper rules:
- `AuditLog.open` refuses (AuditLogCorrupt) a log that does not verify against its signed
  head: broken chain, fewer entries than the head (cut tail, emptied), an entry whose hash
  differs from the head's (recomputed), a head with a bad signature, a head or log without
  its key. A log with neither head nor key (written before signed heads) is adopted with
  one WARNING and signed from then on.
- A running `AuditLog` checks before each append that the file is still the one it wrote
  (same inode, the size it left, its last line unchanged). If not, it logs one ERROR line,
  refuses every later append and raises AuditTampered: callers fail closed.
- Every HEAD_LOG_INTERVAL seconds (at an append) and at close it logs the signed head as one
  INFO line `audit head seq=... hash=...`, for an external log collector: the check against
  an operator who holds the key and rewrites everything (`meshgate audit verify --head`).

Resource handling: `append` writes one line with one write() before returning (fsync too if
asked), so an entry is on disk before the decision it records takes effect, then the head;
`close` is idempotent. One writer per file (the gateway); readers (`read_entries`,
`check_log`) may run at any time: they read the head before the log, so a concurrent append
never looks like a cut tail.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import nacl.exceptions
import nacl.signing

from policy.audit_chain import (
    GENESIS,
    AuditEntry,
    VerifyResult,
    next_entry,
)
from policy.audit_files import (
    AUDIT_FILE_NAME,
    HEAD_FILE_NAME,
    KEY_FILE_NAME,
    AuditCheck,
    audit_path,
    check_log,
    create_key,
    head_path,
    key_path,
    load_key,
    public_key_of,
    read_entries,
    read_head,
    verify_file,
)
from policy.audit_head import SignedHead, public_key_hex, sign_head
from policy.errors import AuditLogCorrupt, AuditTampered, AuditUnwritable

# The file helpers are imported from here by the gateway, the CLI and the tests as well.
__all__ = [
    "AUDIT_FILE_NAME",
    "HEAD_FILE_NAME",
    "KEY_FILE_NAME",
    "AuditCheck",
    "AuditLog",
    "audit_path",
    "check_log",
    "create_key",
    "head_path",
    "key_path",
    "load_key",
    "public_key_of",
    "read_entries",
    "read_head",
    "verify_file",
]

log = logging.getLogger(__name__)

HEAD_WIDTH = 512  # bytes: the head is rewritten in place with one pwrite, padded to this
HEAD_LOG_INTERVAL = 60.0  # s between "audit head" log lines while appending
_TAIL_CHUNK = 4096

# -- the writer -------------------------------------------------------------------------


class AuditLog:
    """The gateway's one writer of an audit log; see the module docstring for its rules."""

    def __init__(
        self,
        path: Path,
        *,
        fd: int,
        head_fd: int,
        key: nacl.signing.SigningKey,
        seq: int,
        last_hash: str,
        last_line: bytes,
        fsync: bool,
        clock: Callable[[], float],
    ) -> None:
        self.path = path
        self._fd: int | None = fd
        self._head_fd = head_fd
        self._key = key
        self._seq = seq
        self._last_hash = last_hash
        self._last_line = last_line
        stat = os.fstat(fd)
        self._ident = (stat.st_dev, stat.st_ino)
        self._size = stat.st_size
        self._fsync = fsync
        self._clock = clock
        self._tampered: str | None = None
        self._head_logged_at = float("-inf")
        self._head: SignedHead | None = None

    @classmethod
    def open(
        cls, path: Path, *, fsync: bool = False, clock: Callable[[], float] = time.time
    ) -> AuditLog:
        """Open (creating) the log at `path`; AuditLogCorrupt if it does not verify."""
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() and (head_path(path).exists() or key_path(path).exists()):
            raise AuditLogCorrupt(f"{path} is missing but its signed head or key exists; refusing")
        had_key = key_path(path).exists()
        key = _open_key(path)
        if path.exists():
            check = check_log(path, public_key=public_key_hex(key), require_head=had_key)
            if not check.ok:
                raise AuditLogCorrupt(f"{path}: {check.result.problem}; refusing to append")
            result = check.result
        else:
            result = VerifyResult(0, GENESIS, None, None)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        head_fd = os.open(head_path(path), os.O_RDWR | os.O_CREAT, 0o600)
        last_line = _last_line(fd, path) if result.entries else b""
        audit = cls(
            path,
            fd=fd,
            head_fd=head_fd,
            key=key,
            seq=result.entries,
            last_hash=result.last_hash,
            last_line=last_line,
            fsync=fsync,
            clock=clock,
        )
        audit._write_head()
        log.info(
            "audit log %s: %d entries, heads signed by key %s",
            path,
            result.entries,
            public_key_hex(key),
        )
        audit._log_head()
        return audit

    @property
    def last_seq(self) -> int:
        return self._seq

    @property
    def tampered(self) -> str | None:
        """Why appending stopped (the file changed under the gateway), or None."""
        return self._tampered

    @property
    def head(self) -> SignedHead | None:
        return self._head

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
        """Write one entry (and the signed head); AuditTampered if the file was edited,
        AuditUnwritable if the disk refused the write (nothing of the entry is left)."""
        if self._fd is None:
            raise AuditLogCorrupt(f"{self.path}: audit log is closed")
        self._check_untouched(self._fd)
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
        line = (entry.to_json() + "\n").encode("utf-8")
        try:
            _write_all(self._fd, line)
            if self._fsync:
                os.fsync(self._fd)
        except OSError as exc:
            # A full disk may leave part of the line: cut it off again, so the file is the
            # one this writer left (not "tampered") and the next append can succeed.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
            raise AuditUnwritable(f"audit log {self.path} cannot be written: {exc}") from exc
        self._size += len(line)
        self._seq = entry.seq
        self._last_hash = entry.hash
        self._last_line = line
        try:
            self._write_head()
        except OSError as exc:  # the entry is written; the head lags it, which verifies
            raise AuditUnwritable(f"audit head {self.path} cannot be written: {exc}") from exc
        if self._head is not None and self._head.time - self._head_logged_at >= HEAD_LOG_INTERVAL:
            self._log_head()
        return entry

    def close(self) -> None:
        if self._fd is None:
            return
        try:
            if self._tampered is None:
                self._log_head()
        finally:
            os.close(self._fd)
            os.close(self._head_fd)
            self._fd = None

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_untouched(self, fd: int) -> None:
        if self._tampered is None:
            self._tampered = _changed(self.path, fd, self._ident, self._size, self._last_line)
            if self._tampered is not None:
                log.error(
                    "audit log %s changed under the gateway (%s): refusing access decisions "
                    "that need auditing until it is checked (meshgate audit verify) and restarted",
                    self.path,
                    self._tampered,
                )
        if self._tampered is not None:
            raise AuditTampered(f"audit log unavailable: edited while running ({self._tampered})")

    def _write_head(self) -> None:
        head = sign_head(self._key, self._seq, self._last_hash, self._clock())
        record = head.to_json().encode("ascii")
        os.pwrite(self._head_fd, record.ljust(HEAD_WIDTH - 1) + b"\n", 0)
        if self._fsync:
            os.fsync(self._head_fd)
        self._head = head

    def _log_head(self) -> None:
        head = self._head
        if head is None:
            return
        self._head_logged_at = head.time
        log.info(
            "audit head seq=%d hash=%s time=%.3f key=%s sig=%s",
            head.seq,
            head.hash,
            head.time,
            head.key,
            head.sig,
        )


def _open_key(path: Path) -> nacl.signing.SigningKey:
    """The log's key; a new one only for a log that has never had a signed head."""
    where = key_path(path)
    if where.exists():
        return load_key(where)
    if head_path(path).exists():
        raise AuditLogCorrupt(f"audit key {where} is missing but {path} has a signed head")
    if path.exists() and path.stat().st_size > 0:
        log.warning(
            "audit log %s has no signed head (written before signed heads, or its head and key "
            "were removed): adopting it as it is and signing from here on",
            path,
        )
    return create_key(where)


def _changed(
    path: Path, fd: int, ident: tuple[int, int], size: int, last_line: bytes
) -> str | None:
    """Why the file at `path` is not the one this writer left (open as `fd`), or None."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return "file removed"
    if (stat.st_dev, stat.st_ino) != ident:
        return "file replaced"
    if stat.st_size != size:
        return f"size {stat.st_size} bytes, expected {size}"
    if last_line and os.pread(fd, len(last_line), size - len(last_line)) != last_line:
        return "last entry rewritten"
    return None


def _last_line(fd: int, path: Path) -> bytes:
    """The file's last line (with its newline), read backwards from the end."""
    size = os.fstat(fd).st_size
    with path.open("rb") as handle:
        tail = b""
        while True:
            start = max(0, size - len(tail) - _TAIL_CHUNK)
            handle.seek(start)
            tail = handle.read(size - start)
            cut = tail.rfind(b"\n", 0, len(tail) - 1)
            if cut >= 0 or start == 0:
                return tail[cut + 1 :]


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
