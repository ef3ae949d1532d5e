"""Tests start gateways with the product's own launcher (`meshgate.processes`)."""

from meshgate.processes import READY, REPO, GatewayProcess

__all__ = ["READY", "REPO", "GatewayProcess"]
