"""Delivery of one webhook subscription: pure, no I/O, no event loop.

The shell (gateway/webhooks/runner.py) feeds it what happened and carries out what it
returns:

- `batch_ready(offsets, now)`: the next events to POST (one request: one event in binary or
  structured mode, several in batch mode), in offset order;
- `post_result(status, retry_after, now)`: the sink answered (status None: no answer at all,
  e.g. refused connection or timeout);
- `tick(now)`: the time asked for by the last `WaitUntil` has come.

Actions: `Post(offsets, attempt)`, `WaitUntil(at)`, `DeadLetter(offsets, reason)`,
`Ack(offsets)`, `Unsubscribe(reason)`. Order matters and is the order returned: a batch is
written to the dead-letter topic BEFORE it is acknowledged (persist before ack).

Invariants:

- At most one request is in flight, and a batch is retried until it ends, before the next one
  starts: events reach the sink in order (at least once: a post whose answer is lost is sent
  again).
- Every batch ends exactly once: `Ack` (delivered), `DeadLetter` + `Ack` (rejected, or
  `max_attempts` failed), or `Unsubscribe` (410 Gone; the batch is not acknowledged).
- Attempt k (k >= 2) waits `backoff(k - 1)`: `initial_backoff * 2**(k-2)` capped at
  `max_backoff`, less a random fraction up to `jitter` (rng injected: deterministic tests).
  A 429 waits its `Retry-After` instead (capped at `max_retry_after`; backoff when absent).
- Posts are spaced at least `min_interval` apart (the sink's `WebHook-Allowed-Rate`).

Outcomes by status (`classify`): 2xx delivered; 410 gone; 429 throttled; 400, 413, 415 and
422 rejected (the sink refuses the content: retrying cannot help, so dead-letter at once);
anything else, 3xx included (redirects are never followed, as the Webhook spec says), and no
answer at all: retry. A 429 counts as an attempt, so a sink that throttles forever
dead-letters after `max_attempts` like any other failure (retries stay bounded).

Transitions::

    IDLE --batch_ready--> POSTING (Post) | WAITING (rate spacing)
    POSTING --2xx--> IDLE (Ack)          POSTING --410--> ENDED (Unsubscribe)
    POSTING --rejected / last attempt--> IDLE (DeadLetter, Ack)
    POSTING --retryable--> WAITING (WaitUntil)
    WAITING --tick (due)--> POSTING (Post)
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

REJECTED_STATUSES = frozenset({400, 413, 415, 422})


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How hard one subscription tries. Defaults: 10 attempts over ~9 minutes
    (1, 2, 4, ... 60 s), like Knative's and Event Grid's bounded schedules."""

    max_attempts: int = 10
    initial_backoff: float = 1.0
    max_backoff: float = 60.0
    jitter: float = 0.2
    max_retry_after: float = 600.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.initial_backoff < 0 or self.max_backoff < self.initial_backoff:
            raise ValueError("need 0 <= initial_backoff <= max_backoff")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be within [0, 1]")
        if self.max_retry_after < 0:
            raise ValueError("max_retry_after must be >= 0")


DEFAULT_RETRY = RetryPolicy()


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    GONE = "gone"
    THROTTLED = "throttled"
    REJECTED = "rejected"
    RETRY = "retry"


def classify(status: int | None) -> Outcome:
    """What a sink's answer means for the batch (see the module docstring)."""
    if status is None:
        return Outcome.RETRY
    if 200 <= status < 300:
        return Outcome.DELIVERED
    if status == 410:
        return Outcome.GONE
    if status == 429:
        return Outcome.THROTTLED
    if status in REJECTED_STATUSES:
        return Outcome.REJECTED
    return Outcome.RETRY


def backoff(failures: int, policy: RetryPolicy, rng: Callable[[], float]) -> float:
    """Seconds to wait after the `failures`-th failed attempt (1 = the first failed)."""
    exponent = min(failures - 1, 62)
    delay = min(policy.max_backoff, policy.initial_backoff * 2.0**exponent)
    return delay * (1.0 - policy.jitter * rng())


