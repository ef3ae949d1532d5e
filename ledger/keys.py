"""Encrypted keystore files (Web3 Secret Storage, via eth-account) and their passwords.

A private key never appears on a command line: it is read from a keystore file whose
password comes from `MESHGATE_KEY_PASSWORD` or an interactive prompt.
"""

from __future__ import annotations

import getpass
import json
import os
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger.errors import KeystoreError, WrongKeyPassword
from ledger.names import checksum_address

PASSWORD_ENV = "MESHGATE_KEY_PASSWORD"
STANDARD_SCRYPT_N = 262144  # eth-account/geth default: ~1 s to decrypt
LIGHT_SCRYPT_N = 4096  # geth's --lightkdf: for throwaway dev keys


def read_password(*, confirm: bool = False, prompt: str = "Keystore password: ") -> str:
    """The keystore password from MESHGATE_KEY_PASSWORD, else a (confirmed) prompt."""
    from_env = os.environ.get(PASSWORD_ENV)
    if from_env is not None:
        return from_env
    try:
        password = getpass.getpass(prompt)
        if confirm and getpass.getpass("Repeat password: ") != password:
            raise KeystoreError("passwords do not match")
    except EOFError as exc:
        raise KeystoreError(f"no password: set {PASSWORD_ENV} or run interactively") from exc
    return password


def parse_private_key(text: str) -> bytes:
    """Accept 64 hex digits with or without 0x; raise KeystoreError otherwise."""
    value = text.strip()
    value = value[2:] if value.lower().startswith("0x") else value
    try:
        key = bytes.fromhex(value)
    except ValueError as exc:
        raise KeystoreError("private key must be 64 hex digits") from exc
    if len(key) != 32:
        raise KeystoreError("private key must be 64 hex digits")
    return key


def write_keystore(path: Path, private_key: bytes, password: str, *, light: bool = False) -> str:
    """Encrypt `private_key` into a new file at `path` (mode 0600); return its address.

    Refuses to overwrite an existing file (a lost key cannot be recovered).
    """
    account = Account.from_key(private_key)
    n = LIGHT_SCRYPT_N if light else STANDARD_SCRYPT_N
    document = Account.encrypt(private_key, password, kdf="scrypt", iterations=n)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise KeystoreError(f"{path} already exists; not overwriting a key") from exc
    except OSError as exc:
        raise KeystoreError(f"cannot write {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "w") as handle:
        json.dump(document, handle)
    return str(account.address)


def new_keystore(path: Path, password: str, *, light: bool = False) -> str:
    """Create a fresh random key in a keystore file; return its address."""
    return write_keystore(path, bytes(Account.create().key), password, light=light)


def keystore_address(path: Path) -> str:
    """The address recorded in a keystore (no password needed)."""
    return checksum_address(_read(path)[1])


def _read(path: Path) -> tuple[dict[str, Any], str]:
    try:
        document = json.loads(Path(path).read_text("utf-8"))
    except FileNotFoundError as exc:
        raise KeystoreError(f"keystore not found: {path}") from exc
    except (OSError, ValueError) as exc:
        raise KeystoreError(f"keystore unreadable: {path}") from exc
    if not isinstance(document, dict) or "crypto" not in document:
        raise KeystoreError(f"not a keystore file: {path}")
    address = str(document.get("address", ""))
    return document, ("0x" + address if address and not address.startswith("0x") else address)


def load_signer(path: Path, password: str) -> LocalAccount:
    """Decrypt a keystore; raises WrongKeyPassword or KeystoreError."""
    document, _ = _read(path)
    try:
        key = Account.decrypt(document, password)
    except ValueError as exc:
        if "MAC mismatch" in str(exc):
            raise WrongKeyPassword(f"wrong password for keystore {path}") from exc
        raise KeystoreError(f"keystore {path} cannot be decrypted: {exc}") from exc
    signer: LocalAccount = Account.from_key(key)
    return signer
