"""Fixtures for the chain layer's tests."""
