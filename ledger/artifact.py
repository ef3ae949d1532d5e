"""The compiled registry (ABI + bytecode), loaded from the committed artifact.

`make contracts` (contracts/compile.js, npm solc) writes `ledger/artifacts/MeshgateRegistry.json`;
running meshgate needs no compiler. A test recompiles and compares to catch a stale artifact.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from ledger.errors import ArtifactError

ARTIFACT_NAME = "MeshgateRegistry.json"


@dataclass(frozen=True)
class ContractArtifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    solc_version: str
    source_sha256: str


@cache
def registry_artifact() -> ContractArtifact:
    """Load (once) the committed registry artifact."""
    try:
        raw = resources.files("ledger").joinpath("artifacts", ARTIFACT_NAME).read_text("utf-8")
        data = json.loads(raw)
        return ContractArtifact(
            name=data["contractName"],
            abi=data["abi"],
            bytecode=data["bytecode"],
            solc_version=data["compiler"]["version"],
            source_sha256=data["sourceSha256"],
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"registry artifact unreadable ({exc}); run `make contracts`") from exc
