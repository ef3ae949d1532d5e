"""`--store nats://...` and `[store]` into StoreSettings (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshgate.config_file import read_config_file
from meshgate.errors import SettingsError
from meshgate.settings import StoreSettings, parse_store_url, resolve

FLAGS = {"region": "eu", "data": "/tmp/x", "open": True}


def test_store_url_lists_every_server() -> None:
    assert parse_store_url("nats://a:4222,b:4223") == ("nats://a:4222", "nats://b:4223")
    assert parse_store_url("nats://127.0.0.1:4222") == ("nats://127.0.0.1:4222",)


@pytest.mark.parametrize("bad", ["sqlite:///x", "nats://a", "nats://a:0", "nats://a:4222,"])
def test_bad_store_urls_are_one_line_errors(bad: str) -> None:
    with pytest.raises(SettingsError, match="--store"):
        parse_store_url(bad)


def test_without_store_the_gateway_keeps_sqlite() -> None:
    assert resolve(FLAGS, {}, None).store is None


def test_flag_and_table(tmp_path: Path) -> None:
    conf = tmp_path / "gw.toml"
    conf.write_text('open = true\n[store]\nurl = "nats://a:1,b:2"\nreplicas = 1\n')
    file = read_config_file(conf)
    assert resolve(FLAGS, {}, file).store == StoreSettings(
        servers=("nats://a:1", "nats://b:2"), replicas=1
    )
    flagged = resolve({**FLAGS, "store": "nats://c:3"}, {}, file).store
    assert flagged == StoreSettings(servers=("nats://c:3",), replicas=1)
    conf.write_text("open = true\n[store]\nreplicas = 3\n")
    with pytest.raises(SettingsError, match=r"\[store\] needs url"):
        resolve(FLAGS, {}, read_config_file(conf))
