"""One short run of every chaos scenario (`bench/chaos`) against real processes, with floors.

Each run: real gateways (access control on a real Ganache registry), a recording publisher and
durable consumers, one fault (kill -9, a partition through the TCP proxy, the chain killed, a
revoke, a full tmpfs), then the pure checker's verdict. Floors: LOST = 0, DUP = 0, after
revoke = 0. Waits are on conditions (so many acknowledged, every witness caught up), bounded.

Scenarios share the worker's chain (`registry` fixture) except chain-restart, which kills its
own; each is its own xdist group so two workers split them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount

from bench.chaos.cluster import ChainHandle
from bench.chaos.disk import tmpfs_available
from bench.chaos.runner import QUICK, run_once
from bench.chaos.scenarios import SCENARIOS, Scenario
from tests.support.chain_fixtures import DeployedRegistry

pytestmark = [pytest.mark.slow, pytest.mark.chain, pytest.mark.timeout(240)]


def _params() -> list[Any]:
    out: list[Any] = []  # pytest.param values
    for s in SCENARIOS:
        marks: list[pytest.MarkDecorator] = [pytest.mark.xdist_group(f"chaos-{s.name}")]
        if s.disk_region is not None and (why := tmpfs_available()):
            marks.append(pytest.mark.skip(reason=f"full disk: {why}"))
        out.append(pytest.param(s, marks=marks, id=s.name))
    return out


@pytest.mark.parametrize("scenario", _params())
async def test_scenario_loses_nothing_and_duplicates_nothing(
    scenario: Scenario,
    tmp_path: Path,
    registry: DeployedRegistry,
    funded_account: Callable[[], LocalAccount],
) -> None:
    shared = ChainHandle(chain=registry.chain, registry=registry.address, owner=funded_account())
    out = await run_once(scenario, QUICK, tmp_path, shared)
    timeline = "\n".join(out.marks)
    assert out.error is None, f"{out.error}\n{timeline}"
    v = out.verdict
    assert v is not None
    assert v.acknowledged >= QUICK.events, timeline  # the run did publish through the fault
    assert v.lost == 0, f"LOST {v.lost} of {v.acknowledged}, e.g. {v.lost_sample}\n{timeline}"
    assert v.dup == 0, f"DUP {v.dup}\n{timeline}"
    assert v.after_revoke == 0, f"{v.after_revoke} deliveries after the revoke\n{timeline}"
    assert not v.failures, f"{v.failures}\n{timeline}"
    assert v.catch_up_s is not None
