"""Errors of webhook delivery and the Subscriptions API.

Tree (gateway/http/subscriptions.py maps each class to an HTTP status)::

    WebhookError
    ├── InvalidSubscription     the request body breaks the Subscriptions API model (400)
    ├── SubscriptionNotFound    no such subscription for this caller (404)
    └── SinkRefused             the sink failed the abuse-protection handshake (400)

Denials are policy's errors (AccessDenied, AccessPaused, Unauthenticated); no copies here.
"""

from __future__ import annotations


class WebhookError(Exception):
    """Base of every error raised by gateway.webhooks."""


class InvalidSubscription(WebhookError):
    """The subscription request is malformed; nothing was stored."""


class SubscriptionNotFound(WebhookError):
    """No subscription with that id belongs to the caller (others' ids are not revealed)."""


class SinkRefused(WebhookError):
    """The sink did not allow this gateway in the CloudEvents Webhook handshake."""
