"""The server source: study-scoped, chunked, paged searches through FhirClient give the same endpoints as
the NDJSON folder; `--write-back` PUTs the HOMA Observations idempotently."""

from __future__ import annotations

from pathlib import Path

import responses
from fhir.resources.R4B import get_fhir_model_class

from adapter.endpoints import ServerSource, run_endpoints
from adapter.endpoints.config import EndpointsConfig
from adapter.fhir.client import FhirClient
from adapter.ids import patient_id
from adapter.push import push
from adapter.study import StudyConfig
from tests.endpoints.conftest import FACTORS, FIXTURE, Run
from tests.endpoints.fake_server import FakeFhirServer

BASE = "http://fhir.test/fhir"


def test_server_gives_the_same_endpoints_as_the_folder(
    tmp_path: Path, study: StudyConfig, endpoints_config: EndpointsConfig, fixture_run: Run
) -> None:
    server = FakeFhirServer(BASE, FIXTURE)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        server.register(mock)
        client = FhirClient(BASE)
        source = ServerSource(
            client, chunk_size=2, page_size=4
        )  # small pages and chunks: follow `next` links
        result = run_endpoints(source, tmp_path, study, endpoints_config, FACTORS, report=False)
    for name in (
        "endpoints.csv",
        "summary.csv",
        "comparisons.csv",
        "adverse_events.csv",
        "medications.csv",
        "sdtm/lb.csv",
        "sdtm/ae.csv",
        "sdtm/cm.csv",
        "derived/Observation.ndjson",
    ):
        assert (tmp_path / name).read_text(encoding="utf-8") == (fixture_run.out / name).read_text(
            encoding="utf-8"
        ), name
    assert result.rejected == fixture_run.result.rejected
    # searches were scoped: ResearchSubjects by study, the rest by the study's patients (never a whole type)
    kinds = {t for t, _ in server.searches}
    assert kinds == {
        "ResearchSubject",
        "Patient",
        "Procedure",
        "Observation",
        "MedicationStatement",
        "Medication",
        "AdverseEvent",
    }
    for resource_type, params in server.searches:
        assert params.keys() & {"study", "_id", "subject"}, (resource_type, params)
        if resource_type == "Observation":  # by patients only: subject + code together is slow on HAPI
            assert "code" not in params
    # the other study's patient was never asked for
    assert patient_id(study.study.key, "X99") not in str(server.searches)


def test_write_back_is_idempotent(tmp_path: Path, fixture_run: Run) -> None:
    derived = fixture_run.result.derived
    # 15 defined HOMA values: E01 2+2, E02 4 IR + 3 %B (M1 undefined), C01 2, C02 2
    assert len(derived) == 15
    for resource in derived:
        get_fhir_model_class("Observation").model_validate(resource)
        assert len(resource["derivedFrom"]) == 2
    server = FakeFhirServer(BASE)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        server.register(mock)
        client = FhirClient(BASE)
        first = push(client, derived, 200, "write-back")
        second = push(client, derived, 200, "write-back")
    assert first.created == 15 and second.created == 0
    sent = [[(e["request"]["method"], e["request"]["url"]) for e in b["entry"]] for b in server.transactions]
    assert sent[0] == sent[1]
    assert all(method == "PUT" for method, _ in sent[0])
    assert len({url for _, url in sent[0]}) == 15
