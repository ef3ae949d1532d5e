"""The one error -> status table: most specific class wins, unknown errors have none."""

from __future__ import annotations

import grpc

from gateway import errors
from gateway.status import status_for
from policy import errors as policy_errors


def test_most_specific_wins() -> None:
    assert status_for(errors.EventTooLarge("x")) == grpc.StatusCode.INVALID_ARGUMENT
    assert status_for(errors.TopicNotFound("x")) == grpc.StatusCode.NOT_FOUND
    assert status_for(errors.GatewayClosing("x")) == grpc.StatusCode.UNAVAILABLE
    assert status_for(errors.RegistryNotConfigured("x")) == grpc.StatusCode.FAILED_PRECONDITION
    assert status_for(policy_errors.SessionInvalid("x")) == grpc.StatusCode.UNAUTHENTICATED
    assert status_for(policy_errors.AccessPaused("x", "y")) == grpc.StatusCode.UNAVAILABLE


def test_unknown_errors_have_no_code() -> None:
    assert status_for(RuntimeError("boom")) is None
    assert status_for(errors.StoreError("disk")) is None  # INTERNAL, details hidden


def test_store_failures_are_not_internal() -> None:
    assert status_for(errors.StoreFull("store full")) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert status_for(errors.StoreUnavailable("io")) == grpc.StatusCode.UNAVAILABLE
