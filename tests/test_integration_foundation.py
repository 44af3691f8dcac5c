"""The foundation path on the real local HAPI server: push, read back equal, re-run duplicates nothing."""

import pytest
from typer.testing import CliRunner

from adapter.cli import app
from adapter.fhir.client import FhirClient
from adapter.mapping.study import study_resources
from adapter.mapping.subjects import roster_conversion

pytestmark = pytest.mark.integration
runner = CliRunner()


def _strip(resource):
    return {k: v for k, v in resource.items() if k not in ("meta", "text")}


def _counts(client, study):
    key = study.study.key
    return {
        "ResearchStudy": client.count("ResearchStudy", {"identifier": f"https://clinicaltrials.gov|{key}"}),
        "Patient": client.count("Patient", {"identifier": f"{study.system('subject-id')}|"}),
        "ResearchSubject": client.count("ResearchSubject", {"identifier": f"{study.system('subject-id')}|"}),
        "Group": client.count("Group", {"identifier": f"{study.system('group')}|{key}-enrolled"}),
    }


def test_study_push_and_enroll_round_trip(fhir_base_url, tmp_path, roster_file, roster, study):
    args = ["--fhir-url", fhir_base_url, "--state-dir", str(tmp_path / "state")]
    assert runner.invoke(app, [*args, "study", "push"]).exit_code == 0
    result = runner.invoke(app, [*args, "enroll", str(roster_file)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "state" / "roster.csv").read_text() == roster_file.read_text()

    client = FhirClient(fhir_base_url)
    for resource in study_resources(study) + roster_conversion(roster, study).resources:
        stored = client.read(resource["resourceType"], resource["id"])
        assert stored is not None, f"{resource['resourceType']}/{resource['id']} missing"
        assert _strip(stored) == _strip(resource)

    before = _counts(client, study)
    assert before["ResearchStudy"] == 1 and before["Group"] == 1
    assert before["Patient"] >= 3
    versions = client.read("Patient", roster_conversion(roster, study).resources[4]["id"])["meta"][
        "versionId"
    ]
    assert runner.invoke(app, [*args, "study", "push"]).exit_code == 0
    assert runner.invoke(app, [*args, "enroll", str(roster_file)]).exit_code == 0
    assert _counts(client, study) == before
    again = client.read("Patient", roster_conversion(roster, study).resources[4]["id"])["meta"]["versionId"]
    assert again == versions, "an identical re-send must not create a new version"
