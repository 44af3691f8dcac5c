"""Medications, adverse events and the intervention on the real local HAPI server: push, read back equal,
nothing rejected by the server, no duplicates and no new versions on a re-run."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from adapter.ae.convert import convert_files as convert_ae
from adapter.cli import app
from adapter.fhir.client import FhirClient
from adapter.hl7.convert import convert_files as convert_hl7
from adapter.ids import patient_id
from adapter.meds.convert import convert_files as convert_meds
from tests.meds.helpers import FIXTURES, context

pytestmark = pytest.mark.integration
runner = CliRunner()

ROSTER = FIXTURES / "meds" / "roster.csv"
INPUTS = [
    ("meds", FIXTURES / "meds" / "his-export.csv"),
    ("ae", FIXTURES / "ae" / "crf-ae.csv"),
    ("hl7", FIXTURES / "meds" / "pharmacy.hl7"),
]
SUBJECTS = ("VH-001", "VH-002", "VH-003")
TYPES = ("MedicationStatement", "MedicationAdministration", "AdverseEvent", "Procedure", "Observation")


def _strip(resource):
    return {k: v for k, v in resource.items() if k not in ("meta", "text")}


def _counts(client, study):
    key = study.study.key
    return {
        (t, s): client.count(t, {"subject": f"Patient/{patient_id(key, s)}"}) for t in TYPES for s in SUBJECTS
    }


def _ingest(args, kind, path):
    result = runner.invoke(app, [*args, "ingest", kind, str(path), "--roster", str(ROSTER), "--json"])
    # exit 1: the fixtures hold deliberately bad rows/messages; a server rejection would be exit 2
    assert result.exit_code == 1, result.output
    return result


def test_meds_ae_and_intervention_round_trip(fhir_base_url, tmp_path, study):
    args = ["--fhir-url", fhir_base_url, "--state-dir", str(tmp_path / "state")]
    assert runner.invoke(app, [*args, "study", "push"]).exit_code == 0
    enrolled = runner.invoke(app, [*args, "enroll", str(ROSTER)])
    assert enrolled.exit_code == 0, enrolled.output
    for kind, path in INPUTS:
        _ingest(args, kind, path)

    ctx = context(study)
    expected = (
        convert_meds([INPUTS[0][1]], ctx).resources
        + convert_ae([INPUTS[1][1]], ctx).resources
        + convert_hl7([INPUTS[2][1]], ctx).resources
    )
    client = FhirClient(fhir_base_url)
    for resource in expected:
        stored = client.read(resource["resourceType"], resource["id"])
        assert stored is not None, f"{resource['resourceType']}/{resource['id']} missing"
        assert _strip(stored) == _strip(resource)

    before = _counts(client, study)
    assert before[("Procedure", "VH-001")] == 2  # harvest + infusion, from `enroll`
    assert before[("Procedure", "VH-002")] == 0
    assert before[("Observation", "VH-001")] == 1  # body weight
    assert before[("MedicationStatement", "VH-001")] == 6  # 4 CSV lines + 2 HL7 orders
    assert before[("AdverseEvent", "VH-001")] == 5
    sample = [r for r in expected if r["resourceType"] in ("MedicationStatement", "AdverseEvent")][:4]
    versions = {r["id"]: client.read(r["resourceType"], r["id"])["meta"]["versionId"] for r in sample}

    for kind, path in INPUTS:
        _ingest(args, kind, path)
    assert _counts(client, study) == before
    again = {r["id"]: client.read(r["resourceType"], r["id"])["meta"]["versionId"] for r in sample}
    assert again == versions, "an identical re-send must not create a new version"
