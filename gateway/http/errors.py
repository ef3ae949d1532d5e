"""Errors of the HTTP edge: what only an HTTP request can get wrong.

Tree (gateway/status.py maps each class to its gRPC code and HTTP status; most specific wins)::

    InvalidRequest (gateway/errors.py)
    ├── BodyTooLarge            the body is over [http] max_body_bytes (413)
    ├── UnsupportedMediaType    a body in a format the route does not take (415)
    └── RequestTimeout          the body did not arrive within [http] body_timeout (408)

Everything else an HTTP route raises is an error of the layer it came from (an InvalidEvent
from eventmodel, an AccessDenied from policy, ...): the same class gRPC maps.
"""

from __future__ import annotations

from gateway.errors import InvalidRequest


class BodyTooLarge(InvalidRequest):
    pass


class UnsupportedMediaType(InvalidRequest):
    pass


class RequestTimeout(InvalidRequest):
    pass
