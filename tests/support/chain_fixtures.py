"""Fixtures for the chain layer's tests: a real Ganache process and a deployed registry.

Session-scoped (one per xdist worker): `dev_chain` (running Ganache), `registry` (deployed
once). Function-scoped: `topic_name` (unique per test), `funded_account` (a fresh key with
10 ETH, so tests never share signers), `owner` (a RegistryClient signing as a fresh account),
`chain_factory` (restartable chains with their own database, stopped after the test).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import HTTPProvider, Web3

from ledger.config import LedgerConfig
from ledger.registry import RegistryClient, deploy_registry
from meshgate.devchain import DevChain

FUNDING_WEI = 10 * 10**18


@dataclass(frozen=True)
class DeployedRegistry:
    chain: DevChain
    address: str
    deployer: LocalAccount
    config: LedgerConfig  # HTTP, chain id checked, poll 0.1 s

    def client(self, signer: LocalAccount | None = None) -> RegistryClient:
        return RegistryClient(self.config, signer)


def fund(chain: DevChain, address: str, wei: int = FUNDING_WEI, source: int = 9) -> None:
    """Send `wei` from a deterministic dev account (default the last) to `address`."""
    w3 = Web3(HTTPProvider(chain.url, request_kwargs={"timeout": 30}))
    payer = Account.from_key(chain.accounts[source].private_key)
    tx = {
        "from": payer.address,
        "to": address,
        "value": wei,
        "gas": 21000,
        "maxFeePerGas": 3 * 10**9,
        "maxPriorityFeePerGas": 10**9,
        "nonce": w3.eth.get_transaction_count(payer.address, "pending"),
        "chainId": chain.chain_id,
    }
    tx_hash = w3.eth.send_raw_transaction(payer.sign_transaction(tx).raw_transaction)
    w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)


def deploy(chain: DevChain, deployer_index: int = 0) -> DeployedRegistry:
    deployer = Account.from_key(chain.accounts[deployer_index].private_key)
    config = LedgerConfig(rpc_url=chain.url, chain_id=chain.chain_id, poll_interval=0.1)
    address, _ = deploy_registry(config, deployer)
    return DeployedRegistry(
        chain=chain,
        address=address,
        deployer=deployer,
        config=LedgerConfig(
            rpc_url=chain.url, registry=address, chain_id=chain.chain_id, poll_interval=0.1
        ),
    )


@pytest.fixture(scope="session")
def dev_chain() -> Iterator[DevChain]:
    chain = DevChain()
    try:
        chain.start()
        yield chain
    finally:
        chain.stop()


@pytest.fixture(scope="session")
def registry(dev_chain: DevChain) -> DeployedRegistry:
    return deploy(dev_chain)


_names = itertools.count()


@pytest.fixture
def topic_name() -> str:
    """A topic name no other test (or worker) uses."""
    return f"t-{uuid.uuid4().hex[:12]}-{next(_names)}"


@pytest.fixture
def funded_account(dev_chain: DevChain) -> Callable[[], LocalAccount]:
    """Factory: a fresh random account holding 10 ETH on `dev_chain`."""

    def make() -> LocalAccount:
        account: LocalAccount = Account.create()
        fund(dev_chain, account.address)
        return account

    return make


@pytest.fixture
def owner(registry: DeployedRegistry, funded_account: Callable[[], LocalAccount]) -> RegistryClient:
    """A registry client signing as a fresh funded account."""
    return registry.client(funded_account())


@pytest.fixture
def chain_factory(tmp_path: Path) -> Iterator[Callable[[], DevChain]]:
    """Factory: a running Ganache with its own database (so `restart()` keeps state)."""
    started: list[DevChain] = []

    def make() -> DevChain:
        chain = DevChain(db_path=tmp_path / f"chain-{len(started)}")
        started.append(chain)
        return chain.start()

    try:
        yield make
    finally:
        for chain in started:
            chain.stop()
