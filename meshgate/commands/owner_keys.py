"""The key side of `meshgate owner ...` on encrypted topics (issue 12; flows in
meshgate/key_custody.py).

What each owner command does to the keys of an encrypted topic, after its own transaction:

    register --encrypted   announce the owner's X25519 key if missing, create epoch 1
    rotate                 a new epoch (fresh key) for today's grantees and publishers
    grant [--history]      re-issue the current epoch (every earlier one with --history)
    allow-publisher        re-issue the current epoch (the publisher needs its key)
    revoke, deny-publisher rotate: the removed address gets no later key
    transfer               a note: the new owner must rotate (its key sets are the valid ones)

Key sets reach the mesh through one gateway (`--gateway HOST:PORT` or MESHGATE_GATEWAY).
On an encrypted topic a change that needs it is refused before any transaction is sent
when no gateway is given or it does not answer, so a revoke never lands without its rotation.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from meshgate.errors import CliError
from meshgate.key_set_port import GatewayKeySets

if TYPE_CHECKING:  # web3 and the key custody load in the handlers only (CLI start, issue 16)
    from ledger.registry import RegistryClient
    from meshgate.key_custody import Issued, KeyCustody, Registered

# owner action -> what follows it on an encrypted topic
ROTATES = {"revoke", "deny-publisher"}
REISSUES = {"grant", "allow-publisher"}


def require_gateway(args: argparse.Namespace, topic: str, why: str) -> str:
    if not args.gateway:
        raise CliError(
            f"topic {topic!r} is encrypted: {why} needs --gateway HOST:PORT (or "
            "MESHGATE_GATEWAY) to deliver the key set; nothing was sent"
        )
    return str(args.gateway)


TRANSFER_NOTE = (
    "note: {topic!r} is encrypted and its key sets are signed by the old owner, which readers no "
    "longer accept: the new owner must run `meshgate owner rotate {topic}` (and grant again) "
    "before anyone reads events published from now on; events published before stay unreadable "
    "to whoever fetches keys anew"
)


def key_work(args: argparse.Namespace, client: RegistryClient, action: str) -> bool:
    """True when `action` on args.topic must be followed by key work (checked up front)."""
    if action not in ROTATES | REISSUES or not client.is_encrypted(args.topic):
        return False
    follow = "a new key epoch" if action in ROTATES else "a re-issue of the key"
    require_gateway(args, args.topic, f"{action} (followed by {follow})")
    with GatewayKeySets(args.gateway) as port:
        port.check_reachable()
    return True


@contextlib.contextmanager
def custody(args: argparse.Namespace, client: RegistryClient) -> Iterator[KeyCustody]:
    assert client.signer is not None
    with GatewayKeySets(args.gateway) as port:
        port.check_reachable()
        from meshgate.key_custody import KeyCustody

        yield KeyCustody(client, client.signer, port)


def follow_up(args: argparse.Namespace, client: RegistryClient, action: str) -> None:
    """The key work after `action`'s transaction was mined (key_work said it is needed)."""
    with custody(args, client) as keys:
        if action in ROTATES:
            print_issued(keys.rotate(args.topic), why=f"{action} on an encrypted topic")
            return
        history = bool(getattr(args, "history", False))
        done = keys.reissue(args.topic, args.address, history=history)
        for issued in done.issued:
            print_issued(issued, why=f"{action}: re-issued")
        if done.skipped is not None:
            s = done.skipped
            print(
                f"no key for {s.address}: {s.reason} (after `meshgate keys announce` as "
                f"{s.address}, run `meshgate owner {action}` again)"
            )
        if done.already:
            epochs = ", ".join(map(str, done.already))
            print(f"{args.address} already holds the key of epoch {epochs}")


def register_encrypted(args: argparse.Namespace, client: RegistryClient) -> int:
    with custody(args, client) as keys:
        done: Registered = keys.register_encrypted(args.topic)
    tx = done.register_tx
    print(f"registered {args.topic!r} (encrypted): tx {tx.tx_hash} block {tx.block_number}")
    if done.announce_tx is not None:
        a = done.announce_tx
        print(f"announced the owner's X25519 key: tx {a.tx_hash} block {a.block_number}")
    print_issued(done.first, why="first epoch")
    return 0


def rotate(args: argparse.Namespace, client: RegistryClient) -> int:
    if not client.is_encrypted(args.topic):
        raise CliError(f"topic {args.topic!r} is not encrypted: nothing to rotate")
    require_gateway(args, args.topic, "rotate")
    with custody(args, client) as keys:
        print_issued(keys.rotate(args.topic), why="rotated")
    return 0


def print_issued(issued: Issued, *, why: str) -> None:
    """One line for the key set, one per recipient and per skipped member."""
    from ledger.names import checksum_address

    tx = issued.tx
    print(
        f"key epoch {issued.epoch} of {issued.topic!r} ({why}): sealed to "
        f"{len(issued.recipients)}: tx {tx.tx_hash} block {tx.block_number}"
    )
    for address, role in sorted(issued.recipients.items(), key=lambda kv: (kv[1], kv[0])):
        print(f"  sealed to  {checksum_address(address)} ({role})")
    for s in issued.skipped:
        print(f"  skipped    {s.address} ({s.role}): {s.reason}")
