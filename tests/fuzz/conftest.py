"""Fuzz targets (`make fuzz`; a short run is part of `make test`): see tests/fuzz/budget.py."""
