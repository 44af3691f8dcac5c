"""Which version of a resource a bundle carries when one push holds several (adapter.push.dedupe)."""

from __future__ import annotations

from adapter.model import supersedes
from adapter.push import dedupe, dependency_order


def _obs(status: str, when: str | None, value: float = 1.0) -> dict:
    resource = {
        "resourceType": "Observation",
        "id": "o1",
        "status": status,
        "valueQuantity": {"value": value},
    }
    if when is not None:
        resource["meta"] = {"lastUpdated": when}
    return resource


def test_latest_source_time_wins_whatever_the_arrival_order():
    prelim = _obs("preliminary", "2024-03-01T10:00:00+07:00")
    final = _obs("final", "2024-03-01T11:00:00+07:00")
    corrected = _obs("corrected", "2024-03-02T08:00:00+07:00", 2.0)
    for order in ([prelim, final, corrected], [corrected, prelim, final], [final, corrected, prelim]):
        (kept,) = dedupe(order)
        assert kept["status"] == "corrected"


def test_instants_are_compared_across_offsets():
    # 03:30Z is 10:30 in Ho Chi Minh City: later than 10:00+07:00, though it sorts first as text
    assert supersedes(_obs("final", "2024-03-01T03:30:00Z"), _obs("preliminary", "2024-03-01T10:00:00+07:00"))
    assert not supersedes(
        _obs("preliminary", "2024-03-01T02:00:00Z"), _obs("final", "2024-03-01T10:00:00+07:00")
    )


def test_equal_or_unknown_times_keep_the_arrival_order():
    a, b = _obs("final", "2024-03-01T10:00:00+07:00", 1.0), _obs("final", "2024-03-01T10:00:00+07:00", 2.0)
    assert dedupe([a, b])[0]["valueQuantity"]["value"] == 2.0
    assert dedupe([_obs("final", None, 1.0), _obs("final", None, 3.0)])[0]["valueQuantity"]["value"] == 3.0
    assert (
        dedupe([_obs("final", "2024-03-01", 1.0), _obs("final", None, 4.0)])[0]["valueQuantity"]["value"]
        == 4.0
    )


def test_other_resources_are_untouched_and_references_come_first():
    patient = {"resourceType": "Patient", "id": "p1"}
    other = {**_obs("final", None), "id": "o2"}
    out = dependency_order(dedupe([_obs("final", None), other, patient]))
    assert [f"{r['resourceType']}/{r['id']}" for r in out] == [
        "Patient/p1",
        "Observation/o1",
        "Observation/o2",
    ]
