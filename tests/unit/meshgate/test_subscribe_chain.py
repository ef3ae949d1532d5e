"""`meshgate subscribe`: where it checks publishers' rights (--rpc/--registry, env, --no-verify)."""

from __future__ import annotations

import argparse

import pytest

from meshgate.client import Chain
from meshgate.commands.client import _chain
from meshgate.errors import CliError


def args(**kw: object) -> argparse.Namespace:
    return argparse.Namespace(**{"rpc": None, "registry": None, "no_verify": False, **kw})


def test_flags_or_environment_give_the_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MESHGATE_RPC", raising=False)
    monkeypatch.delenv("MESHGATE_REGISTRY", raising=False)
    assert _chain(args()) is None  # signature only
    got = _chain(args(rpc="ws://127.0.0.1:8545", registry="0x" + "ab" * 20))
    assert got == Chain(rpc_url="ws://127.0.0.1:8545", registry="0x" + "ab" * 20)
    monkeypatch.setenv("MESHGATE_RPC", "http://node:8545")
    monkeypatch.setenv("MESHGATE_REGISTRY", "0x" + "cd" * 20)
    assert _chain(args()) == Chain(rpc_url="http://node:8545", registry="0x" + "cd" * 20)
    # --no-verify turns the publisher checks off (subscribe's verify=False), not the chain:
    # an encrypted topic's keys are still checked on it (issue 12).
    assert _chain(args(no_verify=True)) == Chain(
        rpc_url="http://node:8545", registry="0x" + "cd" * 20
    )


def test_half_a_chain_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MESHGATE_RPC", raising=False)
    monkeypatch.delenv("MESHGATE_REGISTRY", raising=False)
    with pytest.raises(CliError, match="needs both --rpc and --registry"):
        _chain(args(rpc="ws://127.0.0.1:8545"))
