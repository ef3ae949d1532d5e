"""Sign-In with Ethereum, client side: build and sign the EIP-4361 message for a challenge.

Used by the CLI (`--key-file`) and the Python client. The message lists the topics the
client wants as resources, so a stolen session is no good for other topics. Scope is
explicit: no topics means a sign-in valid for no topic; `ALL_TOPICS` ("*") among the topics
asks for every topic (the wildcard resource `meshgate://topic/*`). `regions` adds
`meshgate://region/<r>` resources: the sign-in then doubles as the reader's interest proof for
those regions (its expiry bounds how long a region attracts the topics without the reader).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import siwe
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import to_checksum_address

from ledger.keys import load_signer
from policy.errors import KeyFileError
from policy.identity import ALL_TOPICS, Challenge, region_resource, topic_resource

__all__ = ["ALL_TOPICS", "SignedProof", "build_message", "load_key_file", "sign_in", "sign_message"]

DEFAULT_MESSAGE_TTL = 600.0
KEY_PASSWORD_ENV = "MESHGATE_KEY_PASSWORD"
STATEMENT = "Sign in to a meshgate gateway to read or publish CloudEvents."


@dataclass(frozen=True, slots=True)
class SignedProof:
    message: str
    signature: bytes


def build_message(
    address: str,
    challenge: Challenge,
    topics: Iterable[str],
    now: float,
    ttl: float = DEFAULT_MESSAGE_TTL,
    regions: Iterable[str] = (),
) -> str:
    """The EIP-4361 text for `address` answering `challenge`, valid for `ttl` seconds, scoped
    to `topics` (as resources; `ALL_TOPICS` among them: every topic, and no other topic
    resource), naming `regions` (interest proof)."""
    wanted = set(topics)
    resources = [
        topic_resource(t) for t in sorted({ALL_TOPICS} if ALL_TOPICS in wanted else wanted)
    ] + [region_resource(r) for r in sorted(set(regions))]
    message = siwe.SiweMessage(
        domain=challenge.domain,
        address=_checksum(address),
        statement=STATEMENT,
        uri=challenge.uri,
        version="1",
        chain_id=challenge.chain_id,
        nonce=challenge.nonce,
        issued_at=_iso(now),
        expiration_time=_iso(now + ttl),
        resources=resources or None,
    )
    return str(message.prepare_message())


def sign_message(account: Any, message: str) -> bytes:
    """personal_sign (EIP-191) of `message` with an eth-account LocalAccount."""
    signed = account.sign_message(encode_defunct(text=message))
    return bytes(signed.signature)


def sign_in(
    account: Any,
    challenge: Challenge,
    topics: Iterable[str],
    now: float,
    ttl: float = DEFAULT_MESSAGE_TTL,
    regions: Iterable[str] = (),
) -> SignedProof:
    message = build_message(account.address, challenge, topics, now, ttl, regions)
    return SignedProof(message, sign_message(account, message))


def load_key_file(path: Path, password: str | None = None) -> Any:
    """A LocalAccount from an encrypted keystore JSON (password from the argument or env
    MESHGATE_KEY_PASSWORD) or from a file holding one hex private key.

    Raises KeyFileError, or ledger's KeystoreError / WrongKeyPassword for keystores."""
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from exc
    if text.startswith("{"):
        if password is None:
            password = os.environ.get(KEY_PASSWORD_ENV)
        if password is None:
            raise KeyFileError(f"key file {path} is encrypted: set {KEY_PASSWORD_ENV}")
        return load_signer(path, password)  # raises ledger's KeystoreError / WrongKeyPassword
    try:
        return Account.from_key(text)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"key file {path} holds neither a keystore nor a hex key") from exc


def _checksum(address: str) -> str:
    return str(to_checksum_address(address))


def _iso(ts: float) -> siwe.ISO8601Datetime:
    return siwe.ISO8601Datetime.from_datetime(datetime.fromtimestamp(ts, tz=UTC))
