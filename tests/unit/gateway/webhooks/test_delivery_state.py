"""WebhookDelivery: retries, backoff, 429, 410, dead letters, rate spacing (pure, no loop)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.webhooks.delivery_state import (
    Ack,
    Action,
    DeadLetter,
    Outcome,
    Phase,
    Post,
    RetryPolicy,
    Unsubscribe,
    WaitUntil,
    WebhookDelivery,
    backoff,
    classify,
    parse_retry_after,
)

NO_JITTER = RetryPolicy(max_attempts=4, initial_backoff=1.0, max_backoff=5.0, jitter=0.0)


def test_classify() -> None:
    assert classify(200) is classify(204) is Outcome.DELIVERED
    assert classify(410) is Outcome.GONE
    assert classify(429) is Outcome.THROTTLED
    assert classify(400) is classify(415) is Outcome.REJECTED
    for status in (None, 301, 302, 307, 404, 408, 500, 503):
        assert classify(status) is Outcome.RETRY


def test_delivered_first_time_is_acked() -> None:
    d = WebhookDelivery(NO_JITTER)
    assert d.batch_ready([3, 4], now=0) == [Post((3, 4), 1)]
    assert d.post_result(202, None, now=0.1) == [Ack((3, 4))]
    assert d.phase is Phase.IDLE


def test_failures_back_off_exponentially_up_to_the_cap_then_dead_letter() -> None:
    policy = RetryPolicy(max_attempts=6, initial_backoff=1.0, max_backoff=5.0, jitter=0.0)
    d = WebhookDelivery(policy)
    now = 0.0
    assert d.batch_ready([7], now) == [Post((7,), 1)]
    waits = []
    for attempt in range(2, 7):
        (wait,) = d.post_result(503, None, now)
        assert isinstance(wait, WaitUntil)
        waits.append(wait.at - now)
        assert d.tick(wait.at - 0.01) == []  # not yet
        now = wait.at
        assert d.tick(now) == [Post((7,), attempt)]
    assert waits == [1.0, 2.0, 4.0, 5.0, 5.0]
    actions = d.post_result(None, None, now)
    assert actions == [
        DeadLetter((7,), "6 attempts failed, last no answer"),
        Ack((7,), delivered=False),
    ]
    assert d.phase is Phase.IDLE


def test_429_waits_retry_after_not_backoff() -> None:
    d = WebhookDelivery(NO_JITTER)
    d.batch_ready([1], now=10)
    assert d.post_result(429, 30.0, now=10) == [WaitUntil(40.0)]
    assert d.tick(40) == [Post((1,), 2)]
    assert d.post_result(429, None, now=41) == [WaitUntil(43.0)]  # no header: backoff(2)


def test_retry_after_is_capped() -> None:
    d = WebhookDelivery(RetryPolicy(max_retry_after=60.0, jitter=0.0))
    d.batch_ready([1], now=0)
    assert d.post_result(429, 1e9, now=0) == [WaitUntil(60.0)]


def test_410_unsubscribes_without_ack() -> None:
    d = WebhookDelivery(NO_JITTER)
    d.batch_ready([1], now=0)
    assert d.post_result(410, None, now=0) == [Unsubscribe("the sink answered 410 Gone")]
    assert d.phase is Phase.ENDED
    with pytest.raises(ValueError):
        d.batch_ready([2], now=1)


def test_rejected_content_dead_letters_at_once() -> None:
    d = WebhookDelivery(NO_JITTER)
    d.batch_ready([5], now=0)
    assert d.post_result(415, None, now=0) == [
        DeadLetter((5,), "the sink rejected the event (HTTP 415)"),
        Ack((5,), delivered=False),
    ]


def test_redirect_is_not_followed_but_retried() -> None:
    d = WebhookDelivery(NO_JITTER)
    d.batch_ready([5], now=0)
    assert d.post_result(307, None, now=0) == [WaitUntil(1.0)]
    assert d.last_error == "attempt 1: HTTP 307"


def test_allowed_rate_spaces_posts() -> None:
    d = WebhookDelivery(NO_JITTER, min_interval=6.0)  # WebHook-Allowed-Rate: 10
    d.batch_ready([1], now=0)
    d.post_result(200, None, now=0.5)
    assert d.batch_ready([2], now=1) == [WaitUntil(6.0)]
    assert d.tick(5.9) == []
    assert d.tick(6.0) == [Post((2,), 1)]


def test_jitter_comes_from_the_injected_rng() -> None:
    policy = RetryPolicy(initial_backoff=10.0, max_backoff=100.0, jitter=0.5)
    assert backoff(1, policy, lambda: 0.0) == 10.0
    assert backoff(1, policy, lambda: 1.0) == 5.0
    assert backoff(3, policy, lambda: 0.5) == 30.0
    assert backoff(10_000, policy, lambda: 0.0) == 100.0


def test_out_of_order_calls_are_caller_bugs() -> None:
    d = WebhookDelivery(NO_JITTER)
    with pytest.raises(ValueError):
        d.post_result(200, None, now=0)
    with pytest.raises(ValueError):
        d.batch_ready([], now=0)
    d.batch_ready([1], now=0)
    with pytest.raises(ValueError):
        d.batch_ready([2], now=0)


def test_policy_validation() -> None:
    for bad in (
        {"max_attempts": 0},
        {"initial_backoff": 5.0, "max_backoff": 1.0},
        {"jitter": 1.5},
        {"max_retry_after": -1.0},
    ):
        with pytest.raises(ValueError):
            RetryPolicy(**bad)  # type: ignore[arg-type]


def test_parse_retry_after() -> None:
    assert parse_retry_after(None, 0) is None
    assert parse_retry_after("120", 0) == 120.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412490.0) == 0.0
    assert parse_retry_after("soon", 0) is None
    assert parse_retry_after("-5", 0) is None


STATUSES = st.one_of(st.none(), st.sampled_from([200, 204, 301, 400, 404, 410, 429, 500, 503]))


@given(
    answers=st.lists(
        st.tuples(STATUSES, st.one_of(st.none(), st.floats(0, 1e6))), min_size=1, max_size=80
    ),
    jitter=st.floats(0, 1),
    rate_gap=st.sampled_from([0.0, 0.5, 6.0]),
    batches=st.integers(1, 10),
)
def test_every_batch_ends_once_in_order_within_bounds(
    answers: list[tuple[int | None, float | None]],
    jitter: float,
    rate_gap: float,
    batches: int,
) -> None:
    policy = RetryPolicy(max_attempts=3, initial_backoff=0.5, max_backoff=4.0, max_retry_after=9.0)
    d = WebhookDelivery(policy, min_interval=rate_gap, rng=lambda: jitter)
    queue = [(i,) for i in range(batches)]
    acked: list[tuple[int, ...]] = []
    now, last_post = 0.0, None
    pending: list[Action] = d.batch_ready(queue.pop(0), now)
    answers = list(answers)
    while pending:
        action = pending.pop(0)
        match action:
            case Post(offsets, attempt):
                assert 1 <= attempt <= policy.max_attempts
                assert offsets == (len(acked),)  # strictly in order, one at a time
                if last_post is not None:
                    assert now - last_post >= rate_gap - 1e-9
                last_post = now
                status, retry_after = answers.pop(0) if answers else (200, None)
                pending += d.post_result(status, retry_after, now)
            case WaitUntil(at):
                assert now <= at <= now + max(policy.max_backoff, policy.max_retry_after, rate_gap)
                assert d.tick(at - 1e-6) == [] or at - 1e-6 < now
                now = at
                pending += d.tick(now)
            case DeadLetter(offsets, _):
                assert pending == [Ack(offsets, delivered=False)]
            case Ack(offsets):
                acked.append(offsets)
                if queue and not pending:
                    pending += d.batch_ready(queue.pop(0), now)
            case Unsubscribe():
                assert d.phase is Phase.ENDED
                return
    assert acked == [(i,) for i in range(batches)]
