"""Shared fixtures live in tests/support/*_fixtures.py, one plugin per layer."""

pytest_plugins = [
    "tests.support.common_fixtures",
    "tests.support.chain_fixtures",
    "tests.support.gateway_fixtures",
    "tests.support.federation_fixtures",
    "tests.support.jetstream_fixtures",
]
