"""The CLI starts fast (issue 16): building its parsers, and a client without a key file, import
none of the heavy libraries (sign-in, web3, eth-account, OpenTelemetry, the gateway).

Asserted on imports, never on wall time: those libraries are what made `meshgate --help` take
seconds, and a test of speed would pass or fail with the machine's load.
"""

from __future__ import annotations

import subprocess
import sys

from tests.support.gateway_process import REPO

HEAVY = ("siwe", "web3", "eth_account", "eth_utils", "opentelemetry", "gateway.app", "aiohttp")

PROBE = """
import argparse, sys
from meshgate.cli import build_parser
from meshgate.commands import client

build_parser()  # meshgate --help builds every command's parser
for argv in (
    ["publish", "--gateway", "127.0.0.1:1", "--topic", "t", "--type", "x", "--source", "/s"],
    ["subscribe", "--gateway", "127.0.0.1:1", "--topic", "t"],
):
    args = build_parser(argv[0]).parse_args(argv)
    client._client(args, args.topic)  # no key file: no sign-in library
heavy = {heavy!r}
print(sorted({{h for m in sys.modules for h in heavy if m == h or m.startswith(h + ".")}}))
"""


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def test_the_parsers_and_a_keyless_client_import_no_heavy_library() -> None:
    out = run(PROBE.format(heavy=HEAVY))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_meshgate_help_lists_every_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "meshgate", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    for command in ("gateway", "publish", "subscribe", "owner", "schema", "certs", "audit"):
        assert command in out.stdout
