"""Fixtures for the gateway layer's tests."""
