"""GatewayConfig validation and TOML loading."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import GatewayConfig, Retention, build_config, parse_listen
from gateway.errors import ConfigError


def test_toml_then_overrides(tmp_path: Path) -> None:
    path = tmp_path / "gw.toml"
    path.write_text(
        'region = "eu"\nlisten = "127.0.0.1:7000"\ndata_dir = "/tmp/x"\nack_timeout = 5\n'
        "[retention]\nmax_bytes = 100\n[retention.topics.orders]\nmax_age_seconds = 60\n"
    )
    cfg = build_config(path, port=0, region=None)
    assert (cfg.region, cfg.host, cfg.port, cfg.ack_timeout) == ("eu", "127.0.0.1", 0, 5)
    assert cfg.retention_for("other") == Retention(max_bytes=100)
    assert cfg.retention_for("orders") == Retention(max_age_seconds=60)


@pytest.mark.parametrize(
    "text",
    ['region = "eu"\nbogus = 1\n', 'region = "eu"\ndata_dir = "x"\n[retention]\nmax_bytes = -1\n'],
)
def test_bad_files(tmp_path: Path, text: str) -> None:
    path = tmp_path / "gw.toml"
    path.write_text(text)
    with pytest.raises(ConfigError):
        build_config(path)


def test_validation() -> None:
    with pytest.raises(ConfigError):
        GatewayConfig(region="", data_dir=Path("x"))
    with pytest.raises(ConfigError):
        GatewayConfig(region="eu", data_dir=Path("x"), ack_timeout=0)
    with pytest.raises(ConfigError):
        GatewayConfig(region="eu", data_dir=Path("x"), topic_retention={"bad name": Retention()})
    with pytest.raises(ConfigError, match="missing"):
        build_config(region="eu")
    with pytest.raises(ConfigError):
        parse_listen("7000")
    assert parse_listen("127.0.0.1:0") == ("127.0.0.1", 0)
    assert parse_listen("[::1]:7000") == ("::1", 7000)
    assert GatewayConfig(region="eu", data_dir=Path("x"), host="::1", port=7).listen == "[::1]:7"


def test_registry_and_federation_tables_become_flag_defaults(tmp_path: Path) -> None:
    from meshgate.cli import build_parser
    from meshgate.commands.gateway import apply_file_flags

    path = tmp_path / "gw.toml"
    path.write_text(
        'region = "eu"\ndata_dir = "d"\n'
        '[registry]\nrpc = "ws://127.0.0.1:8545"\nregistry = "0xabc"\nstaleness = "500ms"\n'
        '[federation]\npeer_listen = "127.0.0.1:7443"\ntls_dir = "tls"\npeer = "127.0.0.1:7444"\n'
    )
    parser = build_parser(only="gateway")
    args = parser.parse_args(["gateway", "run", "--config", str(path), "--registry", "0xdef"])
    apply_file_flags(args, args.run_parser)
    assert args.rpc == "ws://127.0.0.1:8545"
    assert args.registry == "0xdef"  # the command line wins over the file
    assert args.staleness == 0.5
    assert args.peer_listen == "127.0.0.1:7443"
    assert args.tls_dir == Path("tls")
    assert args.peer == ["127.0.0.1:7444"]
    assert build_config(path).region == "eu"  # the tables do not leak into GatewayConfig


def test_unknown_key_in_a_flag_table_is_refused(tmp_path: Path) -> None:
    from gateway.config import flag_defaults

    path = tmp_path / "gw.toml"
    path.write_text('[federation]\npeers = ["a:1"]\n')
    with pytest.raises(ConfigError, match=r"\[federation\] unknown keys \['peers'\]"):
        flag_defaults(path)
