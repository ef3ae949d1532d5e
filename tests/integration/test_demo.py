"""`make demo` runs the whole mission end to end; this keeps it working."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from meshgate.processes import REPO


@pytest.mark.timeout(300)
def test_demo_runs_the_story_and_leaves_no_process(tmp_path: Path) -> None:
    work = tmp_path / "demo"
    out = subprocess.run(
        [sys.executable, "-m", "meshgate.demo", "--work", str(work)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "outcome                  : as expected" in out.stdout
    assert "Alice 0 after her revoke" in out.stdout
    # Encrypted end to end (issue 12): the operator finds no plaintext, Alice no later key.
    assert "'sent_at' (in every order's data) in 0" in out.stdout
    assert "keys of epochs [1]; a later order: refused" in out.stdout
    # Every process it started is gone: nothing still holds its data directories open.
    leftovers = subprocess.run(
        ["pgrep", "-f", str(work)], capture_output=True, text=True, check=False
    ).stdout.split()
    assert leftovers == []
