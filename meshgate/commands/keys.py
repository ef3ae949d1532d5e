"""`meshgate keys new|import|address`: encrypted keystore files for signing registry changes.

The password comes from MESHGATE_KEY_PASSWORD or a prompt; a private key is never an
argument (`keys import` reads it from stdin or a hidden prompt).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

from ledger.keys import (
    keystore_address,
    new_keystore,
    parse_private_key,
    read_password,
    write_keystore,
)
from meshgate.errors import CliError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("keys", help="create and import Ethereum keystore files")
    sub = parser.add_subparsers(dest="keys_command", metavar="ACTION")
    sub.required = True

    new = sub.add_parser("new", help="create a new random key; prints its address")
    new.add_argument("--out", required=True, type=Path, help="keystore file to create")
    _light(new)
    new.set_defaults(func=_new)

    imp = sub.add_parser("import", help="encrypt an existing private key (stdin or prompt)")
    imp.add_argument("--out", required=True, type=Path, help="keystore file to create")
    _light(imp)
    imp.set_defaults(func=_import)

    addr = sub.add_parser("address", help="print a keystore's address (no password needed)")
    addr.add_argument("key_file", type=Path)
    addr.set_defaults(func=_address)


def _light(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--light-kdf",
        action="store_true",
        help="cheap scrypt (N=4096, like geth --lightkdf): for throwaway dev keys only",
    )


def _new(args: argparse.Namespace) -> int:
    password = read_password(confirm=True)
    print(new_keystore(args.out, password, light=args.light_kdf))
    return 0


def _import(args: argparse.Namespace) -> int:
    interactive = sys.stdin.isatty()
    text = getpass.getpass("Private key (hex): ") if interactive else sys.stdin.readline()
    if not text.strip():
        raise CliError("no private key given on stdin")
    key = parse_private_key(text)
    password = read_password(confirm=True)
    print(write_keystore(args.out, key, password, light=args.light_kdf))
    return 0


def _address(args: argparse.Namespace) -> int:
    print(keystore_address(args.key_file))
    return 0
