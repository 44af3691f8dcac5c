"""Against the local HAPI server: the demo trial pushed to the server gives the same endpoints as its NDJSON
folder, and `--write-back` stores the HOMA Observations once (a re-run changes nothing).

The run uses its own copy of mappings/ with another study key, so its resources never mix with those other
integration tests put on the shared server.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapter.cli import app
from adapter.fhir.client import FhirClient
from adapter.ndjson import iter_resources
from adapter.push import push
from adapter.study import default_mappings_dir

pytestmark = pytest.mark.integration
runner = CliRunner()
KEY = "ENDPOINTS-IT"
PUSHED = (
    "Organization",
    "Location",
    "PlanDefinition",
    "ResearchStudy",
    "Patient",
    "ResearchSubject",
    "Group",
    "Procedure",
    "Observation",
    "MedicationStatement",
    "AdverseEvent",
)


def cli(env: dict[str, str], *args: str) -> dict:
    result = runner.invoke(app, [*args, "--json"], env=env)
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The demo trial (20 subjects) converted offline into one NDJSON folder, under study key ENDPOINTS-IT."""
    root = tmp_path_factory.mktemp("endpoints-it")
    mappings = root / "mappings"
    shutil.copytree(default_mappings_dir(), mappings)
    study_yaml = mappings / "study.yaml"
    study_yaml.write_text(
        study_yaml.read_text(encoding="utf-8")
        .replace("key: NCT03943940", f"key: {KEY}", 1)
        .replace("value: NCT03943940", f"value: {KEY}", 1)
    )
    env = {"ADAPTER_MAPPINGS_DIR": str(mappings), "ADAPTER_STATE_DIR": str(root / "state")}
    demo, folder = root / "demo", root / "ndjson"
    cli(env, "demo", "generate", "--out", str(demo), "--subjects", "20", "--seed", "7")
    roster = str(demo / "roster.csv")
    cli(env, "convert", "roster", roster, "--out", str(folder))
    cli(
        env,
        "convert",
        "hl7",
        *map(str, sorted((demo / "hl7").iterdir())),
        "--roster",
        roster,
        "--out",
        str(folder),
    )
    cli(env, "convert", "meds", str(demo / "meds.csv"), "--roster", roster, "--out", str(folder))
    cli(env, "convert", "ae", str(demo / "ae.csv"), "--roster", roster, "--out", str(folder))
    return folder, env


def test_server_and_folder_give_the_same_endpoints(
    fhir_base_url: str, demo_folder: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    folder, env = demo_folder
    resources = [r for t in PUSHED for r in iter_resources(folder, t)]
    push(FhirClient(fhir_base_url, timeout=120), resources, 200, "push demo")

    from_folder = cli(env, "endpoints", "--source", str(folder), "--out", str(tmp_path / "folder"))
    from_server = cli(env, "endpoints", "--source", fhir_base_url, "--out", str(tmp_path / "server"))
    assert from_folder["subjects"] == from_server["subjects"] == 20
    for name in (
        "endpoints.csv",
        "summary.csv",
        "comparisons.csv",
        "adverse_events.csv",
        "ae_listing.csv",
        "medications.csv",
        "sdtm/dm.csv",
        "sdtm/lb.csv",
        "sdtm/cm.csv",
        "sdtm/ex.csv",
    ):
        assert (tmp_path / "folder" / name).read_bytes() == (tmp_path / "server" / name).read_bytes(), name


def test_write_back_is_idempotent_on_the_server(
    fhir_base_url: str, demo_folder: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    folder, env = demo_folder
    resources = [r for t in PUSHED for r in iter_resources(folder, t)]
    client = FhirClient(fhir_base_url, timeout=120)
    push(client, resources, 200, "push demo")
    first = cli(env, "endpoints", "--source", fhir_base_url, "--out", str(tmp_path / "a"), "--write-back")
    second = cli(env, "endpoints", "--source", fhir_base_url, "--out", str(tmp_path / "b"), "--write-back")
    derived = list(iter_resources(tmp_path / "a" / "derived", "Observation"))
    assert derived and first["written_back"]["resources"] == second["written_back"]["resources"] == len(
        derived
    )
    assert second["written_back"]["created"] == 0
    # the derived Observations did not feed back into the endpoints
    assert (tmp_path / "a" / "endpoints.csv").read_bytes() == (tmp_path / "b" / "endpoints.csv").read_bytes()
    stored = client.read("Observation", derived[0]["id"])
    assert stored is not None
    assert stored["meta"]["versionId"] == "1"  # the identical re-send made no new version
    for ref in stored["derivedFrom"]:
        kind, rid = ref["reference"].split("/")
        assert client.read(kind, rid) is not None
