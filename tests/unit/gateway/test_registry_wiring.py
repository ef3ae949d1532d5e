import argparse

import pytest

from gateway.errors import ConfigError
from gateway.registry_wiring import (
    REGISTRY_ENV,
    RPC_ENV,
    add_registry_arguments,
    parse_duration,
    registry_settings,
)

ADDRESS = "0x" + "12" * 20


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_registry_arguments(parser)
    return parser.parse_args(argv)


def test_durations() -> None:
    assert parse_duration("30") == 30
    assert parse_duration("2s") == 2
    assert parse_duration("2.5s") == 2.5
    assert parse_duration("500ms") == 0.5
    assert parse_duration("1m") == 60
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration("soon")


def test_no_registry_means_open(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(RPC_ENV, raising=False)
    monkeypatch.delenv(REGISTRY_ENV, raising=False)
    assert registry_settings(parse(), "eu") is None


def test_flags_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(RPC_ENV, raising=False)
    monkeypatch.delenv(REGISTRY_ENV, raising=False)
    settings = registry_settings(
        parse("--rpc", "http://127.0.0.1:8545", "--registry", ADDRESS, "--staleness", "2s"), "eu"
    )
    assert settings is not None
    assert settings.staleness == 2 and settings.domain == "meshgate-eu"
    assert settings.ledger.registry == ADDRESS
    monkeypatch.setenv(RPC_ENV, "ws://127.0.0.1:8545")
    monkeypatch.setenv(REGISTRY_ENV, ADDRESS)
    from_env = registry_settings(parse("--chain-id", "1337", "--signin-domain", "gw.example"), "us")
    assert from_env is not None
    assert from_env.ledger.rpc_url.startswith("ws://") and from_env.ledger.chain_id == 1337
    assert from_env.domain == "gw.example"


def test_half_configured_registry_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(RPC_ENV, raising=False)
    monkeypatch.delenv(REGISTRY_ENV, raising=False)
    with pytest.raises(ConfigError, match="--rpc"):
        registry_settings(parse("--registry", ADDRESS), "eu")
    with pytest.raises(ConfigError, match="--registry"):
        registry_settings(parse("--rpc", "http://127.0.0.1:1"), "eu")
    with pytest.raises(ConfigError, match="rpc_url"):
        registry_settings(parse("--rpc", "ftp://x", "--registry", ADDRESS), "eu")
