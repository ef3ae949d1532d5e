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


def test_the_client_address_in_writer_hints_is_the_advertised_or_a_concrete_listen() -> None:
    def config(host: str, advertise: str = "") -> GatewayConfig:
        return GatewayConfig(region="eu", data_dir=Path("x"), host=host, advertise=advertise)

    assert config("10.0.0.7").client_address(7000) == "10.0.0.7:7000"
    assert config("0.0.0.0").client_address(7000) == ""  # nobody can dial a wildcard
    assert config("::").client_address(7000) == ""
    assert config("0.0.0.0", "eu-1.example.org:7000").client_address(41234) == (
        "eu-1.example.org:7000"
    )
    with pytest.raises(ConfigError):
        config("0.0.0.0", "eu-1.example.org")  # no port


def test_delivery_and_message_limits(tmp_path: Path) -> None:
    from meshgate.config_file import read_config_file

    path = tmp_path / "gw.toml"
    path.write_text(
        'region = "eu"\ndata_dir = "d"\nmax_ack_pending = 5\nmax_redelivery_delay = 60.0\n'
        "max_message_bytes = 2097152\n"
    )
    config = GatewayConfig(**read_config_file(path).gateway)
    assert (config.max_ack_pending, config.max_redelivery_delay) == (5, 60.0)
    assert config.max_message_bytes == 2 * 1024 * 1024
    default = GatewayConfig(region="eu", data_dir=Path("x"))
    assert (default.max_ack_pending, default.max_message_bytes) == (1000, 64 * 1024 * 1024)
    with pytest.raises(ConfigError, match="max_ack_pending"):
        GatewayConfig(region="eu", data_dir=Path("x"), max_ack_pending=0)
    with pytest.raises(ConfigError, match="max_redelivery_delay"):
        GatewayConfig(region="eu", data_dir=Path("x"), max_redelivery_delay=0)
    with pytest.raises(ConfigError, match="one event of the largest size must fit"):
        GatewayConfig(region="eu", data_dir=Path("x"), max_message_bytes=1024 * 1024)
