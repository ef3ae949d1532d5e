from __future__ import annotations

import pytest

from ledger.config import LedgerConfig


def test_urls_for_both_transports() -> None:
    http = LedgerConfig(rpc_url="http://127.0.0.1:8545")
    assert http.ws_url == "ws://127.0.0.1:8545" and http.http_url == "http://127.0.0.1:8545"
    wss = LedgerConfig(rpc_url="wss://node.example/v1")
    assert wss.http_url == "https://node.example/v1" and wss.ws_url == "wss://node.example/v1"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rpc_url": "ftp://x"},
        {"rpc_url": "http://x", "confirmations": -1},
        {"rpc_url": "http://x", "poll_interval": 0},
        {"rpc_url": "http://x", "rpc_timeout": -1},
    ],
)
def test_rejects_bad_values(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        LedgerConfig(**kwargs)  # type: ignore[arg-type]


def test_is_frozen() -> None:
    config = LedgerConfig(rpc_url="http://x")
    with pytest.raises(AttributeError):
        config.rpc_url = "http://y"  # type: ignore[misc]
