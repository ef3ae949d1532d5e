"""The client builds StartPosition itself (no gateway import): every accepted form, and refusals."""

from __future__ import annotations

import datetime as dt

import pytest

from meshgate.client.positions import start_position
from proto import gateway_pb2

SP = gateway_pb2.StartPosition


def test_named_offsets_and_times() -> None:
    assert start_position("earliest").kind == SP.EARLIEST
    assert start_position("latest").kind == SP.LATEST
    assert (start_position("42").kind, start_position("42").offset) == (SP.OFFSET, 42)
    assert (start_position(7).kind, start_position(7).offset) == (SP.OFFSET, 7)
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    for form in (when, "2026-01-02T03:04:05Z", "2026-01-02T04:04:05+01:00", "2026-01-02T03:04:05"):
        pb = start_position(form)
        assert pb.kind == SP.TIME and pb.time.ToDatetime(tzinfo=dt.UTC) == when
    given = SP(kind=SP.LATEST)
    assert start_position(given) is given


@pytest.mark.parametrize("bad", ["soon", "", -1, True])
def test_unknown_forms_are_value_errors(bad: object) -> None:
    with pytest.raises(ValueError, match="invalid start"):
        start_position(bad)  # type: ignore[arg-type]
