import json
from pathlib import Path

import pytest
from eth_account import Account

from ledger.errors import WrongKeyPassword
from policy.errors import KeyFileError
from policy.signin import KEY_PASSWORD_ENV, load_key_file

KEY = "0x" + "07" * 32


def test_hex_key_file(tmp_path: Path) -> None:
    path = tmp_path / "k"
    path.write_text(KEY + "\n")
    assert load_key_file(path).address == Account.from_key(KEY).address


def test_keystore_with_password_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "k.json"
    path.write_text(json.dumps(Account.encrypt(KEY, "pw", iterations=2)))
    monkeypatch.delenv(KEY_PASSWORD_ENV, raising=False)
    with pytest.raises(KeyFileError, match=KEY_PASSWORD_ENV):
        load_key_file(path)
    monkeypatch.setenv(KEY_PASSWORD_ENV, "wrong")
    with pytest.raises(WrongKeyPassword):
        load_key_file(path)
    monkeypatch.setenv(KEY_PASSWORD_ENV, "pw")
    assert load_key_file(path).address == Account.from_key(KEY).address


def test_missing_and_garbage_files(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot read"):
        load_key_file(tmp_path / "absent")
    (tmp_path / "g").write_text("not a key")
    with pytest.raises(KeyFileError, match="neither"):
        load_key_file(tmp_path / "g")
