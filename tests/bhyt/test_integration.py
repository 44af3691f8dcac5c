"""`adapter ingest bhyt` into the real local HAPI server: stored as converted, no duplicates on re-run."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from adapter.bhyt.convert import convert_files
from adapter.cli import app
from adapter.fhir.client import FhirClient
from adapter.ids import patient_id
from tests.bhyt.helpers import FIXTURES, context

pytestmark = pytest.mark.integration
runner = CliRunner()
FILES = ["qd130-outpatient.xml", "qd4210-inpatient.xml"]


def _counts(client: FhirClient, study) -> dict[str, int]:
    out = {}
    for subject in ("S101", "S102"):
        ref = f"Patient/{patient_id(study.study.key, subject)}"
        out[f"{subject} MedicationStatement"] = client.count("MedicationStatement", {"subject": ref})
        # laboratory only: `enroll` also stores the body weight
        out[f"{subject} Observation"] = client.count(
            "Observation", {"subject": ref, "category": "laboratory"}
        )
    return out


def _strip(resource):
    return {k: v for k, v in resource.items() if k not in ("meta", "text")}


def test_ingest_stores_what_convert_makes_and_a_rerun_or_reexport_duplicates_nothing(
    fhir_base_url, tmp_path, study
):
    args = ["--fhir-url", fhir_base_url, "--state-dir", str(tmp_path / "state")]
    roster = str(FIXTURES / "roster.csv")
    assert runner.invoke(app, [*args, "study", "push"]).exit_code == 0
    enrolled = runner.invoke(app, [*args, "enroll", roster])
    assert enrolled.exit_code == 0, enrolled.output
    paths = [str(FIXTURES / name) for name in FILES]
    result = runner.invoke(app, [*args, "ingest", "bhyt", *paths])  # the roster kept by `enroll`
    assert result.exit_code == 0, result.output

    client = FhirClient(fhir_base_url)
    converted = convert_files([FIXTURES / name for name in FILES], context(study))
    for resource in converted.resources:
        stored = client.read(resource["resourceType"], resource["id"])
        assert stored is not None, f"{resource['resourceType']}/{resource['id']} missing"
        assert _strip(stored) == _strip(resource)
    before = _counts(client, study)
    # S101: 6 statements + 4 results; S102: 4 statements + 3 (4210 stay) + 2 (outpatient labs) results
    assert before == {
        "S101 MedicationStatement": 6,
        "S101 Observation": 4,
        "S102 MedicationStatement": 4,
        "S102 Observation": 5,
    }
    statement = next(r for r in converted.resources if r["resourceType"] == "MedicationStatement")
    version = client.read("MedicationStatement", statement["id"])["meta"]["versionId"]

    again = runner.invoke(app, [*args, "ingest", "bhyt", *paths])
    assert again.exit_code == 0, again.output
    assert _counts(client, study) == before
    assert client.read("MedicationStatement", statement["id"])["meta"]["versionId"] == version

    corrected = runner.invoke(app, [*args, "ingest", "bhyt", str(FIXTURES / "qd4750-reexport.xml")])
    assert corrected.exit_code == 0, corrected.output
    assert _counts(client, study) == before, "a corrected re-export updates, it never adds"
    glucose = next(
        r
        for r in convert_files([FIXTURES / "qd4750-reexport.xml"], context(study)).resources
        if r["resourceType"] == "Observation" and r["code"]["text"] == "Glucose"
    )
    assert client.read("Observation", glucose["id"])["valueQuantity"]["value"] == 7.6
