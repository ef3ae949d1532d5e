"""The row registry other modules add meshgate-only rows through (bench/families.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from bench import families
from bench.families import FAMILIES, Family, all_families, pubsub_throughput, register
from bench.meshgate_workloads import meshgate_target


def _target(ctx: families.RowContext, family: Family):  # type: ignore[no-untyped-def]
    return meshgate_target(ctx.addr("east"), ctx.addr("west"), window=families.WINDOW)


ROW = Family(
    name="xregion_example",
    title="an example row",
    driver=pubsub_throughput,
    cross_region=True,
    compare=False,
    baseline="xregion_pubsub",
    headline=("events_per_s",),
    concurrency=2,
    batch=100,
    target=_target,
    processes=("east", "west"),
)


@pytest.fixture(autouse=True)
def _clean_registry() -> Iterator[None]:
    saved = list(families._registered)
    yield
    families._registered[:] = saved


def test_a_registered_row_follows_the_standard_families() -> None:
    register(ROW)
    assert all_families() == (*FAMILIES, ROW)


def test_a_row_must_be_new_meshgate_only_with_a_known_baseline_and_a_target() -> None:
    register(ROW)
    with pytest.raises(ValueError, match="already registered"):
        register(ROW)
    with pytest.raises(ValueError, match="meshgate-only"):
        register(replace(ROW, name="other", compare=True))
    with pytest.raises(ValueError, match="unknown baseline"):
        register(replace(ROW, name="other", baseline="nope"))
    with pytest.raises(ValueError, match="target factory"):
        register(replace(ROW, name="other", target=None))


def test_standard_names_are_unique_and_baselines_exist() -> None:
    names = [f.name for f in FAMILIES]
    assert len(names) == len(set(names))
    assert all(f.baseline in names for f in FAMILIES if not f.compare)
