"""Errors of the gateway layer.

Tree (gateway/status.py maps each class to a gRPC status; the most specific wins)::

    GatewayError
    ├── InvalidRequest          the caller sent something malformed (INVALID_ARGUMENT)
    │   ├── InvalidTopicName
    │   └── EventTooLarge       over the gateway's max_event_bytes
    ├── TopicNotFound           (NOT_FOUND)
    ├── Unauthenticated         no or bad credentials (UNAUTHENTICATED)
    ├── AccessDenied            the access layer said deny (PERMISSION_DENIED)
    ├── AccessPaused            the access layer cannot decide now: retry (UNAVAILABLE)
    ├── RegistryNotConfigured   sign-in asked of an open gateway (FAILED_PRECONDITION)
    ├── GatewayClosing          shutting down, try another time (UNAVAILABLE)
    ├── StoreError              storage failed (INTERNAL, details not sent)
    └── ConfigError             bad configuration (CLI prints it)

An event or filter that breaks the CloudEvents model raises eventmodel's errors
(eventmodel/errors.py: InvalidEvent, InvalidFilter, also INVALID_ARGUMENT); no copies here.
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


class TopicNotFound(GatewayError):
    pass


class Unauthenticated(GatewayError):
    pass


class AccessDenied(GatewayError):
    pass


class AccessPaused(GatewayError):
    pass


class RegistryNotConfigured(GatewayError):
    pass


class GatewayClosing(GatewayError):
    pass


class StoreError(GatewayError):
    pass


class ConfigError(GatewayError):
    pass
