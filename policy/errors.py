"""Errors of the policy layer.

Exception tree (the gateway maps classes to gRPC status codes in `gateway/status.py`)::

    PolicyError
    ├── Unauthenticated            the caller did not prove who it is
    │   ├── SignInMalformed        not an EIP-4361 message, or a bad signature encoding
    │   ├── SignInReplayed         nonce unknown or already used
    │   ├── SignInExpired          message (or its nonce) expired
    │   ├── SignInNotYetValid      message's not-before lies in the future
    │   ├── SignInWrongDomain      message names another domain or URI
    │   ├── SignInWrongChain       message names another chain id
    │   ├── SignInForged           signature does not belong to the message's address
    │   ├── SignInOutOfScope       the proof does not list the topic among its resources
    │   ├── SessionInvalid         session token unknown, altered or expired
    │   └── CredentialsMissing     a registry-backed gateway got no credentials
    ├── AccessDenied               signed in, but the chain does not allow it (has a reason)
    ├── AccessPaused               cannot decide now (stale view): fail closed, retry later
    ├── AuditLogCorrupt            the audit log's hash chain is broken
    │   └── AuditTampered          the log changed under a running gateway: fail closed
    ├── AuditUnwritable            the disk refused an audit write (full, I/O): fail closed, retry
    ├── KeyFileError               a key file cannot be read or decrypted
    └── KeySetError                a topic's key set is refused or cannot be opened (has a reason)
"""

from __future__ import annotations


class PolicyError(Exception):
    """Base of every policy error."""


class Unauthenticated(PolicyError):
    """The caller's identity could not be established; the message starts with `label`,
    so a client (which sees only a status code and this text) knows which check failed."""

    label = "not authenticated"

    def __init__(self, detail: str) -> None:
        super().__init__(f"{self.label}: {detail}")
        self.detail = detail


class SignInMalformed(Unauthenticated):
    label = "sign-in malformed"


class SignInReplayed(Unauthenticated):
    label = "sign-in replayed"


class SignInExpired(Unauthenticated):
    label = "sign-in expired"


class SignInNotYetValid(Unauthenticated):
    label = "sign-in not yet valid"


class SignInWrongDomain(Unauthenticated):
    label = "sign-in for another domain"


class SignInWrongChain(Unauthenticated):
    label = "sign-in for another chain"


class SignInForged(Unauthenticated):
    label = "sign-in forged"


class SignInOutOfScope(Unauthenticated):
    label = "sign-in out of scope"


class SessionInvalid(Unauthenticated):
    label = "session invalid"


class CredentialsMissing(Unauthenticated):
    label = "no credentials"


class AccessDenied(PolicyError):
    """The registry does not allow this address this action on this topic."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"access denied ({reason}): {detail}")
        self.reason = reason
        self.detail = detail


class AccessPaused(PolicyError):
    """The gateway cannot decide right now (its grant view is stale): it fails closed."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"access paused ({reason}): {detail}")
        self.reason = reason
        self.detail = detail


class AuditLogCorrupt(PolicyError):
    """The audit log's hash chain does not verify."""


class AuditTampered(AuditLogCorrupt):
    """The audit log file changed under the gateway that writes it; it appends no more."""


class AuditUnwritable(PolicyError):
    """An audit entry could not be written (disk full, I/O error); nothing of it was kept,
    so the decision it would record does not take effect. Retry once space returns."""


class KeyFileError(PolicyError):
    """A key file could not be read or decrypted."""


class KeySetError(PolicyError):
    """A key set (policy/key_sets.py) that must not be used, or an entry that does not open.

    `reason` is one of `malformed`, `wrong_topic`, `not_owner_signed`, `hash_not_on_chain`,
    `epoch_mismatch` (verify), `not_a_recipient`, `unseal_failed` (unseal).
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"key set refused ({reason}): {detail}")
        self.reason = reason
        self.detail = detail
