"""Fixtures every layer's tests may use."""
