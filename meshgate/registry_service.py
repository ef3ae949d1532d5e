"""The on-chain registry as a running part of a gateway process: follower, grant feed, access.

Built by `meshgate.assemble` from `meshgate.settings.RegistrySettings`.

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

import asyncio
import logging
from asyncio import FIRST_COMPLETED
from pathlib import Path

from gateway.grant_feed import GrantFeed
from gateway.registry_access import RegistryAccess
from gateway.view_catch_up import DEFAULT_CATCH_UP_TIMEOUT, ViewCatchUp
from ledger.config import LedgerConfig
from ledger.errors import ChainUnavailable
from ledger.follower import RegistryFollower
from ledger.registry import ChainHead, RegistryClient
from meshgate.settings import RegistrySettings
from policy.access_policy import AccessPolicy, AccessPolicyConfig
from policy.audit import AuditLog, audit_path
from policy.decision import DecisionConfig
from policy.grant_view import GrantView
from policy.identity import SignInConfig
from policy.sessions import load_or_create_secret, session_secret_path

log = logging.getLogger(__name__)

INITIAL_SYNC_TIMEOUT = 60.0  # s; a long history on a slow node, else start failing closed


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
        # Before a denial the adapter catches its view up to the chain head (issue 10).
        access.catch_up = ViewCatchUp(
            ChainHead(settings.ledger).block_number,
            self.feed.wait_synced,
            confirmations=settings.ledger.confirmations,
            timeout=min(DEFAULT_CATCH_UP_TIMEOUT, settings.staleness),
        )
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
        secret = load_or_create_secret(session_secret_path(data_dir))  # sessions outlive restarts
        audit = AuditLog.open(audit_path(data_dir))
        policy = AccessPolicy(config, view=GrantView(), session_secret=secret, audit=audit)
        follower = RegistryFollower(settings.ledger, from_block=settings.from_block)
        follower.start()
        service = cls(settings, RegistryAccess(policy), follower, audit)
        if head is not None:  # the view only ever reaches the blocks under `confirmations`
            await service._initial_sync(head - settings.ledger.confirmations)
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
