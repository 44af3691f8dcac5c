"""Retries: which failures are retried, how long the client waits, and when it gives up."""

from __future__ import annotations

import pytest
import requests
import responses

from adapter.errors import ServerRejected, ServerUnreachable
from adapter.fhir.client import FhirClient
from adapter.fhir.retry import RetryPolicy, parse_retry_after
from tests.fhir.conftest import BASE

OK = {"resourceType": "Patient", "id": "pt-1"}


def test_retry_after_in_seconds_and_as_http_date():
    assert parse_retry_after("7") == 7.0
    # 1_700_000_000 is Tue, 14 Nov 2023 22:13:20 GMT; the header says 30 s later.
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:50 GMT", now=lambda: 1_700_000_000.0) == 30.0
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:00 GMT", now=lambda: 1_700_000_000.0) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_full_jitter_backoff_is_bounded_by_base_doubling_and_cap():
    policy = RetryPolicy(base_seconds=0.5, cap_seconds=4, random=lambda: 1.0)
    assert [policy.backoff(n) for n in (1, 2, 3, 4, 5, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert RetryPolicy(random=lambda: 0.0).backoff(3) == 0.0


def test_503_then_success_waits_with_jitter(client, rsps, fake_time):
    rsps.get(f"{BASE}/Patient/pt-1", status=503)
    rsps.get(f"{BASE}/Patient/pt-1", status=502)
    rsps.get(f"{BASE}/Patient/pt-1", json=OK)
    assert client.read("Patient", "pt-1") == OK
    # random() = 0.5: 0.5 * 0.5 s after the first failure, 0.5 * 1 s after the second
    assert fake_time.sleeps == [0.25, 0.5]
    assert len(rsps.calls) == 3


def test_429_honours_retry_after_seconds_and_date(client, rsps, fake_time):
    rsps.get(f"{BASE}/Patient/pt-1", status=429, headers={"Retry-After": "3"})
    rsps.get(f"{BASE}/Patient/pt-1", status=429, headers={"Retry-After": "Tue, 14 Nov 2023 22:13:30 GMT"})
    rsps.get(f"{BASE}/Patient/pt-1", json=OK)
    assert client.read("Patient", "pt-1") == OK
    # 3 s, then until 22:13:30 = 1_700_000_010, i.e. 10 - 3 = 7 s later
    assert fake_time.sleeps == [3.0, 7.0]


def test_retry_after_beyond_the_budget_gives_up_at_once(client, rsps, fake_time):
    rsps.get(f"{BASE}/Patient/pt-1", status=503, headers={"Retry-After": "3600"})
    with pytest.raises(ServerUnreachable, match="answered 503 to GET Patient/pt-1"):
        client.read("Patient", "pt-1")
    assert fake_time.sleeps == []


def test_budget_bounds_the_whole_sequence(rsps, fake_time):
    policy = RetryPolicy(
        budget_seconds=10,
        base_seconds=1,
        cap_seconds=100,
        max_attempts=100,
        sleep=fake_time.sleep,
        clock=fake_time.clock,
        random=lambda: 1.0,
    )
    rsps.get(f"{BASE}/metadata", status=500, json={"resourceType": "OperationOutcome", "issue": []})
    with pytest.raises(ServerUnreachable, match=r"after 4 attempts"):
        FhirClient(BASE, retry=policy).capabilities()
    assert fake_time.sleeps == [1, 2, 4]  # the next one (8 s) would pass the 10 s budget
    assert len(rsps.calls) == 4


def test_connection_errors_are_retried_then_reported(client, rsps, fake_time):
    rsps.get(f"{BASE}/Patient/pt-1", body=requests.ConnectionError("refused"))
    rsps.get(f"{BASE}/Patient/pt-1", json=OK)
    assert client.read("Patient", "pt-1") == OK
    rsps.get(f"{BASE}/Patient/pt-2", body=requests.ReadTimeout("slow"))
    with pytest.raises(ServerUnreachable, match=r"unreachable.*ReadTimeout"):
        client.read("Patient", "pt-2")


def test_4xx_is_not_retried(client, rsps, fake_time):
    rsps.get(f"{BASE}/Patient/pt-1", status=400, json={"resourceType": "OperationOutcome", "issue": []})
    with pytest.raises(ServerRejected):
        client.read("Patient", "pt-1")
    assert len(rsps.calls) == 1 and fake_time.sleeps == []


def test_a_create_is_not_retried_after_a_500_but_after_a_503(client, rsps, fake_time):
    resource = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}
    rsps.post(BASE, status=500)
    with pytest.raises(ServerUnreachable):
        client.transaction([resource])
    assert len(rsps.calls) == 1  # the server may have written it: a blind retry could duplicate it
    rsps.replace(responses.POST, BASE, status=503)
    rsps.add(
        responses.POST, BASE, json={"resourceType": "Bundle", "type": "transaction-response", "entry": []}
    )
    client.transaction([resource])
    assert len(rsps.calls) == 3


def test_every_request_carries_the_timeout(client, rsps):
    seen = []

    def capture(request):
        seen.append(request.req_kwargs.get("timeout"))
        return 200, {}, '{"resourceType": "Bundle", "type": "searchset"}'

    rsps.add_callback(responses.GET, f"{BASE}/Observation", callback=capture)
    list(client.search("Observation"))
    assert seen == [7.5]


def test_no_retry_logs_carry_query_values(client, rsps, caplog, fake_time):
    rsps.get(f"{BASE}/Patient", status=503)
    rsps.get(f"{BASE}/Patient", json={"resourceType": "Bundle", "type": "searchset"})
    with caplog.at_level("DEBUG"):
        list(client.search("Patient", {"identifier": "urn:mrn|MRN1001"}))
    assert "retry 1" in caplog.text
    assert "MRN1001" not in caplog.text
