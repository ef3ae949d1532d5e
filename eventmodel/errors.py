"""Errors of the event model: what a door (gRPC publish, subscribe, federation) refuses.

Tree (gateway/status.py maps the base class to INVALID_ARGUMENT; the message names the reason)::

    EventModelError             client or peer input that breaks the CloudEvents model
    ├── InvalidEvent            an attribute breaks the spec's type system, or a name is illegal
    │   ├── UndecodableEvent    bytes or an SDK event that cannot be mapped at all
    │   ├── ProvenanceError     the publisher signature is missing or does not verify (.reason)
    │   └── DecryptionError     sealed data that does not open, or is not sealed (.reason)
    └── InvalidFilter           a filter that is malformed ...
        └── FilterTooComplex    ... or over the documented depth / node limits
"""

from __future__ import annotations


class EventModelError(ValueError):
    """Base of every error of the event model."""


class InvalidEvent(EventModelError):
    """The event breaks the CloudEvents v1.0 spec; the message names the attribute."""


class UndecodableEvent(InvalidEvent):
    """The event cannot be decoded or mapped at all (not a CloudEvent)."""


class InvalidFilter(EventModelError):
    """The filter is malformed; the message names the problem."""


class FilterTooComplex(InvalidFilter):
    """The filter is nested deeper or has more nodes than the documented limits."""


class ProvenanceError(InvalidEvent):
    """The event's publisher signature is missing or does not verify (eventmodel/provenance.py).

    `reason` is one of `unsigned`, `bad_proof`, `bad_signature` (the federation metric's labels).
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason.replace('_', ' ')}: {detail}")
        self.reason = reason


class DecryptionError(InvalidEvent):
    """An event of an encrypted topic that cannot be opened (eventmodel/encryption.py).

    `reason` is one of `not_sealed`, `tampered`, `bad_envelope` (eventmodel/encryption.py's
    REASONS), or `no_key` (the client holds no key for the event's epoch).
    """

    def __init__(self, reason: str, detail: str | None = None) -> None:
        text = reason.replace("_", " ")
        super().__init__(f"{text}: {detail}" if detail else text)
        self.reason = reason
        self.detail = detail
