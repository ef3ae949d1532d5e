"""The accepting side: the `Federation` gRPC service on the mTLS peer port.

TLS already refused any client without a certificate from our CA (`require_client_auth`); here
the region that certificate names becomes the region the peer's Hello must claim.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

import grpc

from federation import raw_wire
from federation.certs import Identity, region_from_pem
from federation.errors import CertificateError
from federation.identity_tls import server_credentials
from proto import federation_pb2, federation_pb2_grpc


class Acceptor(Protocol):
    async def accept(self, context: grpc.aio.ServicerContext, peer_region: str) -> None: ...


class FederationServicer(federation_pb2_grpc.FederationServicer):
    def __init__(self, acceptor: Acceptor) -> None:
        self._acceptor = acceptor

    async def Link(  # type: ignore[override]  # streams via context.write, yields nothing
        self,
        request_iterator: AsyncIterator[federation_pb2.PeerMessage],
        context: grpc.aio.ServicerContext,
    ) -> None:
        pems = context.auth_context().get("x509_pem_cert") or []
        if not pems:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "no client certificate")
        try:
            region = region_from_pem(pems[0])
        except CertificateError as exc:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))
        await self._acceptor.accept(context, region)


async def start_peer_server(
    acceptor: Acceptor, identity: Identity, host: str, port: int
) -> tuple[grpc.aio.Server, int]:
    """Start the mTLS peer listener; returns the server and its bound port."""
    server = grpc.aio.server()
    # Link (de)serializes raw PeerMessages: each event stays its bytes (federation/raw_wire.py)
    server.add_generic_rpc_handlers((raw_wire.link_handler(FederationServicer(acceptor).Link),))
    bound = server.add_secure_port(f"{host}:{port}", server_credentials(identity))
    if bound == 0:
        raise OSError(f"cannot listen on {host}:{port}")
    await server.start()
    return server, bound
