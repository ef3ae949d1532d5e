"""The chain the bench's policy workloads need: Ganache plus a freshly deployed registry.

Roles are fixed dev accounts: 0 deploys and owns every bench topic, 1 publishes, 2 reads.
Resource handling: a context manager; leaving it stops Ganache's process group (ledger's
DevChain does the stopping).
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

from eth_account import Account

from ledger.config import LedgerConfig
from ledger.registry import RegistryClient, deploy_registry
from meshgate.devchain import DevChain


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

    def revoke_timed(self, topic: str, reader: str) -> tuple[int, int]:
        """Revoke `reader`, timing only the submission: (sent_ns, mined_ns), monotonic.

        Building and signing happen before `sent_ns`. Ganache (instamine "eager") mines a
        transaction before `eth_sendRawTransaction` returns, so mining lies within
        [sent_ns, mined_ns]; the receipt is checked afterwards, outside the window.
        """
        client = self.owner_client()
        w3 = client.w3
        tx = client.contract.functions.revoke(topic, reader).build_transaction(
            {
                "from": self.owner.address,
                "nonce": w3.eth.get_transaction_count(self.owner.address, "pending"),
                "chainId": w3.eth.chain_id,
            }
        )
        tx["gas"] = int(tx["gas"] * 2)
        signed = self.owner.sign_transaction(tx)
        sent_ns = time.monotonic_ns()
        tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
        mined_ns = time.monotonic_ns()
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
        if receipt["status"] != 1:
            raise RuntimeError(f"revoke {tx_hash.to_0x_hex()} reverted")
        return sent_ns, mined_ns

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.devchain.stop()
