from __future__ import annotations

import stat
from pathlib import Path

import pytest
from eth_account import Account

from ledger.errors import KeystoreError, WrongKeyPassword
from ledger.keys import (
    keystore_address,
    load_signer,
    new_keystore,
    parse_private_key,
    read_password,
    write_keystore,
)


def test_write_then_load_round_trips(tmp_path: Path) -> None:
    account = Account.create()
    path = tmp_path / "a.json"
    assert write_keystore(path, bytes(account.key), "pw", light=True) == account.address
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keystore_address(path) == account.address
    assert load_signer(path, "pw").key == account.key


def test_wrong_password_and_no_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    address = new_keystore(path, "pw", light=True)
    before = path.read_text()
    with pytest.raises(WrongKeyPassword):
        load_signer(path, "nope")
    with pytest.raises(KeystoreError, match="already exists"):
        new_keystore(path, "pw", light=True)
    assert path.read_text() == before and keystore_address(path) == address


def test_missing_or_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(KeystoreError, match="not found"):
        load_signer(tmp_path / "none.json", "pw")
    (tmp_path / "x.json").write_text('{"hello": 1}')
    with pytest.raises(KeystoreError, match="not a keystore"):
        load_signer(tmp_path / "x.json", "pw")


def test_parse_private_key() -> None:
    key = "ab" * 32
    assert parse_private_key(key) == bytes.fromhex(key)
    assert parse_private_key(" 0x" + key + "\n") == bytes.fromhex(key)
    for bad in ("", "0x1234", "zz" * 32, "ab" * 33):
        with pytest.raises(KeystoreError):
            parse_private_key(bad)


def test_password_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESHGATE_KEY_PASSWORD", "from-env")
    assert read_password(confirm=True) == "from-env"
