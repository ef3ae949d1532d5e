"""gRPC TLS credentials from a gateway identity: mutual TLS, our CA only."""

from __future__ import annotations

import grpc

from federation.certs import Identity, region_hostname


def server_credentials(identity: Identity) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials(
        [(identity.key_pem, identity.cert_pem)],
        root_certificates=identity.ca_pem,
        require_client_auth=True,
    )


def dial_channel(identity: Identity, address: str, region: str | None) -> grpc.aio.Channel:
    """A channel to a peer; with `region` set, TLS also checks the peer's cert names it."""
    creds = grpc.ssl_channel_credentials(
        root_certificates=identity.ca_pem,
        private_key=identity.key_pem,
        certificate_chain=identity.cert_pem,
    )
    options: list[tuple[str, str | int]] = [
        ("grpc.keepalive_time_ms", 10_000),
        ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ]
    if region is not None:
        options.append(("grpc.ssl_target_name_override", region_hostname(region)))
    return grpc.aio.secure_channel(address, creds, options=options)
