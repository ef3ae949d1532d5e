"""The meshgate client SDK: what an application imports to publish and subscribe.

    from meshgate.client import GatewayClient

`GatewayClient` speaks the `meshgate.v1.Gateway` gRPC API; it imports only `eventmodel` and
`proto`, and the sign-in library (EIP-4361) only when a client signs in.
"""

from meshgate.client.gateway_client import (
    GatewayClient,
    PublishResult,
    Received,
    Subscription,
    Undecodable,
)

__all__ = ["GatewayClient", "PublishResult", "Received", "Subscription", "Undecodable"]
