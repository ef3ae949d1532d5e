"""Wiring the on-chain registry into a gateway: CLI flags, settings, and the running service.

`meshgate gateway run --rpc URL --registry ADDR [--chain-id N] [--staleness 30s]` (or env
MESHGATE_RPC / MESHGATE_REGISTRY) turns access control on; without a registry the gateway
runs open (gateway.access.OpenAccess logs that loudly).

Start-up order (`RegistryService.open`): check the registry is a contract on the configured
chain, start the ledger follower from block 0 (or --from-block), and hold until the grant
view covers the head seen at start, so the readiness line means "decisions are current". If
the node is unreachable at start the gateway starts anyway, failing closed (everything on
registry topics pauses) until the follower catches up.

Resource handling: `RegistryService.run()` (inside Gateway.serve()'s TaskGroup) feeds the
view and runs the expiry/staleness timer; `aclose()` stops the follower and closes the audit
log; idempotent.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
from asyncio import FIRST_COMPLETED
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gateway.app import Gateway, ServiceFactory
from gateway.config import GatewayConfig
from gateway.errors import ConfigError
from gateway.grant_feed import GrantFeed
from gateway.registry_access import RegistryAccess
from gateway.service import PeerView
from ledger.config import LedgerConfig
from ledger.errors import ChainUnavailable
from ledger.follower import RegistryFollower
from ledger.registry import RegistryClient
from policy.access_policy import AccessPolicy, AccessPolicyConfig
from policy.audit import AuditLog, audit_path
from policy.decision import DEFAULT_STALENESS_BOUND, DecisionConfig
from policy.grant_view import GrantView
from policy.identity import SignInConfig
from policy.sessions import new_secret

log = logging.getLogger(__name__)

RPC_ENV = "MESHGATE_RPC"
REGISTRY_ENV = "MESHGATE_REGISTRY"
INITIAL_SYNC_TIMEOUT = 60.0  # s; a long history on a slow node, else start failing closed
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$")


def parse_duration(text: str) -> float:
    """Seconds from '30', '30s', '2.5s', '500ms' or '1m'."""
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (use e.g. 30s, 500ms)")
    value = float(match[1])
    return value * {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}[match[2]]


def add_registry_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("access control (on-chain registry)")
    group.add_argument("--rpc", help=f"chain node URL, http(s):// or ws(s):// (env {RPC_ENV})")
    group.add_argument("--registry", help=f"registry contract address (env {REGISTRY_ENV})")
    group.add_argument("--chain-id", type=int, help="expected chain id (checked on connect)")
    group.add_argument(
        "--staleness",
        type=parse_duration,
        default=DEFAULT_STALENESS_BOUND,
        help="pause access when the chain is unheard for this long (default 30s)",
    )
    group.add_argument("--from-block", type=int, default=0, help="registry deployment block")
    group.add_argument(
        "--signin-domain", help="domain sign-in messages must name (default meshgate-REGION)"
    )


@dataclass(frozen=True, kw_only=True)
class RegistrySettings:
    ledger: LedgerConfig
    staleness: float
    from_block: int
    domain: str


def registry_settings(args: argparse.Namespace, region: str) -> RegistrySettings | None:
    """Settings from flags (or env); None when no registry is configured (open gateway)."""
    rpc = args.rpc or os.environ.get(RPC_ENV)
    registry = args.registry or os.environ.get(REGISTRY_ENV)
    if not registry:
        if rpc:
            raise ConfigError(f"--rpc given without --registry (or {REGISTRY_ENV})")
        return None
    if not rpc:
        raise ConfigError(f"--registry needs --rpc (or {RPC_ENV})")
    try:
        ledger = LedgerConfig(rpc_url=rpc, registry=registry, chain_id=args.chain_id)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    if args.staleness <= 0:
        raise ConfigError("--staleness must be positive")
    return RegistrySettings(
        ledger=ledger,
        staleness=args.staleness,
        from_block=args.from_block,
        domain=args.signin_domain or f"meshgate-{region}",
    )


class RegistryService:
    """The follower, the grant feed and the adapter's timer, as one gateway service."""

    def __init__(
        self,
        settings: RegistrySettings,
        access: RegistryAccess,
        follower: RegistryFollower,
        audit: AuditLog,
    ) -> None:
        self.settings = settings
        self.access = access
        self.follower = follower
        self.feed = GrantFeed(access, follower)
        self.audit = audit
        self._closed = False

    @classmethod
    async def open(cls, settings: RegistrySettings, data_dir: Path) -> RegistryService:
        """Check the registry, start following it, and wait for the initial sync."""
        try:
            chain_id, head = await asyncio.to_thread(_probe, settings.ledger)
        except ChainUnavailable as exc:
            if settings.ledger.chain_id is None:
                raise
            log.warning("chain unreachable at start (%s): access paused until it answers", exc)
            chain_id, head = settings.ledger.chain_id, None
        config = AccessPolicyConfig(
            signin=SignInConfig(
                domain=settings.domain, uri=f"meshgate://{settings.domain}", chain_id=chain_id
            ),
            decision=DecisionConfig(staleness_bound=settings.staleness),
        )
        audit = AuditLog.open(audit_path(data_dir))
        policy = AccessPolicy(config, view=GrantView(), session_secret=new_secret(), audit=audit)
        follower = RegistryFollower(settings.ledger, from_block=settings.from_block)
        follower.start()
        service = cls(settings, RegistryAccess(policy), follower, audit)
        if head is not None:
            await service._initial_sync(head)
        return service

    async def _initial_sync(self, head: int) -> None:
        """Feed the view until it covers `head`; a follower error (e.g. a configuration
        error it reports) is raised; a slow node only delays start by INITIAL_SYNC_TIMEOUT."""
        feeding = asyncio.create_task(self.feed.run(), name="initial-sync")
        synced = asyncio.create_task(self.feed.wait_synced(head), name="initial-sync-wait")
        try:
            await asyncio.wait(
                (feeding, synced), timeout=INITIAL_SYNC_TIMEOUT, return_when=FIRST_COMPLETED
            )
        finally:
            for task in (feeding, synced):
                task.cancel()
            await asyncio.wait((feeding, synced))
        if not feeding.cancelled() and feeding.exception() is not None:
            raise feeding.exception()  # type: ignore[misc]
        if synced.cancelled():
            log.warning(
                "registry not synced in %.0fs: starting with access paused", INITIAL_SYNC_TIMEOUT
            )
            return
        stats = self.access.policy.view.statistics()
        log.info(
            "registry %s synced to block %d: %d topics, %d grants; access control ON",
            self.settings.ledger.registry,
            head,
            stats.topics,
            stats.grants,
        )

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.feed.run())
            tg.create_task(self.access.run())

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self.follower.aclose()
        finally:
            self.audit.close()


def _probe(config: LedgerConfig) -> tuple[int, int | None]:
    """Chain id and head block, after checking the registry is a contract there (blocking)."""
    client = RegistryClient(config)
    return int(client.w3.eth.chain_id), client.block_number()


async def serve_gateway(
    config: GatewayConfig,
    settings: RegistrySettings | None,
    serve: Callable[[Gateway], Awaitable[None]],
    *,
    services: Sequence[ServiceFactory] = (),
    peers: Callable[[], PeerView] = PeerView,
) -> None:
    """Build the gateway (open, or with registry access control) and `serve` it.

    `services`/`peers`: further parts (federation) passed through to `Gateway`.
    """
    if settings is None:
        await serve(Gateway(config, services=services, peers=peers))
        return
    service = await RegistryService.open(settings, config.data_dir)
    try:
        await serve(
            Gateway(
                config,
                access=service.access,
                services=[lambda runtime: service, *services],
                peers=peers,
            )
        )
    finally:
        await service.aclose()
