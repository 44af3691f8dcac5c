"""The whole corpus pushed to the local HAPI FHIR server: no rejections, versions as designed."""

from __future__ import annotations

import pytest

from adapter.converters import ConvertContext
from adapter.fhir.client import FhirClient
from adapter.hl7 import split_messages
from adapter.hl7.convert import convert_files, convert_message
from adapter.ids import stable_id
from adapter.mapping.subjects import roster_conversion
from adapter.push import dedupe, dependency_order
from tests.hl7.conftest import CORPUS, corpus_files

pytestmark = pytest.mark.integration


def _send(client: FhirClient, resources: list[dict]) -> list[str]:
    return client.transaction(dependency_order(dedupe(resources)), 200).statuses


def _history(client: FhirClient, resource_type: str, resource_id: str) -> list[dict]:
    bundle = client.request("GET", f"{resource_type}/{resource_id}/_history").json()
    return [e["resource"] for e in bundle.get("entry", [])]


def test_corpus_is_accepted_by_hapi_and_versions_follow_the_messages(
    fhir_base_url: str, hl7_ctx: ConvertContext
) -> None:
    client = FhirClient(fhir_base_url)
    subjects = roster_conversion(hl7_ctx.roster, hl7_ctx.study)
    assert all(s.startswith(("200", "201")) for s in _send(client, subjects.resources))

    # P, then F, then C of one order, each message in its own transaction: one Observation, 3 versions
    glucose = stable_id("obs", "VANHANH", "F190620001", "GLU-F^L", "")
    for index, raw in enumerate(split_messages((CORPUS / "status-sequence.hl7").read_bytes())[:3], 1):
        _send(client, convert_message(raw, hl7_ctx, "status-sequence.hl7", index).resources)
    versions = _history(client, "Observation", glucose)
    assert sorted((r["status"], r["valueQuantity"]["value"]) for r in versions) == [
        ("corrected", 8.2),
        ("final", 8.1),
        ("preliminary", 8.0),
    ]

    conversion = convert_files(corpus_files(), hl7_ctx)
    statuses = _send(client, conversion.resources)
    assert len(statuses) == len(conversion.resources)
    assert all(s.startswith(("200", "201")) for s in statuses), statuses
    current = client.read("Observation", glucose)
    assert current is not None
    assert (current["status"], current["valueQuantity"]["value"]) == ("corrected", 8.2)
    assert current["subject"]["reference"].startswith("Patient/pt-")

    # an identical re-send changes nothing on the server (no new versions)
    before = {
        r["id"]: client.read(r["resourceType"], r["id"])["meta"]["versionId"]
        for r in conversion.resources[:20]
    }
    _send(client, convert_files(corpus_files(), hl7_ctx).resources)
    after = {
        r["id"]: client.read(r["resourceType"], r["id"])["meta"]["versionId"]
        for r in conversion.resources[:20]
    }
    assert before == after
