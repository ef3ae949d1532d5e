"""The subscriptions file: atomic saves, a round trip, and loud refusal of a damaged file."""

from __future__ import annotations

import dataclasses
import stat
from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.webhooks.subscription import parse
from gateway.webhooks.subscriptions_file import SubscriptionsFile


def test_round_trip_and_private_mode(tmp_path: Path) -> None:
    f = SubscriptionsFile(tmp_path / "data")
    assert f.load() == []
    subs = [
        parse({"sink": "http://127.0.0.1:1/", "config": {"topic": "t"}}, sub_id=i, owner=o)
        for i, o in (("b", None), ("a", "0xAbC"))
    ]
    subs = [dataclasses.replace(subs[0], start_offset=5), subs[1]]
    f.save(subs)
    assert sorted(f.load(), key=lambda s: s.id) == sorted(subs, key=lambda s: s.id)
    assert stat.S_IMODE(f.path.stat().st_mode) == 0o600
    assert not f.path.with_name(f.path.name + ".tmp").exists()


@pytest.mark.parametrize(
    "text", ["{", "[]", '{"version": 2}', '{"version": 1, "subscriptions": [1]}']
)
def test_damaged_file_refuses_to_load(tmp_path: Path, text: str) -> None:
    f = SubscriptionsFile(tmp_path)
    f.path.write_text(text)
    with pytest.raises(ConfigError, match="malformed"):
        f.load()
