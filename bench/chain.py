"""The chain the bench's policy workloads need: Ganache plus a freshly deployed registry.

Roles are fixed dev accounts: 0 deploys and owns every bench topic, 1 publishes, 2 reads.
Resource handling: a context manager; leaving it stops Ganache's process group (ledger's
DevChain does the stopping).
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from eth_account import Account

from ledger.config import LedgerConfig
from ledger.devchain import DevChain
from ledger.registry import RegistryClient, deploy_registry


class BenchChain:
    def __init__(self) -> None:
        self.devchain = DevChain(accounts=4)
        self.registry_address = ""
        self.config: LedgerConfig | None = None
        accounts = self.devchain.accounts
        self.owner: Any = Account.from_key(accounts[0].private_key)
        self.publisher: Any = Account.from_key(accounts[1].private_key)
        self.reader: Any = Account.from_key(accounts[2].private_key)

    @property
    def rpc_url(self) -> str:
        return self.devchain.url

    def __enter__(self) -> BenchChain:
        self.devchain.start()
        try:
            base = LedgerConfig(rpc_url=self.devchain.url, chain_id=self.devchain.chain_id)
            self.registry_address, _ = deploy_registry(base, self.owner)
            self.config = LedgerConfig(
                rpc_url=self.devchain.url,
                chain_id=self.devchain.chain_id,
                registry=self.registry_address,
            )
        except BaseException:
            self.devchain.stop()
            raise
        return self

    def owner_client(self) -> RegistryClient:
        if self.config is None:
            raise RuntimeError("the bench chain is not started")
        return RegistryClient(self.config, self.owner)

    def open_topic(self, topic: str) -> None:
        """Register `topic`, let the publisher write and the reader read it."""
        owner = self.owner_client()
        owner.register(topic)
        owner.allow_publisher(topic, self.publisher.address)
        owner.grant(topic, self.reader.address)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.devchain.stop()
