"""`meshgate keys new|import|address|announce`: keystore files for signing registry changes.

The password comes from MESHGATE_KEY_PASSWORD or a prompt; a private key is never an
argument (`keys import` reads it from stdin or a hidden prompt).

`keys announce` (issue 12) binds the X25519 key derived from the keystore's private key
(policy/encryption_keys.py: the keystore stays the only secret) to its account, by an
`announceKey` transaction from that account; owners seal encrypted topics' epoch keys to
it. Without a change on chain (the same key is already announced) it sends nothing.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
from typing import Any

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

    announce = sub.add_parser(
        "announce", help="put this key's X25519 encryption key on chain (encrypted topics)"
    )
    # The flags of meshgate/commands/chain.py's add_chain_args, declared here: importing that
    # module loads web3 (~0.5 s) for every `keys` action.
    announce.add_argument("--rpc", default=os.environ.get("MESHGATE_RPC"), help="node URL")
    chain_id = os.environ.get("MESHGATE_CHAIN_ID")
    announce.add_argument(
        "--chain-id",
        type=int,
        default=int(chain_id) if chain_id and chain_id.isdigit() else None,
        help="refuse to act on another chain",
    )
    announce.add_argument("--registry", default=os.environ.get("MESHGATE_REGISTRY"))
    announce.add_argument("--key-file", default=os.environ.get("MESHGATE_KEY_FILE"), type=Path)
    announce.set_defaults(func=_announce)


def _light(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--light-kdf",
        action="store_true",
        help="cheap scrypt (N=4096, like geth --lightkdf): for throwaway dev keys only",
    )


def _new(args: argparse.Namespace) -> int:
    from ledger.keys import new_keystore, read_password  # eth-account: in the handlers only

    password = read_password(confirm=True)
    print(new_keystore(args.out, password, light=args.light_kdf))
    return 0


def _import(args: argparse.Namespace) -> int:
    from ledger.keys import parse_private_key, read_password, write_keystore

    interactive = sys.stdin.isatty()
    text = getpass.getpass("Private key (hex): ") if interactive else sys.stdin.readline()
    if not text.strip():
        raise CliError("no private key given on stdin")
    key = parse_private_key(text)
    password = read_password(confirm=True)
    print(write_keystore(args.out, key, password, light=args.light_kdf))
    return 0


def _address(args: argparse.Namespace) -> int:
    from ledger.keys import keystore_address

    print(keystore_address(args.key_file))
    return 0


def _announce(args: argparse.Namespace) -> int:
    # web3 and PyNaCl only for this action: `keys new` stays quick to start.
    from ledger.registry import RegistryClient
    from meshgate.commands.chain import ledger_config, signer_from
    from policy.encryption_keys import derive_x25519

    if not args.registry:
        raise CliError("no registry: pass --registry ADDRESS or set MESHGATE_REGISTRY")
    signer = signer_from(args.key_file)
    client = RegistryClient(ledger_config(args, registry=args.registry), signer)
    public = bytes(derive_x25519(bytes(signer.key)).public_key)
    if client.encryption_key_of(signer.address) == public:
        print(f"X25519 key {public.hex()} of {signer.address} is already on chain")
        return 0
    tx = client.announce_key(public)
    print(
        f"announced X25519 key {public.hex()} for {signer.address}: "
        f"tx {tx.tx_hash} block {tx.block_number}"
    )
    return 0
