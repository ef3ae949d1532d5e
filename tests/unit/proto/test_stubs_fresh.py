"""The committed pb2 stubs must be what `make proto` generates from the .proto files."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PROTOS = sorted((ROOT / "proto").glob("*.proto"))
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def test_committed_stubs_match_the_proto_files(tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    plugins = {name: bin_dir / name for name in ("protoc-gen-mypy", "protoc-gen-mypy_grpc")}
    if not all(path.exists() for path in plugins.values()):
        pytest.fail("mypy-protobuf plugins missing: run `make setup`")
    work = tmp_path / "proto"
    work.mkdir()
    for proto in PROTOS:
        shutil.copy(proto, work / proto.name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I",
            str(tmp_path),
            f"--python_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            f"--plugin=protoc-gen-mypy={plugins['protoc-gen-mypy']}",
            f"--mypy_out={tmp_path}",
            f"--plugin=protoc-gen-mypy_grpc={plugins['protoc-gen-mypy_grpc']}",
            f"--mypy_grpc_out={tmp_path}",
            *(f"proto/{p.name}" for p in PROTOS),
        ],
        check=True,
        capture_output=True,
    )
    stale = []
    for proto in PROTOS:
        for suffix in GENERATED_SUFFIXES:
            name = proto.stem + suffix
            fresh = (work / name).read_text()
            committed = ROOT / "proto" / name
            if not committed.exists() or committed.read_text() != fresh:
                stale.append(name)
    assert not stale, f"stale generated stubs, run `make proto`: {stale}"
