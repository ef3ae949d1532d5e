"""`meshgate subscribe --filter`: both forms, and hostile input as one clear error."""

from __future__ import annotations

import json

import pytest

from eventmodel.errors import FilterTooComplex
from eventmodel.filters import Exact, Not, Prefix
from meshgate.commands.client import parse_filter
from meshgate.errors import CliError


def test_both_forms() -> None:
    assert parse_filter("exact:type=com.example.a") == Exact("type", "com.example.a")
    assert parse_filter('{"not": {"prefix": {"type": "x."}}}') == Not(Prefix("type", "x."))


def test_bad_and_hostile_filters() -> None:
    with pytest.raises(CliError, match="use exact"):
        parse_filter("regex:type=.*")
    with pytest.raises(CliError, match="nested too deeply"):
        parse_filter('{"not": ' * 100_000 + "{}" + "}" * 100_000)
    deep = {"exact": {"type": "x"}}
    for _ in range(40):
        deep = {"not": deep}
    with pytest.raises(FilterTooComplex, match="deeper than 32"):
        parse_filter(json.dumps(deep))
