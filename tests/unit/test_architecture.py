"""The architecture, checked: imports point one way, modules stay small, the map is true.

`docs/architecture.md` draws the layers; these tests fail when the code stops matching it.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# What each package may import (besides itself and third-party libraries).
ALLOWED: dict[str, set[str]] = {
    "proto": set(),
    "eventmodel": {"proto"},
    "ledger": set(),
    "policy": {"ledger"},
    "federation": {"proto", "eventmodel"},
    "gateway": {"proto", "eventmodel", "ledger", "policy", "federation"},
    "meshgate": {"proto", "eventmodel", "ledger", "policy", "federation", "gateway"},
}
# The client SDK is what applications import: it must not drag in the server.
# ledger: only meshgate/client/provenance.py, lazily, when a client is given a chain to check
# publishers on (canPublish); the package still imports without web3 loaded.
CLIENT_ALLOWED = {"proto", "eventmodel", "policy", "ledger", "meshgate"}
OURS = {*ALLOWED, "bench", "tests"}
MAX_MODULE_LINES = 400


def _modules(package: str) -> list[Path]:
    return sorted(
        p for p in (REPO / package).rglob("*.py") if not p.name.endswith(("_pb2.py", "_grpc.py"))
    )


def _imported_packages(path: Path) -> set[str]:
    """Top-level packages of ours that `path` imports, anywhere in the file (lazy ones too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found.update(name.split(".")[0] for name in names if name.split(".")[0] in OURS)
    return found


def import_violations(package: str) -> list[str]:
    out = []
    for path in _modules(package):
        rel = path.relative_to(REPO)
        allowed = ALLOWED[package] | {package}
        if rel.parts[:2] == ("meshgate", "client"):
            allowed = CLIENT_ALLOWED
        for imported in sorted(_imported_packages(path) - allowed):
            out.append(f"{rel} imports {imported}")
    return out


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_point_one_way(package: str) -> None:
    assert import_violations(package) == []


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "m.py"
    bad.write_text("def f():\n    from gateway.app import Gateway\n    import meshgate.cli\n")
    assert _imported_packages(bad) == {"gateway", "meshgate"}


def test_modules_stay_small() -> None:
    big = []
    for package in ALLOWED:
        for path in _modules(package):
            lines = len(path.read_text().splitlines())
            if lines > MAX_MODULE_LINES:
                big.append(f"{path.relative_to(REPO)}: {lines} lines")
    assert big == []


# `name` in backticks: a dotted path (module, module.attr or module.Class.attr) or a file path
# with its folder; a bare file name (`errors.py`) names a kind of file, not one file.
_NAME = re.compile(r"`([a-z_]+(?:\.[A-Za-z_][A-Za-z0-9_]*)+|[a-z_]+/[a-z_/]+\.(?:py|proto))`")
_FILE_SUFFIXES = (".py", ".proto", ".md", ".toml", ".json")


def documented_names(text: str) -> list[str]:
    names = set(_NAME.findall(text))
    return sorted(n for n in names if "/" in n or not n.endswith(_FILE_SUFFIXES))


def _resolves(name: str) -> bool:
    if "/" in name:
        return (REPO / name).is_file()
    parts = name.split(".")
    if parts[0] not in ALLOWED:
        return True  # a library name (grpc.aio, asyncio.TaskGroup): not ours to check
    for split in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:split]))
        except ModuleNotFoundError:
            continue
        for attr in parts[split:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def test_every_name_in_the_architecture_doc_exists() -> None:
    names = documented_names((REPO / "docs" / "architecture.md").read_text())
    assert len(names) > 30  # the doc names the functions an event passes
    assert [name for name in names if not _resolves(name)] == []


def test_the_name_checker_catches_a_stale_name() -> None:
    assert _resolves("gateway.app.Gateway")
    assert not _resolves("gateway.app.Gateway.no_such_method")
    assert not _resolves("gateway/no_such_module.py")
