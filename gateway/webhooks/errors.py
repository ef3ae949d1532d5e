"""Errors of webhook delivery and the Subscriptions API.

Tree (gateway/status.py maps each class to its status; the two request errors are also
gateway InvalidRequests, so they are INVALID_ARGUMENT / HTTP 400 by that row)::

    WebhookError
    ├── InvalidSubscription     the request body breaks the Subscriptions API model (400)
    ├── SinkRefused             the sink failed the abuse-protection handshake (400)
    └── SubscriptionNotFound    no such subscription for this caller (404)

Denials are policy's errors (AccessDenied, AccessPaused, Unauthenticated); no copies here.
"""

from __future__ import annotations

from gateway.errors import InvalidRequest


class WebhookError(Exception):
    """Base of every error raised by gateway.webhooks."""


class InvalidSubscription(WebhookError, InvalidRequest):
    """The subscription request is malformed; nothing was stored."""


class SubscriptionNotFound(WebhookError):
    """No subscription with that id belongs to the caller (others' ids are not revealed)."""


class SinkRefused(WebhookError, InvalidRequest):
    """The sink did not allow this gateway in the CloudEvents Webhook handshake."""
