"""The ONE place that maps errors to gRPC status codes and HTTP statuses.

`STATUS_TABLE` lists error classes, each with its gRPC code and its HTTP status (the HTTP edge,
gateway/http/, answers through `http_status_for`); for a raised error the most specific listed
class wins (the first class in the error's MRO that the table names). Errors of other layers
that callers can cause (policy denials, ledger outages) are listed too. Anything not in the
table is a bug: logged with its traceback and sent as INTERNAL (HTTP 500) without details.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NamedTuple, TypeVar

import grpc

from eventmodel import errors as eventmodel_errors
from gateway import errors
from gateway.http import errors as http_errors
from gateway.webhooks import errors as webhook_errors
from ledger import errors as ledger_errors
from policy import errors as policy_errors
from policy.schemas import errors as schema_errors

log = logging.getLogger(__name__)


class Status(NamedTuple):
    grpc: grpc.StatusCode
    http: int


STATUS_TABLE: dict[type[BaseException], Status] = {
    errors.InvalidRequest: Status(grpc.StatusCode.INVALID_ARGUMENT, 400),
    http_errors.BodyTooLarge: Status(grpc.StatusCode.INVALID_ARGUMENT, 413),
    http_errors.UnsupportedMediaType: Status(grpc.StatusCode.INVALID_ARGUMENT, 415),
    http_errors.RequestTimeout: Status(grpc.StatusCode.INVALID_ARGUMENT, 408),
    eventmodel_errors.EventModelError: Status(grpc.StatusCode.INVALID_ARGUMENT, 400),
    errors.TopicNotFound: Status(grpc.StatusCode.NOT_FOUND, 404),
    # Encrypted topics (issue 12): the chain does not back this epoch or key set now.
    errors.KeyEpochRefused: Status(grpc.StatusCode.FAILED_PRECONDITION, 409),
    errors.KeySetNotAccepted: Status(grpc.StatusCode.FAILED_PRECONDITION, 409),
    policy_errors.KeySetError: Status(grpc.StatusCode.INVALID_ARGUMENT, 400),
    webhook_errors.SubscriptionNotFound: Status(grpc.StatusCode.NOT_FOUND, 404),
    # Sign-in asked of a gateway that has no registry: there is no such resource here.
    errors.RegistryNotConfigured: Status(grpc.StatusCode.FAILED_PRECONDITION, 404),
    errors.GatewayClosing: Status(grpc.StatusCode.UNAVAILABLE, 503),
    errors.ConfigError: Status(grpc.StatusCode.FAILED_PRECONDITION, 400),
    errors.StoreFull: Status(grpc.StatusCode.RESOURCE_EXHAUSTED, 507),
    errors.StoreUnavailable: Status(grpc.StatusCode.UNAVAILABLE, 503),
    policy_errors.Unauthenticated: Status(grpc.StatusCode.UNAUTHENTICATED, 401),
    policy_errors.AccessDenied: Status(grpc.StatusCode.PERMISSION_DENIED, 403),
    policy_errors.AccessPaused: Status(grpc.StatusCode.UNAVAILABLE, 503),
    policy_errors.AuditTampered: Status(grpc.StatusCode.UNAVAILABLE, 503),
    policy_errors.AuditUnwritable: Status(grpc.StatusCode.UNAVAILABLE, 503),
    ledger_errors.ChainUnavailable: Status(grpc.StatusCode.UNAVAILABLE, 503),
    # Schemas (issue 16): data not matching its schema, a dataschema naming no accepted
    # version, an invalid or incompatible schema document: the caller's to fix.
    schema_errors.SchemaError: Status(grpc.StatusCode.INVALID_ARGUMENT, 400),
}


def _lookup(exc: BaseException) -> Status | None:
    for cls in type(exc).__mro__:
        status = STATUS_TABLE.get(cls)
        if status is not None:
            return status
    return None


def status_for(exc: BaseException) -> grpc.StatusCode | None:
    """The gRPC code of the most specific class in the table, or None for unknown errors."""
    status = _lookup(exc)
    return None if status is None else status.grpc


def http_status_for(exc: BaseException) -> int | None:
    """The HTTP status of the most specific class in the table, or None for unknown errors."""
    status = _lookup(exc)
    return None if status is None else status.http


def answer_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """What the caller is told of `exc`: its code and message; an unknown error is logged
    with its traceback and told as INTERNAL "internal error" (PublishStream answers each
    request with this, as the unary call would abort)."""
    code = status_for(exc)
    if code is None:
        log.error("internal error in RPC", exc_info=exc)
        return grpc.StatusCode.INTERNAL, "internal error"
    return code, str(exc)


async def abort_with(exc: Exception, context: grpc.aio.ServicerContext) -> None:
    """Abort the RPC for `exc`: known errors send their message, unknown ones are hidden."""
    code, message = answer_for(exc)
    await context.abort(code, message)


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
