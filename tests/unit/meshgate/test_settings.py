"""One typed configuration from file, environment and flags (`meshgate.settings`)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from gateway.config import Retention
from meshgate.cli import build_parser
from meshgate.commands.gateway import settings_from_args
from meshgate.config_file import read_config_file
from meshgate.errors import SettingsError
from meshgate.settings import REGISTRY_ENV, RPC_ENV, parse_duration, resolve

ADDRESS = "0x" + "12" * 20
BASE = ("--region", "eu", "--data", "d")


def args(*argv: str) -> argparse.Namespace:
    return build_parser(only="gateway").parse_args(["gateway", "run", *argv])


def settings(*argv: str, env: dict[str, str] | None = None, config: Path | None = None):  # type: ignore[no-untyped-def]
    file = read_config_file(config) if config is not None else None
    return resolve(vars(args(*argv)), env or {}, file)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gw.toml"
    path.write_text(text)
    return path


def test_durations() -> None:
    assert parse_duration("30") == 30
    assert parse_duration("2s") == 2
    assert parse_duration("2.5s") == 2.5
    assert parse_duration("500ms") == 0.5
    assert parse_duration("1m") == 60
    with pytest.raises(SettingsError):
        parse_duration("soon")
    with pytest.raises(SystemExit):  # argparse reports a bad --staleness as a usage error
        args(*BASE, "--staleness", "soon")


def test_open_must_be_chosen() -> None:
    with pytest.raises(SettingsError, match="--open"):
        settings(*BASE)
    opened = settings(*BASE, "--open")
    assert opened.open_access and opened.registry is None


def test_empty_registry_settings_are_errors(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=f"{REGISTRY_ENV} is set but empty"):
        settings(*BASE, env={REGISTRY_ENV: "", RPC_ENV: "http://127.0.0.1:1"})
    with pytest.raises(SettingsError, match=r"\[registry\] is empty"):
        settings(*BASE, config=write(tmp_path, "[registry]\n"))
    with pytest.raises(SettingsError, match="drop --rpc/--registry"):
        settings(*BASE, "--open", "--rpc", "http://127.0.0.1:1", "--registry", ADDRESS)


def test_open_from_the_file(tmp_path: Path) -> None:
    assert settings(*BASE, config=write(tmp_path, "open = true\n")).open_access
    with pytest.raises(SettingsError, match="true or false"):
        settings(*BASE, config=write(tmp_path, 'open = "yes"\n'))


def test_flags_and_env() -> None:
    got = settings(
        *BASE, "--rpc", "http://127.0.0.1:8545", "--registry", ADDRESS, "--staleness", "2s"
    ).registry
    assert got is not None
    assert got.staleness == 2 and got.domain == "meshgate-eu"
    assert got.ledger.registry == ADDRESS and got.ledger.confirmations == 0
    env = {RPC_ENV: "ws://127.0.0.1:8545", REGISTRY_ENV: ADDRESS}
    from_env = settings(
        "--region", "us", "--data", "d", "--chain-id", "1337", "--signin-domain", "gw.example",
        "--confirmations", "12", env=env,
    ).registry  # fmt: skip
    assert from_env is not None
    assert from_env.ledger.rpc_url.startswith("ws://") and from_env.ledger.chain_id == 1337
    assert from_env.domain == "gw.example" and from_env.ledger.confirmations == 12


def test_half_configured_registry_is_an_error() -> None:
    with pytest.raises(SettingsError, match="--rpc"):
        settings(*BASE, "--registry", ADDRESS)
    with pytest.raises(SettingsError, match="--registry"):
        settings(*BASE, "--rpc", "http://127.0.0.1:1")
    with pytest.raises(SettingsError, match="rpc_url"):
        settings(*BASE, "--rpc", "ftp://x", "--registry", ADDRESS)
    with pytest.raises(SettingsError, match="confirmations"):
        settings(*BASE, "--rpc", "http://x:1", "--registry", ADDRESS, "--confirmations", "-1")


def test_toml_then_flags(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'region = "eu"\nlisten = "127.0.0.1:7000"\ndata_dir = "/tmp/x"\nack_timeout = 5\n'
        "open = true\n"
        "[retention]\nmax_bytes = 100\n[retention.topics.orders]\nmax_age_seconds = 60\n",
    )
    cfg = settings("--listen", "127.0.0.1:0", config=path).gateway
    assert (cfg.region, cfg.host, cfg.port, cfg.ack_timeout) == ("eu", "127.0.0.1", 0, 5)
    assert cfg.retention_for("other") == Retention(max_bytes=100)
    assert cfg.retention_for("orders") == Retention(max_age_seconds=60)


def test_the_advertised_address_from_the_file_then_the_flag(tmp_path: Path) -> None:
    path = write(tmp_path, 'region = "eu"\ndata_dir = "/tmp/x"\nopen = true\nadvertise = "f:1"\n')
    assert settings(config=path).gateway.advertise == "f:1"
    assert settings("--advertise", "eu-1:7000", config=path).gateway.advertise == "eu-1:7000"
    with pytest.raises(SettingsError, match="advertise"):
        settings("--advertise", "eu-1", config=path)


@pytest.mark.parametrize(
    "text",
    [
        'region = "eu"\nbogus = 1\n',
        'region = "eu"\ndata_dir = "x"\n[retention]\nmax_bytes = -1\n',
        "region = \n",
        '[federation]\npeers = ["a:1"]\n',
        '[registry]\nrpc = "http://x:1"\nregistri = "0x"\n',
    ],
)
def test_bad_files(tmp_path: Path, text: str) -> None:
    with pytest.raises(SettingsError):
        settings("--open", config=write(tmp_path, text))


def test_missing_settings() -> None:
    with pytest.raises(SettingsError, match="missing configuration: region"):
        settings("--data", "d", "--open")


def test_registry_and_federation_tables(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'region = "eu"\ndata_dir = "d"\n'
        '[registry]\nrpc = "ws://127.0.0.1:8545"\nregistry = "0xabc"\nstaleness = "500ms"\n'
        "confirmations = 3\n"
        '[federation]\npeer_listen = "127.0.0.1:7443"\ntls_dir = "tls"\npeer = "127.0.0.1:7444"\n',
    )
    got = settings("--registry", ADDRESS, config=path)
    assert got.registry is not None and got.federation is not None
    assert got.registry.ledger.rpc_url == "ws://127.0.0.1:8545"
    assert got.registry.ledger.registry == ADDRESS  # the command line wins over the file
    assert got.registry.staleness == 0.5 and got.registry.ledger.confirmations == 3
    assert got.federation.peer.listen_port == 7443 and got.federation.tls_dir == Path("tls")
    assert got.federation.peer.seeds == ("127.0.0.1:7444",)
    assert got.gateway.region == "eu"  # the tables do not leak into GatewayConfig


def test_environment_beats_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, f'[registry]\nrpc = "http://file:1"\nregistry = "{ADDRESS}"\n')
    got = settings(*BASE, env={RPC_ENV: "http://env:1"}, config=path).registry
    assert got is not None and got.ledger.rpc_url == "http://env:1"


def test_federation_flags_need_each_other() -> None:
    with pytest.raises(SettingsError, match="--tls-dir"):
        settings(*BASE, "--open", "--peer-listen", "127.0.0.1:0")
    with pytest.raises(SettingsError, match="need --peer-listen"):
        settings(*BASE, "--open", "--peer", "127.0.0.1:1")
    fed = settings(*BASE, "--open", "--peer-listen", "127.0.0.1:0", "--tls-dir", "t", "--no-mesh")
    assert fed.federation is not None and not fed.federation.peer.mesh


def test_settings_from_args_reads_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'region = "ap"\ndata_dir = "d"\nopen = true\n')
    got = settings_from_args(args("--config", str(path)))
    assert got.gateway.region == "ap" and got.open_access


def test_durability_from_flag_or_file(tmp_path: Path) -> None:
    """`--durability os` (or `durability = "os"` in the file) reaches GatewayConfig; the
    default is fsync; anything else is one clear error."""
    base = {"region": "eu", "data": tmp_path, "open": True}
    assert resolve(base, {}, None).gateway.durability == "fsync"
    assert resolve({**base, "durability": "os"}, {}, None).gateway.durability == "os"
    config = tmp_path / "gw.toml"
    config.write_text('durability = "os"\n')
    assert resolve(base, {}, read_config_file(config)).gateway.durability == "os"
    config.write_text('durability = "sometimes"\n')
    with pytest.raises(SettingsError, match="durability must be fsync or os"):
        resolve(base, {}, read_config_file(config))
