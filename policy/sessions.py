"""Session tokens for the SignIn RPC: stateless, HMAC-SHA256 with a per-gateway secret.

A token is `<payload>.<mac>`, both base64url without padding; the payload is canonical JSON
`{"a": address, "e": expiry (unix s), "t": sorted topics, or null for every topic}`, plus
`"p": [message, signature hex]` when the sign-in names a region (it is then the reader's
interest proof, forwarded with federation Interest: `policy.identity`). A token
never outlives the sign-in message it came from (`Identity.expires_at` is already capped by
the message's expiration time).

The secret lives in the gateway's data directory (`session.key`, 64 hex characters, mode
0600), created once on first start (`load_or_create_secret`), so sessions survive a
restart. Deleting the file ends every session at the next start. A secret file that others
may read, or that is not a secret, is refused (fail closed), never silently replaced.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import stat
from pathlib import Path

from policy.errors import KeyFileError, SessionInvalid
from policy.identity import Identity, SignedStatement

MIN_SECRET_BYTES = 32


SECRET_FILE = "session.key"


def new_secret() -> bytes:
    return secrets.token_bytes(MIN_SECRET_BYTES)


def session_secret_path(data_dir: Path) -> Path:
    return data_dir / SECRET_FILE


def load_or_create_secret(path: Path) -> bytes:
    """The session secret kept at `path`: read it, or create it (0600) if there is none.

    Creation is exclusive (O_EXCL), so two processes starting on one data directory never
    end up with different secrets. Raises KeyFileError (one line) for a file others may
    read, one that does not hold a secret, or one that cannot be read or written."""
    secret = new_secret()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KeyFileError(f"cannot create session secret {path}: {exc.strerror}") from exc
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_secret(path)
    except OSError as exc:
        raise KeyFileError(f"cannot create session secret {path}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "w") as out:
            out.write(secret.hex() + "\n")
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise KeyFileError(f"cannot write session secret {path}: {exc.strerror}") from exc
    return secret


def _read_secret(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
        text = path.read_text().strip()
    except OSError as exc:
        raise KeyFileError(f"cannot read session secret {path}: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"session secret {path} is open to other users (mode {stat.S_IMODE(mode):o}): "
            f"chmod 600 it, or delete it to end every session"
        )
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        secret = b""
    if len(secret) < MIN_SECRET_BYTES:
        raise KeyFileError(
            f"session secret {path} does not hold {MIN_SECRET_BYTES} hex-encoded bytes: "
            f"delete it to make a new one (ends every session)"
        )
    return secret


class SessionTokens:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"session secret needs at least {MIN_SECRET_BYTES} bytes")
        self._secret = secret

    def issue(self, identity: Identity) -> str:
        topics = None if identity.topics is None else sorted(identity.topics)
        fields: dict[str, object] = {"a": identity.address, "e": identity.expires_at, "t": topics}
        if identity.proof is not None:
            fields["p"] = [identity.proof.message, identity.proof.signature.hex()]
        payload = json.dumps(
            fields,
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
        p = fields.get("p")
        proof = None if p is None else SignedStatement(str(p[0]), bytes.fromhex(str(p[1])))
        return Identity(
            address=str(fields["a"]),
            expires_at=expires_at,
            topics=None if topics is None else frozenset(str(t) for t in topics),
            proof=proof,
        )

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
