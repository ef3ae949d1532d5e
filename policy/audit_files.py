"""Where a gateway's audit files live, and reading and checking them offline.

`audit.jsonl` (the hash chain, `policy.audit_chain`), `audit.head` (the signed head,
`policy.audit_head`) and `audit.key` (the Ed25519 seed that signs heads) sit in the data dir.
`check_log`/`verify_file` and `read_entries` are what `meshgate audit verify|show` run; they
may run beside the gateway's one writer (`policy.audit.AuditLog`): they read the head before
the log, so a concurrent append never looks like a cut tail.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import nacl.exceptions
import nacl.signing

from policy.audit_chain import GENESIS, AuditEntry, VerifyResult, parse_line, verify_lines
from policy.audit_head import SignedHead, head_problem, parse_head, public_key_hex
from policy.errors import AuditLogCorrupt

AUDIT_FILE_NAME = "audit.jsonl"
HEAD_FILE_NAME = "audit.head"
KEY_FILE_NAME = "audit.key"


def audit_path(data_dir: Path) -> Path:
    return data_dir / AUDIT_FILE_NAME


def head_path(log_path: Path) -> Path:
    return log_path.with_name(HEAD_FILE_NAME)


def key_path(log_path: Path) -> Path:
    return log_path.with_name(KEY_FILE_NAME)


# -- the key and the head files ---------------------------------------------------------


def load_key(path: Path) -> nacl.signing.SigningKey:
    """The signing key in `path` (hex seed); AuditLogCorrupt if unreadable or malformed."""
    try:
        seed = bytes.fromhex(path.read_text(encoding="ascii").strip())
        return nacl.signing.SigningKey(seed)
    except (OSError, ValueError, nacl.exceptions.CryptoError) as exc:
        raise AuditLogCorrupt(f"audit key {path} unreadable: {exc}") from exc


def create_key(path: Path) -> nacl.signing.SigningKey:
    """A new key written to `path` (0600, must not exist)."""
    key = nacl.signing.SigningKey.generate()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, bytes(key).hex().encode("ascii") + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    return key


def public_key_of(path: Path) -> str:
    """The hex public key of the key file at `path`."""
    return public_key_hex(load_key(path))


def read_head(path: Path) -> SignedHead | None:
    """The signed head in `path`, None if there is none; AuditLogCorrupt if malformed."""
    problem = ""
    for _attempt in range(3):  # a read racing the writer's in-place pwrite: read again
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise AuditLogCorrupt(f"signed head {path} unreadable: {exc}") from exc
        try:
            return parse_head(text)
        except ValueError as exc:
            problem = str(exc)
    raise AuditLogCorrupt(f"signed head {path} malformed: {problem}")


# -- checking a log ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditCheck:
    result: VerifyResult  # the chain, against the head and any extra anchors
    head: SignedHead | None
    key: str  # hex public key the head was checked against

    @property
    def ok(self) -> bool:
        return self.result.ok


def check_log(
    path: Path,
    *,
    public_key: str | None = None,
    anchors: Mapping[int, str] | None = None,
    require_head: bool = True,
) -> AuditCheck:
    """Verify the log at `path` against its signed head (and `anchors`, e.g. a head kept
    elsewhere). `public_key` (hex) pins the key; by default the key file beside the log.

    Raises AuditLogCorrupt only when there is no log at all; every other problem is in
    the result (`result.problem`, one line)."""
    head = _read_head_or_problem(head_path(path))
    if not path.exists():
        raise AuditLogCorrupt(f"no audit log at {path}")
    if public_key is None:
        try:
            public_key = public_key_of(key_path(path))
        except AuditLogCorrupt as exc:
            return AuditCheck(_problem(f"{exc}; pass the public key to check against"), None, "")
    if isinstance(head, str):
        return AuditCheck(_problem(head), None, public_key)
    all_anchors = dict(anchors or {})
    if head is None:
        if require_head:
            return AuditCheck(
                _problem(f"no signed head at {head_path(path)} (removed?)"), None, public_key
            )
    else:
        problem = head_problem(head, public_key)
        if problem is not None:
            return AuditCheck(_problem(f"signed head: {problem}"), head, public_key)
        if all_anchors.get(head.seq, head.hash) != head.hash:
            return AuditCheck(
                _problem(f"signed head for entry {head.seq} differs from the given head"),
                head,
                public_key,
            )
        all_anchors[head.seq] = head.hash
    return AuditCheck(verify_lines(_lines(path), all_anchors), head, public_key)


def verify_file(path: Path, *, public_key: str | None = None) -> VerifyResult:
    """The chain of the log at `path`, checked against its signed head (see check_log)."""
    return check_log(path, public_key=public_key).result


def _read_head_or_problem(path: Path) -> SignedHead | str | None:
    try:
        return read_head(path)
    except AuditLogCorrupt as exc:
        return str(exc)


def _problem(text: str) -> VerifyResult:
    return VerifyResult(0, GENESIS, 0, text)


def _lines(path: Path) -> Iterator[str]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.endswith("\n"):
                yield line.rstrip("\n")
            elif line:  # a torn last line: show it so verify names it
                yield line


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
