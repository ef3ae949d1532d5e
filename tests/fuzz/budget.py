"""How many inputs each fuzz target draws: MESHGATE_FUZZ_EXAMPLES (default 200, `make fuzz`
100000). Slow targets (a gRPC round trip per input) take a documented fraction of it."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

FUZZ_ENV = "MESHGATE_FUZZ_EXAMPLES"
FUZZ_DEFAULT = 200


def examples() -> int:
    raw = os.environ.get(FUZZ_ENV, "")
    return int(raw) if raw.strip().isdigit() else FUZZ_DEFAULT


def fuzz_settings(fraction: float = 1.0) -> settings:
    """Settings for one target: `fraction` of the budget (at least 20), no deadline (shared
    2-core machine), no database (a fuzz run never replays another run's inputs by surprise)."""
    return settings(
        max_examples=max(20, int(examples() * fraction)),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
