"""`python -m bench.chaos [--only NAME ...] [--runs N] [--quick]`: run, then write CHAOS.md."""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.chaos import report
from bench.chaos.cluster import start_chain
from bench.chaos.disk import tmpfs_available
from bench.chaos.runner import FULL, QUICK, Outcome, Params, run_once
from bench.chaos.scenarios import BY_NAME, SCENARIOS
from meshgate.processes import REPO

OUT = Path(__file__).resolve().parents[1] / "CHAOS.md"


async def run_all(
    names: list[str], runs: int, params: Params, work: Path
) -> dict[str, list[Outcome]]:
    results: dict[str, list[Outcome]] = {}
    shared = await asyncio.to_thread(start_chain)
    try:
        for name in names:
            for n in range(runs):
                print(f"==> {name} run {n + 1}/{runs}", flush=True)
                out = await run_once(BY_NAME[name], params, work / f"{name}-{n}", shared)
                v = out.verdict
                summary = out.error or (
                    f"acknowledged={v.acknowledged} LOST={v.lost} DUP={v.dup} "
                    f"after_revoke={v.after_revoke} catch_up={v.catch_up_s}"
                    if v is not None
                    else ""
                )
                print(f"    {out.seconds:.1f}s {summary}", flush=True)
                results.setdefault(name, []).append(out)
    finally:
        shared.chain.stop()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--only", action="append", choices=sorted(BY_NAME), help="repeatable")
    parser.add_argument("--runs", type=int, default=1, help="runs per scenario (default 1)")
    parser.add_argument("--quick", action="store_true", help="the short version (make test)")
    parser.add_argument("--out", type=Path, default=OUT, help=f"report (default {OUT})")
    parser.add_argument("--work", type=Path, default=None, help="keep runs (logs) here")
    parser.add_argument("--revision", default=None, help="code under test (default: git describe)")
    args = parser.parse_args(argv)
    names = args.only or [s.name for s in SCENARIOS]
    why_not = tmpfs_available()
    if why_not and "full-disk" in names:
        print(f"skipping full-disk: {why_not}", file=sys.stderr)
        names.remove("full-disk")
    params = QUICK if args.quick else FULL
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    t0 = time.monotonic()
    if args.work is not None:
        results = asyncio.run(run_all(names, max(1, args.runs), params, args.work))
    else:
        with tempfile.TemporaryDirectory(prefix="meshgate-chaos-") as work:
            results = asyncio.run(run_all(names, max(1, args.runs), params, Path(work)))
    command = "python -m bench.chaos" + "".join(f" --only {n}" for n in args.only or [])
    command += f" --runs {args.runs}" + (" --quick" if args.quick else "")
    revision = args.revision or _revision()
    args.out.write_text(
        report.render(results, params, command=command, started=started, revision=revision,
                      seconds=time.monotonic() - t0) + "\n"
    )  # fmt: skip
    print(f"wrote {args.out}")
    failed = any(o.error or (o.verdict and not o.verdict.ok) for r in results.values() for o in r)
    return 1 if failed else 0


def _revision() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
            capture_output=True, text=True, timeout=10, check=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


if __name__ == "__main__":
    sys.exit(main())
