"""RPCs of proto/gateway.proto whose handlers land with their issues; each issue deletes its
method here when `GatewayService` serves it."""

from __future__ import annotations


class NotYetServed:
    """RPCs declared in proto/gateway.proto whose handlers have not landed yet (none now:
    ListSchemas, the last, came with issue 16).

    A method here answers UNIMPLEMENTED, which is what a client of an older gateway sees.
    """
