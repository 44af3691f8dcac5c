"""The FHIR client and `adapter pull` on the real local HAPI server.

The module uses its own copy of the study (a fresh study key, so fresh ids), so data other tests push to the
shared server never mixes with what is asserted here.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from pathlib import Path

import pytest
from fhir.resources.R4B import get_fhir_model_class
from typer.testing import CliRunner

from adapter.errors import ServerRejected
from adapter.fhir.client import Entry, FhirClient, TransactionRejected, new_urn
from adapter.fhir.retry import RetryPolicy
from adapter.ids import patient_id, stable_id
from adapter.mapping.subjects import roster_conversion
from adapter.ndjson import iter_file
from adapter.pull import PULLED_TYPES, parse_since, pull_bulk, pull_search
from adapter.push import push
from adapter.roster import parse_roster
from adapter.study import StudyConfig, default_mappings_dir, load_study
from tests.fhir.data import LOINC, clinical, roster_csv

pytestmark = pytest.mark.integration

SUBJECTS = 7


@pytest.fixture(scope="module")
def mappings(tmp_path_factory) -> Path:
    """A copy of mappings/ whose study has a key of its own."""
    folder = tmp_path_factory.mktemp("mappings")
    shutil.copytree(default_mappings_dir(), folder, dirs_exist_ok=True)
    key = f"PULLIT{uuid.uuid4().hex[:8].upper()}"
    path = folder / "study.yaml"
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^(\s*key:) NCT03943940", rf"\1 {key}", text)
    text = text.replace("value: NCT03943940, use: official", f"value: {key}, use: official")
    path.write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def iso_study(mappings) -> StudyConfig:
    return load_study(mappings / "study.yaml")


@pytest.fixture(scope="module")
def seeded(fhir_base_url, iso_study) -> dict[str, list[dict]]:
    """The study, its subjects and their clinical data pushed once; returns what was pushed, by type."""
    roster = parse_roster(roster_csv(SUBJECTS), iso_study, "roster.csv")
    resources = roster_conversion(roster, iso_study).resources
    resources += clinical(iso_study, [s.subject_id for s in roster])
    for resource in resources:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    client = FhirClient(fhir_base_url)
    client.require("transaction")
    result = push(client, resources, 100, "seed")
    assert result.created == len(resources)
    by_type: dict[str, list[dict]] = {}
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(resource)
    return by_type


def _client(base: str, page_size: int = 50) -> FhirClient:
    return FhirClient(base, page_size=page_size, retry=RetryPolicy(budget_seconds=30))


def _without_meta(resource: dict) -> dict:
    return {k: v for k, v in resource.items() if k != "meta"}


def _folder(folder: Path) -> dict[str, list[dict]]:
    return {
        t: list(iter_file(folder / f"{t}.ndjson")) for t in PULLED_TYPES if (folder / f"{t}.ndjson").is_file()
    }


# -- capabilities, paging, errors ----------------------------------------------------------------------
def test_our_hapi_has_what_the_adapter_needs(fhir_base_url):
    caps = _client(fhir_base_url).require("transaction", "export")
    assert caps.fhir_version.startswith("4.0.")


def test_search_pages_through_more_than_one_page(fhir_base_url, iso_study, seeded):
    client = _client(fhir_base_url, page_size=4)
    refs = ",".join(sorted({r["subject"]["reference"] for r in seeded["Observation"]}))
    pages = list(client.search_pages("Observation", {"subject": refs}))
    found = sorted(e["resource"]["id"] for p in pages for e in p.get("entry", []))
    expected = sorted(r["id"] for r in seeded["Observation"])  # 3 glucose + 1 body weight per subject
    assert found == expected and len(expected) == 4 * SUBJECTS
    assert len(pages) == SUBJECTS  # 4 per page
    assert all(len(p.get("entry", [])) == 4 for p in pages[:-1])


def test_hapi_transaction_errors_name_the_failing_entry(fhir_base_url, iso_study, seeded):
    client = _client(fhir_base_url)
    good = [dict(r) for r in seeded["Observation"][:2]]
    ghost = f"Patient/{patient_id(iso_study.study.key, 'NOBODY')}"
    cases = {
        "bad code": ({**good[0], "id": "obs-bad-status", "status": "bogus"}, "Observation/obs-bad-status"),
        "missing target": (
            {**good[0], "id": "obs-dangling", "subject": {"reference": ghost}},
            "Observation/obs-dangling",
        ),
        "numeric id": ({**good[0], "id": "424242"}, "Observation/424242"),
    }
    for name, (bad, expected) in cases.items():
        with pytest.raises(TransactionRejected) as error:
            client.transaction([*good, bad])
        assert error.value.resource == expected, name
        assert f"at {expected}" in str(error.value)
        assert client.read("Observation", bad["id"]) is None  # atomic: nothing of the bundle written


def test_version_aware_update(fhir_base_url, seeded):
    client = _client(fhir_base_url)
    original = seeded["AdverseEvent"][0]
    stored = client.read("AdverseEvent", original["id"])
    changed = {**stored, "outcome": {"text": "resolved"}}
    updated = client.put(changed, if_match=True)
    assert int(updated["meta"]["versionId"]) == int(stored["meta"]["versionId"]) + 1
    with pytest.raises(ServerRejected) as error:
        client.put({**changed, "outcome": {"text": "recovering"}}, if_match=True)  # still the old version
    assert error.value.status in (409, 412)
    client.put(original)  # back as pushed, for the pull tests


def test_urn_uuid_entries_resolve_inside_one_bundle(fhir_base_url, iso_study, seeded):
    client = _client(fhir_base_url)
    urn = new_urn()
    observation = {**_without_meta(seeded["Observation"][0])}
    observation.pop("id")
    provenance = {
        "resourceType": "Provenance",
        "target": [{"reference": urn}],
        "recorded": "2024-01-01T00:00:00Z",
        "agent": [{"who": {"display": "adapter"}}],
    }
    result = client.transaction([Entry.create(observation, urn), provenance])
    created = result.resolved[urn]
    assert created.startswith("Observation/")
    stored = [client.read("Observation", created.split("/")[1])]
    assert stored[0]["code"] == observation["code"]
    pointing = list(client.search("Provenance", {"target": created}))
    assert len(pointing) == 1
    for r in (f"Provenance/{pointing[0]['id']}", created):
        client.request("DELETE", r)


@pytest.mark.slow
def test_transaction_of_thousands_of_resources(fhir_base_url, iso_study):
    """2,000 resources in bundles of 500; a re-send creates nothing and makes no new versions.
    They belong to a Patient outside the study, so the pull tests do not see them."""
    client = _client(fhir_base_url)
    outsider = {"resourceType": "Patient", "id": stable_id("pt-outsider", iso_study.study.key)}
    many = [outsider] + [
        {
            "resourceType": "Observation",
            "id": stable_id("obs-bulkload", iso_study.study.key, n),
            "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "14771-0"}]},
            "subject": {"reference": f"Patient/{outsider['id']}"},
            "valueQuantity": {"value": round(5 + n / 1000, 3), "unit": "mmol/L"},
        }
        for n in range(1999)
    ]
    result = client.transaction(many, chunk_size=500)
    assert result.created == 2000 and result.bundles == 4
    assert client.count("Observation", {"subject": f"Patient/{outsider['id']}"}) == 1999
    again = client.transaction(many, chunk_size=500)
    assert again.created == 0 and again.updated == 2000
    assert client.read("Observation", many[-1]["id"])["meta"]["versionId"] == "1"  # no-change re-send


# -- pull --------------------------------------------------------------------------------------------
def test_pull_by_search_and_by_export_give_what_was_pushed(fhir_base_url, iso_study, seeded, tmp_path):
    client = _client(fhir_base_url, page_size=10)
    by_search = pull_search(client, iso_study, tmp_path / "search", ids_per_query=3)
    by_export = pull_bulk(_client(fhir_base_url), iso_study, tmp_path / "bulk", poll_cap=1.0)
    assert by_search.subjects == by_export.subjects == SUBJECTS
    pulled = _folder(tmp_path / "search")
    for rtype, pushed in seeded.items():
        assert [_without_meta(r) for r in pulled[rtype]] == sorted(pushed, key=lambda r: r["id"]), rtype
        assert all(r["meta"]["versionId"] for r in pulled[rtype])
    assert {t for t, rs in pulled.items() if rs} == set(seeded)
    for rtype in PULLED_TYPES:  # the two ways write byte-identical files
        assert (tmp_path / "search" / f"{rtype}.ndjson").read_bytes() == (
            tmp_path / "bulk" / f"{rtype}.ndjson"
        ).read_bytes(), rtype
    assert by_export.export_errors == []


def test_pull_since_brings_only_the_changes_and_merges_them(fhir_base_url, iso_study, seeded, tmp_path):
    out = tmp_path / "pull"
    first = pull_search(_client(fhir_base_url), iso_study, out)
    before = _folder(out)
    client = _client(fhir_base_url)
    changed = {
        **seeded["Observation"][1],
        "valueQuantity": {**seeded["Observation"][1]["valueQuantity"], "value": 8.5},
    }
    added = {**seeded["Observation"][0], "id": stable_id("obs", iso_study.study.key, "late")}
    client.transaction([changed, added])
    since = parse_since(first.next_since)
    for mode, result in (
        ("search", pull_search(client, iso_study, out, since)),
        ("bulk", pull_bulk(client, iso_study, out, since, poll_cap=1.0)),
    ):
        assert result.counts == {"Observation": 2}, mode
        after = _folder(out)
        assert len(after["Observation"]) == len(before["Observation"]) + 1
        by_id = {r["id"]: r for r in after["Observation"]}
        assert by_id[changed["id"]]["valueQuantity"]["value"] == 8.5
        assert by_id[changed["id"]]["meta"]["versionId"] == "2"
        assert added["id"] in by_id
        assert after["Patient"] == before["Patient"]
    client.transaction([seeded["Observation"][1], Entry.delete("Observation", added["id"])])


def test_cli_pull_json(fhir_base_url, mappings, seeded, tmp_path, monkeypatch):
    from adapter.cli import app

    monkeypatch.setenv("ADAPTER_MAPPINGS_DIR", str(mappings))
    monkeypatch.chdir(tmp_path)
    args = ["--fhir-url", fhir_base_url, "--state-dir", str(tmp_path / "state"), "pull", "--out", "out"]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["mode"] == "search" and summary["subjects"] == SUBJECTS
    assert summary["files"]["Observation"] == len(seeded["Observation"])
    assert summary["files"]["Provenance"] == len(seeded["Provenance"])
    bad = CliRunner().invoke(app, [*args, "--since", "yesterday"])
    assert bad.exit_code == 2 and "--since" in bad.output
