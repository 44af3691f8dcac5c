"""Fixtures for the FHIR client tests: a mocked server (responses) and a retry policy that never sleeps."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import responses

from adapter.fhir.client import FhirClient
from adapter.fhir.retry import RetryPolicy

BASE = "https://fhir.example.org/r4"


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


@pytest.fixture()
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture()
def retry(fake_time: FakeTime) -> RetryPolicy:
    return RetryPolicy(
        budget_seconds=60,
        sleep=fake_time.sleep,
        clock=fake_time.clock,
        wall_clock=fake_time.clock,
        random=lambda: 0.5,
    )


@pytest.fixture()
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture()
def client(retry: RetryPolicy) -> FhirClient:
    return FhirClient(BASE, timeout=7.5, page_size=2, retry=retry)
