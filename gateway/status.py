"""The ONE place that maps errors to gRPC status codes.

`STATUS_TABLE` lists error classes; for a raised error the most specific listed class wins
(the first class in the error's MRO that the table names). Errors of other layers that
callers can cause (policy denials, ledger outages) are listed too. Anything not in the table
is a bug: logged with its traceback and sent as INTERNAL without details.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from eventmodel import errors as eventmodel_errors
from gateway import errors
from ledger import errors as ledger_errors
from policy import errors as policy_errors

log = logging.getLogger(__name__)

STATUS_TABLE: dict[type[BaseException], grpc.StatusCode] = {
    errors.InvalidRequest: grpc.StatusCode.INVALID_ARGUMENT,
    eventmodel_errors.EventModelError: grpc.StatusCode.INVALID_ARGUMENT,
    errors.TopicNotFound: grpc.StatusCode.NOT_FOUND,
    errors.RegistryNotConfigured: grpc.StatusCode.FAILED_PRECONDITION,
    errors.GatewayClosing: grpc.StatusCode.UNAVAILABLE,
    errors.ConfigError: grpc.StatusCode.FAILED_PRECONDITION,
    errors.StoreFull: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.StoreUnavailable: grpc.StatusCode.UNAVAILABLE,
    policy_errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    policy_errors.AccessDenied: grpc.StatusCode.PERMISSION_DENIED,
    policy_errors.AccessPaused: grpc.StatusCode.UNAVAILABLE,
    policy_errors.AuditTampered: grpc.StatusCode.UNAVAILABLE,
    ledger_errors.ChainUnavailable: grpc.StatusCode.UNAVAILABLE,
}


def status_for(exc: BaseException) -> grpc.StatusCode | None:
    """The code of the most specific class in the table, or None for unknown errors."""
    for cls in type(exc).__mro__:
        code = STATUS_TABLE.get(cls)
        if code is not None:
            return code
    return None


async def abort_with(exc: Exception, context: grpc.aio.ServicerContext) -> None:
    """Abort the RPC for `exc`: known errors send their message, unknown ones are hidden."""
    code = status_for(exc)
    if code is None:
        log.error("internal error in RPC", exc_info=exc)
        await context.abort(grpc.StatusCode.INTERNAL, "internal error")
    else:
        await context.abort(code, str(exc))


F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
G = TypeVar("G", bound=Callable[..., AsyncIterator[Any]])


def unary(handler: F) -> F:
    """Decorate a unary servicer method so every error goes through `abort_with`."""

    @functools.wraps(handler)
    async def wrapped(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await handler(self, request, context)
        except Exception as exc:
            if isinstance(exc, grpc.aio.AbortError):
                raise
            await abort_with(exc, context)

    return wrapped  # type: ignore[return-value]


def streaming(handler: G) -> G:
    """Decorate a response-streaming servicer method the same way."""

    @functools.wraps(handler)
    async def wrapped(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            async for item in handler(self, request, context):
                yield item
        except Exception as exc:
            if isinstance(exc, grpc.aio.AbortError):
                raise
            await abort_with(exc, context)

    return wrapped  # type: ignore[return-value]
