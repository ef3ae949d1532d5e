"""GatewayConfig validation (the TOML file is read in meshgate/config_file.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import GatewayConfig, Retention, parse_listen
from gateway.errors import ConfigError


def test_validation() -> None:
    with pytest.raises(ConfigError):
        GatewayConfig(region="", data_dir=Path("x"))
    with pytest.raises(ConfigError):
        GatewayConfig(region="eu", data_dir=Path("x"), ack_timeout=0)
    with pytest.raises(ConfigError):
        GatewayConfig(region="eu", data_dir=Path("x"), topic_retention={"bad name": Retention()})
    with pytest.raises(ConfigError):
        parse_listen("7000")
    assert parse_listen("127.0.0.1:0") == ("127.0.0.1", 0)
    assert parse_listen("[::1]:7000") == ("::1", 7000)
    assert GatewayConfig(region="eu", data_dir=Path("x"), host="::1", port=7).listen == "[::1]:7"
