"""`adapter pull` against an in-memory fake server: what is asked, what is written, --since, --bulk."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from adapter.errors import ConfigError, ServerError
from adapter.fhir.client import FhirClient
from adapter.ids import patient_id, stable_id
from adapter.mapping.study import study_id
from adapter.mapping.subjects import roster_conversion
from adapter.ndjson import dumps, iter_file
from adapter.pull import PULLED_TYPES, Spool, parse_since, pull_bulk, pull_search
from adapter.roster import parse_roster
from tests.fhir.conftest import BASE
from tests.fhir.data import clinical, roster_csv
from tests.fhir.fake_server import FakeFhir

OLD = "2024-01-01T00:00:00.000+00:00"
NEW = "2024-05-01T00:00:00.000+00:00"


def _stamp(resource: dict, when: str = OLD) -> dict:
    return {**resource, "meta": {"versionId": "1", "lastUpdated": when}}


@pytest.fixture()
def server_data(study):
    roster = parse_roster(roster_csv(3), study, "roster.csv")
    resources = roster_conversion(roster, study).resources + clinical(study, ["P001", "P002", "P003"])
    stranger = f"Patient/{patient_id(study.study.key, 'NOT-ENROLLED')}"
    resources += [
        {"resourceType": "Patient", "id": stranger.split("/")[1]},
        {
            "resourceType": "Observation",
            "id": "obs-stranger",
            "status": "final",
            "code": {"text": "x"},
            "subject": {"reference": stranger},
        },
    ]
    return [_stamp(r) for r in resources]


def _by_type(resources):
    out: dict[str, list[dict]] = {}
    for r in resources:
        out.setdefault(r["resourceType"], []).append(r)
    return out


def _read(folder, rtype):
    return list(iter_file(folder / f"{rtype}.ndjson"))


def test_search_pull_writes_the_study_sorted_by_type_and_id(study, server_data, rsps, retry, tmp_path):
    fake = FakeFhir(BASE, rsps, server_data)
    client = FhirClient(BASE, page_size=2, retry=retry)
    result = pull_search(client, study, tmp_path, ids_per_query=2)
    strangers = {"obs-stranger", patient_id(study.study.key, "NOT-ENROLLED")}
    expected = _by_type(r for r in server_data if r["id"] not in strangers)
    for rtype in PULLED_TYPES:
        lines = (tmp_path / f"{rtype}.ndjson").read_text().splitlines()
        wanted = sorted(expected.get(rtype, []), key=lambda r: r["id"])
        assert lines == [dumps(r) for r in wanted], rtype
    assert result.subjects == 3 and result.counts["Observation"] == 3 * 4
    assert result.next_since == "2024-06-01T00:00:00.000+00:00"
    assert result.requests == len(rsps.calls)
    # Observations asked in chunks of two subjects, with paging (page size 2).
    obs_queries = [q for t, q in fake.searches if t == "Observation" and "_offset" not in q]
    patients = sorted(f"Patient/{patient_id(study.study.key, s)}" for s in ("P001", "P002", "P003"))
    assert [q["subject"] for q in obs_queries] == [[",".join(patients[:2])], [patients[2]]]
    assert all(q["_count"] == ["2"] for q in obs_queries)
    assert any("_offset" in q for t, q in fake.searches if t == "Observation")
    # The study was found by its official identifier.
    first = fake.searches[0]
    assert first[0] == "ResearchStudy" and first[1]["identifier"] == [
        "https://clinicaltrials.gov|NCT03943940"
    ]


def test_search_pull_brings_provenance_with_each_page_not_by_chained_search(
    study, server_data, rsps, retry, tmp_path
):
    fake = FakeFhir(BASE, rsps, server_data)
    pull_search(FhirClient(BASE, retry=retry), study, tmp_path)
    assert len(_read(tmp_path, "Provenance")) == 3
    assert all(q.get("_revinclude") == ["Provenance:target"] for t, q in fake.searches if t == "Observation")
    chained = [q for t, q in fake.searches if t == "Provenance" and any("." in k for k in q)]
    assert chained == []  # slow on HAPI with many resources


def test_bulk_pull_asks_provenance_by_the_exported_resources_not_by_chains(
    study, server_data, rsps, retry, tmp_path
):
    fake = FakeFhir(BASE, rsps, server_data)
    pull_bulk(FhirClient(BASE, retry=retry), study, tmp_path, poll_cap=0)
    assert len(_read(tmp_path, "Provenance")) == 3
    queries = [q for t, q in fake.searches if t == "Provenance"]
    assert queries and all(set(q) <= {"target", "_count"} for q in queries)
    asked = ",".join(q["target"][0] for q in queries)
    assert "Observation/" in asked and "Patient/" in asked


def test_study_found_by_id_when_identifier_differs(study, server_data, rsps, retry, tmp_path):
    for r in server_data:
        if r["resourceType"] == "ResearchStudy":
            r["identifier"] = [{"system": "urn:other", "value": "x"}]
    FakeFhir(BASE, rsps, server_data)
    pull_search(FhirClient(BASE, retry=retry), study, tmp_path)
    assert [r["id"] for r in _read(tmp_path, "ResearchStudy")] == [study_id(study)]


def test_missing_study_is_a_clear_error(study, rsps, retry, tmp_path):
    FakeFhir(BASE, rsps, [])
    with pytest.raises(
        ServerError, match=r"no ResearchStudy with identifier .*NCT03943940.*run `adapter study push`"
    ):
        pull_search(FhirClient(BASE, retry=retry), study, tmp_path)


def test_since_asks_only_changes_and_merges_them_into_the_folder(study, server_data, rsps, retry, tmp_path):
    first = FakeFhir(BASE, rsps, server_data)
    pull_search(FhirClient(BASE, retry=retry), study, tmp_path)
    before = {t: _read(tmp_path, t) for t in PULLED_TYPES}
    obs = next(r for r in server_data if r["resourceType"] == "Observation" and "valueQuantity" in r)
    changed = {**obs, "status": "amended", "meta": {"versionId": "2", "lastUpdated": NEW}}
    added = {**obs, "id": stable_id("obs", "late"), "meta": {"versionId": "1", "lastUpdated": NEW}}
    rsps.reset()
    fake = FakeFhir(BASE, rsps, [changed if r["id"] == obs["id"] else r for r in server_data] + [added])
    result = pull_search(FhirClient(BASE, retry=retry), study, tmp_path, parse_since("2024-04-01"))
    assert result.counts == {"Observation": 2}
    assert result.since == "2024-04-01T00:00:00.000Z"
    after = {t: _read(tmp_path, t) for t in PULLED_TYPES}
    assert {t: len(v) for t, v in after.items()} == {
        t: len(v) + (1 if t == "Observation" else 0) for t, v in before.items()
    }
    by_id = {r["id"]: r for r in after["Observation"]}
    assert by_id[obs["id"]]["status"] == "amended" and added["id"] in by_id
    assert [r["id"] for r in after["Observation"]] == sorted(by_id)
    clinical_queries = [q for t, q in fake.searches if t in ("Observation", "AdverseEvent", "Provenance")]
    assert clinical_queries and all(
        q["_lastUpdated"] == ["ge2024-04-01T00:00:00.000Z"] for q in clinical_queries
    )
    assert first.searches  # the first pull asked without _lastUpdated
    assert all("_lastUpdated" not in q for _, q in first.searches)


def test_bulk_pull_equals_search_pull(study, server_data, rsps, retry, fake_time, tmp_path):
    fake = FakeFhir(BASE, rsps, server_data)
    result = pull_bulk(FhirClient(BASE, retry=retry), study, tmp_path / "bulk", poll_cap=5.0)
    assert fake.export_params["_type"] == [
        "ResearchSubject,Patient,Observation,DiagnosticReport,MedicationStatement,MedicationAdministration,"
        "AdverseEvent,Procedure"
    ]
    assert fake_time.sleeps == [5.0]  # Retry-After 120 capped at --poll-max
    assert result.export_errors == ["error: 1 resource skipped"]
    assert result.next_since == "2024-06-01T00:00:00.000+00:00"
    rsps.reset()
    FakeFhir(BASE, rsps, server_data)
    pull_search(FhirClient(BASE, retry=retry), study, tmp_path / "search")
    for rtype in PULLED_TYPES:
        assert (tmp_path / "bulk" / f"{rtype}.ndjson").read_bytes() == (
            tmp_path / "search" / f"{rtype}.ndjson"
        ).read_bytes(), rtype


def test_bulk_keeps_only_this_studys_research_subjects(study, server_data, rsps, retry, tmp_path):
    subject = next(r for r in server_data if r["resourceType"] == "ResearchSubject")
    elsewhere = {**subject, "id": "rs-other-study", "study": {"reference": "ResearchStudy/other"}}
    FakeFhir(BASE, rsps, [*server_data, elsewhere])
    pull_bulk(FhirClient(BASE, retry=retry), study, tmp_path, poll_cap=0)
    assert "rs-other-study" not in {r["id"] for r in _read(tmp_path, "ResearchSubject")}
    assert len(_read(tmp_path, "ResearchSubject")) == 3


def test_bulk_without_the_cohort_group_says_what_to_do(study, server_data, rsps, retry, tmp_path):
    FakeFhir(BASE, rsps, [r for r in server_data if r["resourceType"] != "Group"])
    with pytest.raises(ServerError, match=r"no Group/group-.*run `adapter enroll` first"):
        pull_bulk(FhirClient(BASE, retry=retry), study, tmp_path)


def test_parse_since():
    assert parse_since("2024-05-01") == datetime(2024, 5, 1, tzinfo=UTC)
    assert parse_since("2024-05-01T07:00:00+07:00") == datetime(2024, 5, 1, tzinfo=UTC)
    assert parse_since("2024-05-01T00:00:00Z") == datetime(2024, 5, 1, tzinfo=UTC)
    with pytest.raises(ConfigError, match="timezone offset"):
        parse_since("2024-05-01T00:00:00")
    with pytest.raises(ConfigError, match="not a date"):
        parse_since("last week")


def test_spool_keeps_the_newer_version_whatever_the_order(tmp_path):
    old = {"resourceType": "Observation", "id": "b", "meta": {"lastUpdated": "2024-01-01T00:00:00+07:00"}}
    new = {"resourceType": "Observation", "id": "b", "meta": {"lastUpdated": "2023-12-31T18:00:00.5+00:00"}}
    other = {"resourceType": "Observation", "id": "a"}
    for order in ([old, new, other], [new, other, old]):
        spool = Spool(tmp_path, "Observation")
        for r in order:
            spool.add(r)
        spool.write(tmp_path / "Observation.ndjson")
        assert [json.loads(x)["id"] for x in (tmp_path / "Observation.ndjson").read_text().splitlines()] == [
            "a",
            "b",
        ]
        assert _read(tmp_path, "Observation")[1] == new  # 18:00:00.5 UTC is after 17:00 UTC
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_cli_pull_json_and_bad_since(server_data, rsps, tmp_path, monkeypatch):
    from adapter.cli import app

    FakeFhir(BASE, rsps, server_data)
    monkeypatch.chdir(tmp_path)
    args = ["--fhir-url", BASE, "--state-dir", str(tmp_path / "state"), "pull", "--out", "out"]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["mode"] == "search" and summary["subjects"] == 3
    assert summary["files"]["Provenance"] == 3
    assert (tmp_path / "out" / "Observation.ndjson").is_file()
    bad = CliRunner().invoke(app, [*args, "--since", "yesterday"])
    assert bad.exit_code == 2 and "--since 'yesterday'" in bad.output
    no_secret_option = CliRunner().invoke(app, ["--password", "x", "pull", "--out", "o"])
    assert no_secret_option.exit_code == 2 and "No such option" in no_secret_option.output  # not on argv


def test_a_failed_bulk_pull_still_deletes_the_export_job(
    study, server_data, rsps, retry, tmp_path, monkeypatch
):
    fake = FakeFhir(BASE, rsps, server_data)

    def broken_file(name, request):
        return 200, {"Content-Type": "application/fhir+ndjson"}, '{"resourceType": \n'

    monkeypatch.setattr(fake, "_file", broken_file)
    with pytest.raises(ServerError, match="not JSON"):
        pull_bulk(FhirClient(BASE, retry=retry), study, tmp_path, poll_cap=0)
    deletes = [c for c in rsps.calls if c.request.method == "DELETE"]
    assert [c.request.url for c in deletes] == [f"{BASE}/export-status"]
