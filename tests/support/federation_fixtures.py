"""Fixtures for the federation layer's tests."""
