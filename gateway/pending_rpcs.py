"""RPCs of proto/gateway.proto whose handlers land with their issues; each issue deletes its
method here when `GatewayService` serves it."""

from __future__ import annotations

from typing import Any

import grpc


class NotYetServed:
    """RPCs declared in proto/gateway.proto whose handlers land with their issues (12, 16).

    Until then they answer UNIMPLEMENTED, which is what a client of an older gateway sees.
    """

    async def ListSchemas(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "ListSchemas is not served yet")
