"""The audit log's hash chain, sans I/O: build entries and verify a sequence of lines.

Each entry is one JSON object with keys seq, time, address, topic, action, decision,
reason, block, prev_hash, hash. `hash` is the SHA-256 hex of the canonical JSON (sorted
keys, no spaces, UTF-8) of every other key, `prev_hash` included; the first entry's
prev_hash is GENESIS. seq starts at 1 and grows by one. Editing, removing, inserting or
reordering any entry breaks the chain at that entry; `verify_lines` names the first one.
A cut tail, an emptied log or a chain recomputed from one entry on still verify alone: they
show only against an anchor kept outside the log, a (seq, hash) pair the log must contain
(the signed head, `policy.audit_head`, or a head the operator kept elsewhere).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64
DECISIONS = frozenset({"allow", "deny", "pause", "resume"})


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    seq: int
    time: float
    address: str
    topic: str
    action: str  # "subscribe", "publish", "stream"
    decision: str  # one of DECISIONS
    reason: str
    block: int | None  # the block the grant view was synced to
    prev_hash: str
    hash: str

    def to_json(self) -> str:
        row = {name: getattr(self, name) for name in _ENTRY_FIELDS}  # asdict deep-copies
        return json.dumps(row, sort_keys=True, separators=(",", ":"))


_ENTRY_FIELDS = tuple(f.name for f in dataclasses.fields(AuditEntry))


@dataclass(frozen=True, slots=True)
class VerifyResult:
    entries: int  # entries that verified
    last_hash: str
    broken_seq: int | None  # seq (or 1-based line number if unreadable) of the first bad entry
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def entry_hash(fields: dict[str, Any]) -> str:
    body = {k: v for k, v in fields.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def next_entry(
    prev_hash: str,
    seq: int,
    *,
    time: float,
    address: str,
    topic: str,
    action: str,
    decision: str,
    reason: str,
    block: int | None,
) -> AuditEntry:
    """The entry that follows one with hash `prev_hash` (GENESIS for the first)."""
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {sorted(DECISIONS)}, got {decision!r}")
    fields: dict[str, Any] = {
        "seq": seq,
        "time": time,
        "address": address,
        "topic": topic,
        "action": action,
        "decision": decision,
        "reason": reason,
        "block": block,
        "prev_hash": prev_hash,
    }
    return AuditEntry(**fields, hash=entry_hash(fields))


def parse_line(line: str) -> AuditEntry:
    """One line as an entry; ValueError if it is not a well-formed entry (hash not checked)."""
    try:
        fields = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg}") from exc
    if not isinstance(fields, dict):
        raise ValueError("not a JSON object")
    try:
        return AuditEntry(**fields)
    except TypeError as exc:
        raise ValueError(f"wrong keys: {exc}") from exc


def verify_lines(lines: Iterable[str], anchors: Mapping[int, str] | None = None) -> VerifyResult:
    """Check the chain; stop at the first entry that does not verify.

    `anchors` maps seq -> the hash that entry must have (seq 0: GENESIS); an anchor past the
    log's end means entries were removed from the tail.
    """
    anchors = anchors or {}
    if 0 in anchors and anchors[0] != GENESIS:
        return VerifyResult(0, GENESIS, 0, "anchor for entry 0 is not the genesis hash")
    prev = GENESIS
    count = 0
    for number, line in enumerate(lines, start=1):
        try:
            fields = json.loads(line)
            entry = parse_line(line)
        except ValueError as exc:
            return VerifyResult(count, prev, number, f"line {number}: {exc}")
        if entry.seq != count + 1:
            return VerifyResult(
                count, prev, entry.seq, f"line {number}: seq {entry.seq}, expected {count + 1}"
            )
        if entry.prev_hash != prev:
            return VerifyResult(
                count, prev, entry.seq, f"entry {entry.seq}: prev_hash does not match entry before"
            )
        if entry_hash(fields) != entry.hash:
            return VerifyResult(
                count, prev, entry.seq, f"entry {entry.seq}: content does not match its hash"
            )
        expected = anchors.get(entry.seq)
        if expected is not None and expected != entry.hash:
            return VerifyResult(
                count,
                prev,
                entry.seq,
                f"entry {entry.seq}: hash differs from its signed head (rewritten here or before)",
            )
        prev = entry.hash
        count += 1
    beyond = [seq for seq in anchors if seq > count]
    if beyond:
        return VerifyResult(
            count,
            prev,
            count + 1,
            f"log ends at entry {count} but its head names entry {max(beyond)}: "
            f"{'emptied' if count == 0 else 'tail cut'}",
        )
    return VerifyResult(count, prev, None, None)
