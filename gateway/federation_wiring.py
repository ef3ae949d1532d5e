"""Wires federation into a gateway: CLI flags, the FederationNode as a gateway service, ListPeers.

`--peer-listen HOST:PORT --tls-dir DIR [--peer HOST:PORT ...]` turn federation on; without
`--peer-listen` the gateway runs alone. The node runs as a gateway service (started inside
`Gateway.serve()`, closed before the store), over `gateway.federation_port`'s adapters.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from federation.certs import load_identity
from federation.config import PeerConfig
from federation.metrics import FederationMetrics
from federation.node import FederationNode
from gateway.app import GatewayRuntime, ServiceFactory
from gateway.config import ConfigError, GatewayConfig, parse_listen
from gateway.federation_port import federation_ports, peer_view
from gateway.service import PeerView


def add_federation_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("federation")
    group.add_argument("--peer-listen", help="HOST:PORT of the mTLS peer listener (enables it)")
    group.add_argument("--tls-dir", type=Path, help="this region's dir from `meshgate certs issue`")
    group.add_argument(
        "--peer", action="append", default=[], help="HOST:PORT of any member (repeatable)"
    )
    group.add_argument("--peer-advertise", help="HOST:PORT other gateways dial (default: listen)")
    group.add_argument(
        "--no-mesh",
        action="store_true",
        help="dial only the --peer addresses, not every member learnt (line, hub and spoke)",
    )


@dataclass(frozen=True)
class FederationSettings:
    peer: PeerConfig
    tls_dir: Path


def federation_settings(args: argparse.Namespace, region: str) -> FederationSettings | None:
    """None when federation is off. Raises ConfigError for inconsistent flags."""
    if not args.peer_listen:
        if args.peer or args.tls_dir:
            raise ConfigError("--peer and --tls-dir need --peer-listen")
        return None
    if not args.tls_dir:
        raise ConfigError("--peer-listen needs --tls-dir (see `meshgate certs issue`)")
    host, port = parse_listen(args.peer_listen)
    try:
        peer = PeerConfig(
            region=region,
            listen_host=host,
            listen_port=port,
            advertise_address=args.peer_advertise or "",
            seeds=tuple(args.peer),
            mesh=not args.no_mesh,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    return FederationSettings(peer=peer, tls_dir=args.tls_dir)


class FederationService:
    """The FederationNode as a gateway service (run / aclose)."""

    def __init__(self, settings: FederationSettings, runtime: GatewayRuntime) -> None:
        log_port, cursors, interest = federation_ports(runtime.store, runtime.interest)
        self.node = FederationNode(
            config=settings.peer,
            identity=load_identity(settings.tls_dir),
            log_port=log_port,
            cursors=cursors,
            interest=interest,
            metrics=FederationMetrics(runtime.metrics.registry),
        )

    async def run(self) -> None:
        await self.node.start()
        await asyncio.Event().wait()  # runs until serve() cancels it

    async def aclose(self) -> None:
        await self.node.aclose()


class FederationParts:
    """The service factory and ListPeers view for `Gateway(services=..., peers=...)`."""

    def __init__(self, settings: FederationSettings) -> None:
        self._settings = settings
        self.service: FederationService | None = None

    def factory(self, runtime: GatewayRuntime) -> FederationService:
        self.service = FederationService(self._settings, runtime)
        return self.service

    def peers(self) -> PeerView:
        if self.service is None:
            return PeerView()
        return peer_view(self.service.node.peers)()

    @property
    def services(self) -> Sequence[ServiceFactory]:
        return (self.factory,)


def federation_parts(
    args: argparse.Namespace, config: GatewayConfig
) -> tuple[Sequence[ServiceFactory], Callable[[], PeerView]]:
    """(services, peers) for the gateway; empty when federation is off."""
    settings = federation_settings(args, config.region)
    if settings is None:
        return (), PeerView
    load_identity(settings.tls_dir)  # fail fast, before the gateway opens its store
    parts = FederationParts(settings)
    return parts.services, parts.peers
