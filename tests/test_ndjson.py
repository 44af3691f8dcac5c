import itertools
import json

from adapter.model import InputAccount
from adapter.ndjson import iter_resources, merge_accounts, merge_resources


def _obs(rid, status, when, value):
    return {
        "resourceType": "Observation",
        "id": rid,
        "meta": {"lastUpdated": when},
        "status": status,
        "valueQuantity": {"value": value},
    }


def test_merge_keeps_newest_whatever_the_run_order(tmp_path):
    runs = [
        [_obs("b", "preliminary", "2019-06-03T08:00:00+07:00", 5.0), {"resourceType": "Patient", "id": "p"}],
        [
            _obs("b", "final", "2019-06-03T09:00:00+07:00", 5.1),
            _obs("a", "final", "2019-06-03T09:00:00+07:00", 7),
        ],
        [_obs("b", "corrected", "2019-06-04T10:00:00+07:00", 5.2)],
    ]
    outputs = set()
    for order in itertools.permutations(runs):
        folder = tmp_path / "-".join(str(runs.index(r)) for r in order)
        for run in order:
            merge_resources(folder, run)
        outputs.add((folder / "Observation.ndjson").read_bytes())
        assert (folder / "Patient.ndjson").is_file()
    assert len(outputs) == 1, "result must not depend on the order of runs"
    lines = outputs.pop().decode().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["a", "b"]
    assert json.loads(lines[1])["status"] == "corrected"


def test_merge_tie_is_broken_by_content_not_order(tmp_path):
    one = _obs("x", "final", "2019-06-03T09:00:00+07:00", 1)
    two = _obs("x", "final", "2019-06-03T09:00:00+07:00", 2)
    merge_resources(tmp_path / "a", [one])
    merge_resources(tmp_path / "a", [two])
    merge_resources(tmp_path / "b", [two])
    merge_resources(tmp_path / "b", [one])
    assert (tmp_path / "a" / "Observation.ndjson").read_bytes() == (
        tmp_path / "b" / "Observation.ndjson"
    ).read_bytes()


def test_unicode_is_written_as_utf8(tmp_path):
    merge_resources(tmp_path, [{"resourceType": "Location", "id": "l", "name": "Bệnh viện Vạn Hạnh"}])
    raw = (tmp_path / "Location.ndjson").read_bytes()
    assert "Bệnh viện Vạn Hạnh".encode() in raw
    assert next(iter(iter_resources(tmp_path, "Location")))["name"] == "Bệnh viện Vạn Hạnh"


def test_accounts_merge_by_source_and_index(tmp_path):
    merge_accounts(
        tmp_path,
        [
            InputAccount("hl7", "a.hl7", 2, "rejected", reason="bad"),
            InputAccount("hl7", "a.hl7", 1, "converted"),
        ],
    )
    merge_accounts(tmp_path, [InputAccount("hl7", "a.hl7", 2, "converted")])
    rows = [json.loads(x) for x in (tmp_path / "messages.ndjson").read_text().splitlines()]
    assert [(r["index"], r["outcome"]) for r in rows] == [(1, "converted"), (2, "converted")]
