"""Errors -> HTTP responses: one JSON shape, statuses only from gateway/status.py's table.

Every error body is `{"error": "<one line>"}` (application/json). Headers the statuses need:
401 `WWW-Authenticate: Bearer`, 503 `Retry-After` ([http] retry_after). 408 and 413 close the
connection (the rest of the body was never read). An error not in the table is a bug: logged
with its traceback and answered 500 "internal error", never with its details.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from gateway.http.parts import PARTS
from gateway.status import http_status_for

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CLOSE_AFTER = frozenset({408, 413})


def json_response(payload: Any, *, status: int = 200) -> web.Response:
    return web.json_response(payload, status=status)


def error_response(
    status: int, message: str, *, retry_after: int, headers: Mapping[str, str] | None = None
) -> web.Response:
    """The error body for `status`, with the headers that status calls for."""
    out = dict(headers or {})
    out.pop("Content-Type", None)
    if status == 401:
        out["WWW-Authenticate"] = 'Bearer realm="meshgate"'
    if status == 503:
        out["Retry-After"] = str(retry_after)
    response = web.json_response({"error": message}, status=status, headers=out)
    if status in CLOSE_AFTER:
        response.force_close()
    return response


def for_exception(exc: Exception, retry_after: int) -> web.Response:
    status = http_status_for(exc)
    if status is None:
        log.error("internal error in HTTP request", exc_info=exc)
        return error_response(500, "internal error", retry_after=retry_after)
    return error_response(status, str(exc), retry_after=retry_after)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn what a handler raises into its response; aiohttp's own 404/405 get the same shape."""
    retry_after = request.app[PARTS].http.retry_after
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(
            exc.status, exc.reason, retry_after=retry_after, headers=dict(exc.headers)
        )
    except Exception as exc:
        return for_exception(exc, retry_after)
