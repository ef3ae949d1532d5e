"""The meshgate client SDK: what an application imports to publish and subscribe.

    from meshgate.client import GatewayClient

`GatewayClient` speaks the `meshgate.v1.Gateway` gRPC API; the sign-in library (EIP-4361) is
imported only when a client signs in.
"""

from meshgate.client.gateway_client import GatewayClient, PublishResult, Received, Subscription

__all__ = ["GatewayClient", "PublishResult", "Received", "Subscription"]
