"""`meshgate chain dev|deploy`: run a local Ganache chain; deploy the registry contract.

`chain dev` runs in the foreground until Ctrl-C or SIGTERM and prints one readiness line::

    meshgate chain ready url=http://127.0.0.1:8545 chain_id=1337

followed by the funded accounts. With --keys-dir it writes one keystore per account
(light scrypt: these are Ganache's published dev keys, never use them elsewhere).
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from ledger.config import LedgerConfig
from meshgate.errors import CliError

if TYPE_CHECKING:  # eth-account and web3 load in the handlers only (CLI start, issue 16)
    from eth_account.signers.local import LocalAccount

DEFAULT_DEV_PORT = 8545


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("chain", help="local dev chain and registry deployment")
    sub = parser.add_subparsers(dest="chain_command", metavar="ACTION")
    sub.required = True

    dev = sub.add_parser("dev", help="run a local Ganache chain until Ctrl-C/SIGTERM")
    dev.add_argument("--port", type=int, default=DEFAULT_DEV_PORT, help="0 = pick a free port")
    dev.add_argument("--keys-dir", type=Path, help="write a keystore per funded account here")
    dev.add_argument("--db", type=Path, help="keep the chain in this directory across runs")
    dev.add_argument("--accounts", type=int, default=10, help="funded accounts (default 10)")
    dev.set_defaults(func=_dev)

    deploy = sub.add_parser("deploy", help="deploy the registry contract; prints its address")
    add_chain_args(deploy)
    deploy.add_argument("--key-file", default=os.environ.get("MESHGATE_KEY_FILE"), type=Path)
    deploy.set_defaults(func=_deploy)


def add_chain_args(parser: argparse.ArgumentParser) -> None:
    """--rpc and --chain-id, defaulting to MESHGATE_RPC / MESHGATE_CHAIN_ID."""
    parser.add_argument("--rpc", default=os.environ.get("MESHGATE_RPC"), help="node URL")
    chain_id = os.environ.get("MESHGATE_CHAIN_ID")
    parser.add_argument(
        "--chain-id",
        type=int,
        default=int(chain_id) if chain_id and chain_id.isdigit() else None,
        help="refuse to act on another chain",
    )


def add_registry_args(parser: argparse.ArgumentParser) -> None:
    """The chain args plus --registry and --key-file (MESHGATE_REGISTRY / MESHGATE_KEY_FILE):
    what a command that sends registry transactions takes."""
    add_chain_args(parser)
    parser.add_argument("--registry", default=os.environ.get("MESHGATE_REGISTRY"))
    parser.add_argument("--key-file", default=os.environ.get("MESHGATE_KEY_FILE"), type=Path)


def ledger_config(args: argparse.Namespace, registry: str | None = None) -> LedgerConfig:
    if not args.rpc:
        raise CliError("no chain node: pass --rpc URL or set MESHGATE_RPC")
    try:
        return LedgerConfig(rpc_url=args.rpc, registry=registry, chain_id=args.chain_id)
    except ValueError as exc:
        raise CliError(str(exc)) from exc


def signer_from(key_file: Path | None) -> LocalAccount:
    if key_file is None:
        raise CliError("no key: pass --key-file FILE or set MESHGATE_KEY_FILE")
    from ledger.keys import load_signer, read_password

    return load_signer(key_file, read_password())


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def _dev(args: argparse.Namespace) -> int:
    from ledger.keys import parse_private_key, read_password, write_keystore
    from meshgate.devchain import DEV_CHAIN_ID, DevChain

    chain = DevChain(port=args.port, db_path=args.db, accounts=args.accounts)
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    try:
        chain.start()
        print(f"meshgate chain ready url={chain.url} chain_id={DEV_CHAIN_ID}", flush=True)
        password = read_password() if args.keys_dir else ""
        for i, account in enumerate(chain.accounts):
            line = f"account {i} {account.address}"
            if args.keys_dir is not None:
                path = args.keys_dir / f"account-{i}.json"
                if not path.exists():
                    key = parse_private_key(account.private_key)
                    write_keystore(path, key, password, light=True)
                line += f" keystore={path}"
            print(line, flush=True)
        while chain.running():
            time.sleep(0.2)
        raise CliError("ganache exited unexpectedly")
    except (_Stop, KeyboardInterrupt):
        return 0
    finally:
        chain.stop()
        signal.signal(signal.SIGTERM, previous)


def _deploy(args: argparse.Namespace) -> int:
    from ledger.registry import deploy_registry

    config = ledger_config(args)
    address, tx = deploy_registry(config, signer_from(args.key_file))
    print(address)
    print(f"tx {tx.tx_hash} block {tx.block_number}")
    return 0
