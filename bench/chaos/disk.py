"""A small tmpfs to play a full disk: mounted for one scenario, always unmounted after.

Needs root (mount(8)); `tmpfs_available()` says whether this machine can, so the scenario is
reported as not run instead of failing elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

SIZE = "48m"  # room for the gateway's database and WAL, filled by a ballast file


def tmpfs_available() -> str | None:
    """None when a tmpfs can be mounted here, else why not."""
    if os.geteuid() != 0:
        return "needs root to mount a tmpfs"
    if shutil.which("mount") is None or shutil.which("umount") is None:
        return "mount/umount not installed"
    return None


@contextlib.contextmanager
def tmpfs(path: Path, size: str = SIZE) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True, timeout=30)
