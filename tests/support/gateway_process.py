"""Tests start gateways with the product's own launcher (`meshgate.processes`)."""

from meshgate.processes import READY, REPO, GatewayProcess
from tests.support.channels import wait_serving

__all__ = ["READY", "REPO", "GatewayProcess", "start_serving"]


def start_serving(proc: GatewayProcess) -> GatewayProcess:
    """`proc.start()`, then wait (bounded) until its client listener takes a gRPC connection,
    so the test's first call on a fresh channel does not race the gateway's start."""
    proc.start()
    try:
        wait_serving(proc.listen)
    except BaseException:
        proc.stop()
        raise
    return proc
