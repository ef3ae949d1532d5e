"""RPCs of proto/gateway.proto whose handlers land with their issues; each issue deletes its
method here when `GatewayService` serves it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from proto import gateway_pb2


class NotYetServed:
    """RPCs declared in proto/gateway.proto whose handlers land with their issues (12, 13, 16).

    Until then they answer UNIMPLEMENTED, which is what a client of an older gateway sees.
    """

    async def PublishStream(
        self, request_iterator: AsyncIterator[Any], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[gateway_pb2.PublishStreamResponse]:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "PublishStream is not served yet")
        yield gateway_pb2.PublishStreamResponse()  # pragma: no cover (abort raises)

    async def ListSchemas(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "ListSchemas is not served yet")
