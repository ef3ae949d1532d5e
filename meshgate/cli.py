"""The `meshgate` command line: one sub-command group per module in `meshgate.commands`.

Each command module exposes `register(subparsers)`, which adds its parsers and sets
`func` on them. User errors print one line to stderr and exit non-zero; tracebacks are
for bugs only (set MESHGATE_DEBUG=1 to see them for user errors too).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

import grpc

from meshgate.errors import MeshgateError

# Sub-command groups, in the order `meshgate --help` lists them.
COMMAND_MODULES = (
    "gateway",
    "client",
    "chain",
    "keys",
    "owner",
    "audit",
    "certs",
    "peers",
    "subscriptions",
    "schema",
)

# Which module registers a top-level command: lets `main` import only what a command needs
# (web3 and siwe take seconds to import; `meshgate certs ...` should not pay for them).
COMMAND_OWNERS = {
    "gateway": "gateway",
    "publish": "client",
    "subscribe": "client",
    "topics": "client",
    "chain": "chain",
    "keys": "keys",
    "owner": "owner",
    "audit": "audit",
    "certs": "certs",
    "peers": "peers",
    "subscriptions": "subscriptions",
    "schema": "schema",
}

EXIT_USER_ERROR = 1
EXIT_USAGE = 2


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser, or with `only` the one command module that owns that command."""
    parser = argparse.ArgumentParser(
        prog="meshgate",
        description="Federated CloudEvents mesh gateway; data owners grant access on chain.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    modules = (COMMAND_OWNERS[only],) if only in COMMAND_OWNERS else COMMAND_MODULES
    for name in modules:
        try:
            module = importlib.import_module(f"meshgate.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"meshgate.commands.{name}":
                continue  # that command group is not built yet
            raise
        module.register(sub)
    return parser


def _user_error_types() -> tuple[type[BaseException], ...]:
    """The base errors of each layer: all are the user's to fix, not bugs."""
    types: list[type[BaseException]] = [MeshgateError]
    for module_name, class_name in (
        ("gateway.errors", "GatewayError"),
        ("eventmodel.errors", "EventModelError"),
        ("ledger.errors", "LedgerError"),
        ("policy.errors", "PolicyError"),
        ("federation.errors", "FederationError"),
    ):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue
        types.append(getattr(module, class_name))
    return tuple(types)


def describe_rpc_error(exc: grpc.RpcError) -> str:
    code = exc.code() if hasattr(exc, "code") else None
    details = exc.details() if hasattr(exc, "details") else str(exc)
    name = code.name if code is not None else "RPC_ERROR"
    if code == grpc.StatusCode.UNAVAILABLE:
        return f"gateway unavailable: {details}"
    return f"{name}: {details}"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(only=argv[0] if argv else None)
    args = parser.parse_args(argv)
    debug = bool(os.environ.get("MESHGATE_DEBUG"))
    try:
        result = args.func(args)
    except KeyboardInterrupt:
        return 130
    except grpc.RpcError as exc:
        if debug:
            raise
        print(f"meshgate: {describe_rpc_error(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except _user_error_types() as exc:
        if debug:
            raise
        print(f"meshgate: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
