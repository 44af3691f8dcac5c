"""Retrying what a later attempt can fix: 429, 5xx and connection errors.

Exponential backoff with full jitter (a random wait in [0, min(cap, base * 2^n)]) spreads the retries of
many clients; a server's `Retry-After` (seconds or an HTTP date) replaces the computed wait. The whole
retry sequence of one request is bounded by a time budget, so a cron job never hangs on a dead server.
Sleep, clock and randomness are injectable so tests run instantly and deterministically.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

# 500 is included: HAPI answers 500 to a database deadlock or a lost connection as well as to bugs;
# the budget bounds the cost of retrying a deterministic one.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# What a non-idempotent request (a POST that creates) may retry: the server says it did nothing.
RETRY_STATUSES_UNSAFE = frozenset({429, 503})


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now())


@dataclass
class RetryPolicy:
    """How long and how often to retry one request."""

    budget_seconds: float = 120.0
    base_seconds: float = 0.5
    cap_seconds: float = 30.0
    max_attempts: int = 10
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    wall_clock: Callable[[], float] = field(default=time.time, repr=False)
    random: Callable[[], float] = field(default=random.random, repr=False)

    def backoff(self, failures: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2^(failures-1))]."""
        return self.random() * min(self.cap_seconds, self.base_seconds * 2 ** max(0, failures - 1))

    def start(self) -> RetryState:
        return RetryState(self, self.clock())


@dataclass
class RetryState:
    """The retry bookkeeping of one request: failures so far and the time already spent."""

    policy: RetryPolicy
    started: float
    failures: int = 0
    last_reason: str = ""

    @property
    def elapsed(self) -> float:
        return self.policy.clock() - self.started

    def wait(self, reason: str, retry_after: str | None = None) -> float | None:
        """Sleep before the next attempt and return the delay; None when attempts or budget are spent."""
        policy = self.policy
        self.failures += 1
        self.last_reason = reason
        if self.failures >= policy.max_attempts:
            return None
        asked = parse_retry_after(retry_after, policy.wall_clock)
        delay = asked if asked is not None else policy.backoff(self.failures)
        if delay > policy.budget_seconds - self.elapsed:
            return None
        policy.sleep(delay)
        return delay
