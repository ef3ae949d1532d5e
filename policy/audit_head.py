"""The audit log's signed head, sans I/O: (entry count, last hash, time) signed with Ed25519.

Why: the hash chain alone shows an edited or reordered entry, but not a cut tail, an emptied
file, or a chain recomputed from one entry on (all of which still verify). The gateway signs
the head after every append with a key that is not in the log (`audit.key`), so:

- cut tail / emptied log: the log has fewer entries than the signed head says;
- recomputed hashes: entry `seq` no longer has the signed hash (or the head's signature fails
  if the head was edited to match);
- a re-signed rewrite is only possible with the key. What catches the key holder is a head
  kept outside the machine (`head_line`, logged periodically for the operator's log
  collector), checked with `meshgate audit verify --head SEQ:HASH`.

Wire form: one JSON object {"seq", "hash", "time", "key", "sig"} with `sig` the hex Ed25519
signature of `signed_bytes(seq, hash, time)` and `key` the hex public key (informative: a
verifier trusts the key it was given, never the one the head names).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import nacl.exceptions
import nacl.signing

HEAD_DOMAIN = b"meshgate-audit-head-v1"


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedHead:
    seq: int  # entries covered (0 = empty log)
    hash: str  # hash of entry `seq` (GENESIS for 0)
    time: float
    key: str  # hex public key that signed it
    sig: str  # hex signature

    def to_json(self) -> str:
        return json.dumps(
            {
                "seq": self.seq,
                "hash": self.hash,
                "time": self.time,
                "key": self.key,
                "sig": self.sig,
            },
            sort_keys=True,
            separators=(",", ":"),
        )


def signed_bytes(seq: int, head_hash: str, time: float) -> bytes:
    return b"%s\n%d\n%s\n%r" % (HEAD_DOMAIN, seq, head_hash.encode("ascii"), time)


def public_key_hex(key: nacl.signing.SigningKey) -> str:
    return bytes(key.verify_key).hex()


def sign_head(key: nacl.signing.SigningKey, seq: int, head_hash: str, time: float) -> SignedHead:
    signature = key.sign(signed_bytes(seq, head_hash, time)).signature
    return SignedHead(
        seq=seq, hash=head_hash, time=time, key=public_key_hex(key), sig=signature.hex()
    )


def parse_head(text: str) -> SignedHead:
    """A head from its JSON form; ValueError if it is not one."""
    try:
        fields = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg}") from exc
    if not isinstance(fields, dict) or set(fields) != {"seq", "hash", "time", "key", "sig"}:
        raise ValueError("not a signed head (wrong keys)")
    seq, head_hash, time = fields["seq"], fields["hash"], fields["time"]
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise ValueError("seq is not a count")
    if not isinstance(time, int | float) or isinstance(time, bool):
        raise ValueError("time is not a number")
    for name in ("hash", "key", "sig"):
        if not isinstance(fields[name], str):
            raise ValueError(f"{name} is not a string")
    if not head_hash.isascii():
        raise ValueError("hash is not hex")
    return SignedHead(
        seq=seq, hash=head_hash, time=float(time), key=fields["key"], sig=fields["sig"]
    )


def head_problem(head: SignedHead, trusted_key: str) -> str | None:
    """Why `head` is not a valid signature by `trusted_key` (hex), or None if it is."""
    if head.key != trusted_key:
        return f"signed by key {head.key[:16]}..., not the audit key {trusted_key[:16]}..."
    try:
        verify_key = nacl.signing.VerifyKey(bytes.fromhex(trusted_key))
        verify_key.verify(signed_bytes(head.seq, head.hash, head.time), bytes.fromhex(head.sig))
    except (ValueError, TypeError, nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
        return "signature does not verify (head edited or signed by another key)"
    return None


def parse_anchor(text: str) -> tuple[int, str]:
    """`SEQ:HASH` (an externally kept head) as a pair; ValueError if malformed."""
    seq_text, sep, head_hash = text.partition(":")
    if not sep or not seq_text.isdigit() or len(head_hash) != 64:
        raise ValueError(f"not SEQ:HASH (64 hex digits): {text!r}")
    try:
        bytes.fromhex(head_hash)
    except ValueError as exc:
        raise ValueError(f"not SEQ:HASH (64 hex digits): {text!r}") from exc
    return int(seq_text), head_hash.lower()
