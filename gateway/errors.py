"""Errors of the gateway layer.

Tree (gateway/status.py maps each class to a gRPC status; the most specific wins)::

    GatewayError
    ├── InvalidRequest          the caller sent something malformed (INVALID_ARGUMENT)
    │   ├── InvalidTopicName
    │   ├── EventTooLarge       over the gateway's max_event_bytes
    │   └── EncryptionRequired  plaintext (or not sealed) to an encrypted topic
    ├── KeyEpochRefused         sealed under an epoch the chain does not allow now
    │                           (FAILED_PRECONDITION: the client fetches key sets, retries)
    ├── KeySetNotAccepted       a key set this gateway's view cannot back (FAILED_PRECONDITION:
    │                           topic not encrypted, hash not recorded on chain)
    ├── TopicNotFound           (NOT_FOUND)
    ├── RegistryNotConfigured   sign-in asked of an open gateway (FAILED_PRECONDITION)
    ├── GatewayClosing          shutting down, try another time (UNAVAILABLE)
    ├── StoreError              storage failed (INTERNAL, details not sent)
    │   ├── StoreFull           disk or database full: nothing stored (RESOURCE_EXHAUSTED)
    │   └── StoreUnavailable    transient I/O failure, or the data directory cannot be
    │                           written (UNAVAILABLE; the CLI prints it as one line)
    └── ConfigError             bad configuration (CLI prints it)

An event or filter that breaks the CloudEvents model raises eventmodel's errors
(eventmodel/errors.py: InvalidEvent, InvalidFilter, also INVALID_ARGUMENT); no copies here.
Denials and authentication failures are the policy layer's errors (policy/errors.py:
Unauthenticated, AccessDenied, AccessPaused); the gateway raises those, it has no copies.
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error raised by the gateway layer."""


class InvalidRequest(GatewayError):
    """The request is malformed; nothing was stored."""


class InvalidTopicName(InvalidRequest):
    pass


class EventTooLarge(InvalidRequest):
    pass


class EncryptionRequired(InvalidRequest):
    """An event to an encrypted topic is not in the sealed form (gateway/encrypted_topics.py)."""


class KeyEpochRefused(GatewayError):
    """Sealed under an epoch older than the grace allows, newer than the chain, or before
    the topic has any key set on chain; the message names the epochs."""


class KeySetNotAccepted(GatewayError):
    """PutKeySet: the chain (as this gateway sees it, caught up) does not back this set;
    `reason` is `not_encrypted` or `hash_not_on_chain`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class TopicNotFound(GatewayError):
    pass


class RegistryNotConfigured(GatewayError):
    pass


class GatewayClosing(GatewayError):
    pass


class StoreError(GatewayError):
    pass


class StoreFull(StoreError):
    """The disk or database is full; the write was not stored. Retry once space returns."""


class StoreUnavailable(StoreError):
    """The store cannot be used right now (I/O error, busy, read-only data directory)."""


class ConfigError(GatewayError):
    pass
