"""Importing the client SDK loads no server layer and no sign-in library (web3, eth-account)."""

from __future__ import annotations

import subprocess
import sys

from tests.support.gateway_process import REPO

PROBE = """
import sys
import meshgate.client
heavy = ("gateway", "federation", "ledger", "policy", "web3", "eth_account")
print(sorted(m for m in sys.modules if m.split(".")[0] in heavy))
"""


def test_the_client_imports_only_eventmodel_and_proto() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