# -- actions ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Post:
    offsets: tuple[int, ...]
    attempt: int


@dataclass(frozen=True, slots=True)
class WaitUntil:
    at: float


@dataclass(frozen=True, slots=True)
class DeadLetter:
    offsets: tuple[int, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class Ack:
    """Done with these offsets: `delivered` (the sink took them) or dead-lettered."""

    offsets: tuple[int, ...]
    delivered: bool = True


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    reason: str


Action = Post | WaitUntil | DeadLetter | Ack | Unsubscribe


class Phase(enum.Enum):
    IDLE = "idle"
    POSTING = "posting"
    WAITING = "waiting"
    ENDED = "ended"


@dataclass(slots=True)
class WebhookDelivery:
    """The state of one subscription's delivery; see the module docstring."""

    policy: RetryPolicy = DEFAULT_RETRY
    min_interval: float = 0.0
    rng: Callable[[], float] = field(default=random.random)
    phase: Phase = Phase.IDLE
    batch: tuple[int, ...] = ()
    attempt: int = 0
    wake_at: float | None = None
    last_post: float | None = None
    last_error: str | None = None

    def batch_ready(self, offsets: Sequence[int], now: float) -> list[Action]:
        """Start the next batch. Raises ValueError unless IDLE with a non-empty batch."""
        if self.phase is not Phase.IDLE:
            raise ValueError(f"batch_ready while {self.phase.value}")
        if not offsets:
            raise ValueError("batch_ready with no offsets")
        self.batch = tuple(offsets)
        self.attempt = 0
        return self._post_at(now, now)

    def post_result(
        self, status: int | None, retry_after: float | None, now: float
    ) -> list[Action]:
        """The sink's answer to the request in flight. Raises ValueError unless POSTING."""
        if self.phase is not Phase.POSTING:
            raise ValueError(f"post_result while {self.phase.value}")
        outcome = classify(status)
        batch = self.batch
        if outcome is Outcome.DELIVERED:
            self._finish()
            return [Ack(batch)]
        if outcome is Outcome.GONE:
            self._finish()
            self.phase = Phase.ENDED
            return [Unsubscribe("the sink answered 410 Gone")]
        what = "no answer" if status is None else f"HTTP {status}"
        self.last_error = f"attempt {self.attempt}: {what}"
        if outcome is Outcome.REJECTED:
            self._finish()
            reason = f"the sink rejected the event ({what})"
            return [DeadLetter(batch, reason), Ack(batch, delivered=False)]
        if self.attempt >= self.policy.max_attempts:
            self._finish()
            reason = f"{self.policy.max_attempts} attempts failed, last {what}"
            return [DeadLetter(batch, reason), Ack(batch, delivered=False)]
        if outcome is Outcome.THROTTLED and retry_after is not None:
            delay = min(max(0.0, retry_after), self.policy.max_retry_after)
        else:
            delay = backoff(self.attempt, self.policy, self.rng)
        return self._post_at(now + delay, now)

    def tick(self, now: float) -> list[Action]:
        """Time passed; posts the waiting batch once its time has come."""
        if self.phase is not Phase.WAITING or self.wake_at is None or now < self.wake_at:
            return []
        return self._post_at(now, now)

    # -- internals -------------------------------------------------------------------------

    def _post_at(self, earliest: float, now: float) -> list[Action]:
        at = earliest
        if self.last_post is not None:
            at = max(at, self.last_post + self.min_interval)
        if at > now:
            self.phase = Phase.WAITING
            self.wake_at = at
            return [WaitUntil(at)]
        self.phase = Phase.POSTING
        self.wake_at = None
        self.attempt += 1
        self.last_post = now
        return [Post(self.batch, self.attempt)]

    def _finish(self) -> None:
        self.phase = Phase.IDLE
        self.batch = ()
        self.attempt = 0
        self.wake_at = None


def parse_retry_after(value: str | None, now_unix: float) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP-date); None when
    absent or unreadable (the caller then backs off as for any failure)."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now_unix)
