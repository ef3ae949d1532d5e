"""The meshgate client SDK: what an application imports to publish and subscribe.

    from meshgate.client import GatewayClient

`GatewayClient` speaks the `meshgate.v1.Gateway` gRPC API (`RegionClient`: one per replica of
a region, each topic's publishes to the replica that writes it); it imports only `eventmodel` and
`proto`, the sign-in library (EIP-4361) only when a client signs in, and `ledger` only when
it is given a `Chain` to check publishers on (meshgate/client/provenance.py).
"""

from meshgate.client.gateway_client import GatewayClient
from meshgate.client.provenance import Chain
from meshgate.client.region_client import RegionClient
from meshgate.client.results import PublishResult, Received, Undecodable
from meshgate.client.subscription import Subscription

__all__ = [
    "Chain",
    "GatewayClient",
    "PublishResult",
    "Received",
    "RegionClient",
    "Subscription",
    "Undecodable",
]
