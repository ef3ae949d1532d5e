"""The local chain: deterministic funded accounts, restart on the same database."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from meshgate.devchain import DevChain, rpc_call

pytestmark = pytest.mark.chain


def test_deterministic_accounts_are_the_ones_ganache_funds(dev_chain: DevChain) -> None:
    reported = rpc_call(dev_chain.url, "eth_accounts")
    assert isinstance(reported, list)
    assert [a.address.lower() for a in dev_chain.accounts] == reported
    assert dev_chain.accounts[0].address == "0x90F8bf6A479f320ead074411a4B0e7944Ea8c9C1"
    balance = rpc_call(dev_chain.url, "eth_getBalance", [reported[0], "latest"])
    assert int(str(balance), 16) > 0


def test_restart_keeps_the_chain(chain_factory: Callable[[], DevChain]) -> None:
    chain = chain_factory()
    chain.mine(seconds_forward=60)
    chain.mine()
    before = rpc_call(chain.url, "eth_getBlockByNumber", ["latest", False])
    pid = chain.pid
    chain.restart()
    assert chain.pid != pid
    after = rpc_call(chain.url, "eth_getBlockByNumber", ["latest", False])
    assert isinstance(before, dict) and isinstance(after, dict)
    assert after["hash"] == before["hash"]


def test_stop_kills_the_process_group(chain_factory: Callable[[], DevChain]) -> None:
    chain = chain_factory()
    url = chain.url
    chain.stop()
    assert not chain.running()
    with pytest.raises(OSError):
        rpc_call(url, "eth_chainId", timeout=2.0)
    chain.stop()  # idempotent
