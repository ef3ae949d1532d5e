"""The committed artifact matches the contract source (recompiles with npm solc)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from ledger.artifact import registry_artifact

ROOT = Path(__file__).resolve().parents[3]
SOURCE = ROOT / "contracts" / "MeshgateRegistry.sol"


def test_artifact_hash_matches_source() -> None:
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()
    assert registry_artifact().source_sha256 == digest, "stale artifact: run `make contracts`"
    assert registry_artifact().solc_version.startswith("0.8.37")


@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")
def test_recompiling_gives_the_committed_artifact(tmp_path: Path) -> None:
    out = tmp_path / "fresh.json"
    subprocess.run(
        ["node", str(ROOT / "contracts" / "compile.js"), "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    fresh = json.loads(out.read_text())
    committed = json.loads((ROOT / "ledger" / "artifacts" / "MeshgateRegistry.json").read_text())
    assert fresh == committed, "stale artifact: run `make contracts` and commit it"
