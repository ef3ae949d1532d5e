"""Session tokens for the SignIn RPC: stateless, HMAC-SHA256 with a per-gateway secret.

A token is `<payload>.<mac>`, both base64url without padding; the payload is canonical JSON
`{"a": address, "e": expiry (unix s), "t": sorted topics or null}`. A token never outlives
the sign-in message it came from (`Identity.expires_at` is already capped by the message's
expiration time). Tokens die with the secret: a gateway restarted with a new secret forgets
every session, which only costs clients one more sign-in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets

from policy.errors import SessionInvalid
from policy.identity import Identity

MIN_SECRET_BYTES = 32


def new_secret() -> bytes:
    return secrets.token_bytes(MIN_SECRET_BYTES)


class SessionTokens:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"session secret needs at least {MIN_SECRET_BYTES} bytes")
        self._secret = secret

    def issue(self, identity: Identity) -> str:
        topics = None if identity.topics is None else sorted(identity.topics)
        payload = json.dumps(
            {"a": identity.address, "e": identity.expires_at, "t": topics},
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def check(self, token: str, now: float) -> Identity:
        """The identity a token stands for; SessionInvalid if altered, foreign or expired."""
        try:
            payload_part, mac_part = token.split(".")
            payload = _unb64(payload_part)
            mac = _unb64(mac_part)
        except (ValueError, binascii.Error) as exc:
            raise SessionInvalid("session token is malformed") from exc
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise SessionInvalid("session token was not issued by this gateway")
        fields = json.loads(payload)
        expires_at = float(fields["e"])
        if now >= expires_at:
            raise SessionInvalid("session expired; sign in again")
        topics = fields["t"]
        return Identity(
            address=str(fields["a"]),
            expires_at=expires_at,
            topics=None if topics is None else frozenset(str(t) for t in topics),
        )

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
