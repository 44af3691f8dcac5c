"""The FHIR client against a mocked server: paging, capability checks, transactions, readable errors."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from fhir.resources.R4B import get_fhir_model_class

from adapter.errors import ConfigError, ServerRejected
from adapter.fhir.capabilities import CapabilityError, minimal_statement
from adapter.fhir.client import Entry, FhirClient, TransactionRejected, locate_failing_entry, new_urn
from tests.fhir.conftest import BASE


def _obs(i: int, patient: str = "pt-1") -> dict:
    return {
        "resourceType": "Observation",
        "id": f"obs-{i:03d}",
        "status": "final",
        "code": {"text": "glucose"},
        "subject": {"reference": f"Patient/{patient}"},
    }


def _page(resources, next_url=None, included=()):
    page = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources]
        + [{"resource": r, "search": {"mode": "include"}} for r in included],
    }
    if next_url:
        page["link"] = [{"relation": "next", "url": next_url}]
    return page


def _sent_bundles(rsps) -> list[dict]:
    return [json.loads(c.request.body) for c in rsps.calls if c.request.method == "POST"]


def _answer(request):
    """A transaction-response echoing each entry: 201 with a new id for POST, 200 for PUT."""
    bundle = json.loads(request.body)
    entries = []
    for n, entry in enumerate(bundle["entry"]):
        if entry["request"]["method"] == "POST":
            entries.append(
                {"response": {"status": "201 Created", "location": f"Observation/{900 + n}/_history/1"}}
            )
        else:
            entries.append(
                {"response": {"status": "200 OK", "location": f"{entry['request']['url']}/_history/2"}}
            )
    return 200, {}, json.dumps({"resourceType": "Bundle", "type": "transaction-response", "entry": entries})


# -- reads -------------------------------------------------------------------------------------------
def test_search_follows_next_links_with_count(client, rsps):
    page2 = f"{BASE}?_getpages=abc&_getpagesoffset=2&_count=2"
    page3 = f"{BASE}?_getpages=abc&_getpagesoffset=4&_count=2"
    rsps.get(f"{BASE}/Observation", json=_page([_obs(1), _obs(2)], page2))
    rsps.get(page2, json=_page([_obs(3), _obs(4)], page3))
    rsps.get(page3, json=_page([_obs(5)]))
    found = [r["id"] for r in client.search("Observation", {"subject": "Patient/pt-1"})]
    assert found == ["obs-001", "obs-002", "obs-003", "obs-004", "obs-005"]
    first = parse_qs(urlsplit(rsps.calls[0].request.url).query)
    assert first == {"_count": ["2"], "subject": ["Patient/pt-1"]}
    assert len(rsps.calls) == 3


def test_search_entries_yields_includes_and_search_yields_matches_only(client, rsps):
    patient = {"resourceType": "Patient", "id": "pt-1"}
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "warning", "code": "processing"}]}
    page = _page([_obs(1)], included=[patient])
    page["entry"].append({"resource": outcome, "search": {"mode": "outcome"}})
    rsps.get(f"{BASE}/Observation", json=page)
    assert [(m, r["resourceType"]) for m, r in client.search_entries("Observation")] == [
        ("match", "Observation"),
        ("include", "Patient"),
    ]
    assert [r["id"] for r in client.search("Observation")] == ["obs-001"]


def test_a_next_link_seen_twice_ends_the_search(client, rsps):
    loop = f"{BASE}?_getpages=loop"
    rsps.get(f"{BASE}/Observation", json=_page([_obs(1)], loop))
    rsps.get(loop, json=_page([_obs(2)], loop))
    assert len(list(client.search("Observation"))) == 2


def test_read_of_a_missing_resource_is_none(client, rsps):
    rsps.get(f"{BASE}/Patient/nope", status=404, json={"resourceType": "OperationOutcome", "issue": []})
    rsps.get(f"{BASE}/Patient/gone", status=410)
    assert client.read("Patient", "nope") is None
    assert client.read("Patient", "gone") is None


def test_operation_outcome_becomes_a_readable_error(client, rsps):
    rsps.get(
        f"{BASE}/Observation",
        status=400,
        json={
            "resourceType": "OperationOutcome",
            "issue": [
                {
                    "severity": "error",
                    "code": "invalid",
                    "diagnostics": 'HAPI-0524: Unknown search parameter "foo"',
                    "expression": ["Observation.foo"],
                }
            ],
        },
    )
    with pytest.raises(ServerRejected) as error:
        list(client.search("Observation", {"foo": "MRN-secret"}))
    assert str(error.value) == (
        'FHIR server rejected GET Observation (400): error: HAPI-0524: Unknown search parameter "foo" '
        "(at Observation.foo)"
    )
    assert error.value.status == 400
    assert "MRN-secret" not in str(error.value)


# -- capabilities ----------------------------------------------------------------------------------
def test_capabilities_are_read_once_and_required_features_checked(client, rsps):
    rsps.get(f"{BASE}/metadata", json=minimal_statement(["transaction", "export"]))
    client.require("transaction")
    client.require("transaction", "export")
    assert len(rsps.calls) == 1


@pytest.mark.parametrize(
    ("statement", "features", "message"),
    [
        (minimal_statement(["export"]), ["transaction"], "lacks transaction bundles"),
        (minimal_statement(["transaction"]), ["export"], r"lacks the Bulk Data operation \$export"),
        ({**minimal_statement(), "fhirVersion": "3.0.2"}, [], r"FHIR R4.*it reports fhirVersion 3.0.2"),
        ({"resourceType": "Bundle"}, [], "did not return a CapabilityStatement"),
    ],
)
def test_missing_capabilities_fail_early_naming_what_is_missing(client, rsps, statement, features, message):
    rsps.get(f"{BASE}/metadata", json=statement)
    with pytest.raises(CapabilityError, match=message) as error:
        client.require(*features)
    assert isinstance(error.value, ConfigError) and error.value.exit_code == 2


def test_export_declared_on_group_with_a_dollar_counts():
    from adapter.fhir.capabilities import Capabilities

    statement = minimal_statement(["transaction"])
    statement["rest"][0]["resource"] = [{"type": "Group", "operation": [{"name": "$export"}]}]
    assert Capabilities.from_statement(statement).has("export")


# -- writes ----------------------------------------------------------------------------------------
def test_transaction_puts_by_id_in_chunks(client, rsps):
    rsps.add_callback(responses.POST, BASE, callback=_answer)
    chunks_done = []
    result = client.transaction([_obs(i) for i in range(5)], chunk_size=2, on_chunk=chunks_done.append)
    bundles = _sent_bundles(rsps)
    assert [len(b["entry"]) for b in bundles] == [2, 2, 1]
    assert chunks_done == [2, 2, 1]
    first = bundles[0]["entry"][0]
    assert first["request"] == {"method": "PUT", "url": "Observation/obs-000"}
    assert first["fullUrl"] == f"{BASE}/Observation/obs-000"
    assert result.updated == 5 and result.created == 0 and result.bundles == 3
    assert result.entries == [f"Observation/obs-{i:03d}" for i in range(5)]
    Bundle = get_fhir_model_class("Bundle")
    for bundle in bundles:
        Bundle.model_validate(bundle)


def test_urn_uuid_creates_stay_in_the_bundle_of_what_refers_to_them(client, rsps):
    rsps.add_callback(responses.POST, BASE, callback=_answer)
    urn = new_urn()
    target = Entry.create({"resourceType": "Observation", "status": "final", "code": {"text": "a"}}, urn)
    referrer = {
        "resourceType": "Provenance",
        "id": "prov-1",
        "target": [{"reference": urn}],
        "recorded": "2024-01-01T00:00:00Z",
        "agent": [{"who": {"display": "adapter"}}],
    }
    items = [_obs(1), _obs(2), target, _obs(3), referrer]
    result = client.transaction(items, chunk_size=2)
    bundles = _sent_bundles(rsps)
    layout = [[e["fullUrl"].rsplit("/", 1)[-1] for e in b["entry"]] for b in bundles]
    # obs-001 and obs-002 fill the first bundle; the create and its referrer share a bundle even
    # though obs-003 came between them in the input.
    assert layout == [["obs-001", "obs-002"], [urn, "prov-1"], ["obs-003"]]
    create = bundles[1]["entry"][0]
    assert create["request"] == {"method": "POST", "url": "Observation"}
    assert create["fullUrl"] == urn
    assert result.resolved == {urn: "Observation/900"}
    for bundle in bundles:
        get_fhir_model_class("Bundle").model_validate(bundle)


def test_a_resource_without_id_is_posted_under_a_urn(client, rsps):
    rsps.add_callback(responses.POST, BASE, callback=_answer)
    client.transaction([{"resourceType": "Observation", "status": "final", "code": {"text": "x"}}])
    entry = _sent_bundles(rsps)[0]["entry"][0]
    assert entry["request"]["method"] == "POST" and entry["fullUrl"].startswith("urn:uuid:")


def test_version_aware_transaction_sends_if_match(client, rsps):
    rsps.add_callback(responses.POST, BASE, callback=_answer)
    stored = {**_obs(1), "meta": {"versionId": "3"}}
    client.transaction([stored, _obs(2)], version_aware=True)
    entries = _sent_bundles(rsps)[0]["entry"]
    assert entries[0]["request"]["ifMatch"] == 'W/"3"'
    assert "ifMatch" not in entries[1]["request"]


def test_put_with_if_match_and_a_version_conflict(client, rsps):
    stored = {**_obs(1), "meta": {"versionId": "3"}}
    rsps.put(
        f"{BASE}/Observation/obs-001",
        status=412,
        json={
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "conflict", "diagnostics": "version 4 is current"}],
        },
    )
    with pytest.raises(ServerRejected, match=r"\(412\).*version 4 is current.*changed on the server"):
        client.put(stored, if_match=True)
    assert rsps.calls[0].request.headers["If-Match"] == 'W/"3"'


def _rejecting(status, issue):
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "processing", **issue}],
    }
    return lambda request: (status, {}, json.dumps(body))


def test_transaction_error_names_the_entry_from_its_expression(client, rsps):
    rsps.add_callback(
        responses.POST,
        BASE,
        callback=_rejecting(
            422,
            {
                "diagnostics": "Observation.status: minimum required = 1",
                "expression": ["Bundle.entry[1].resource"],
            },
        ),
    )
    with pytest.raises(TransactionRejected) as error:
        client.transaction([_obs(1), _obs(2), _obs(3)])
    assert error.value.resource == "Observation/obs-002"
    assert "bundle 1 of 1 (3 entries, nothing of it written) at Observation/obs-002 (422)" in str(error.value)
    assert "minimum required" in str(error.value)


def test_transaction_error_naming_a_missing_target_points_at_its_referrers(client, rsps):
    rsps.add_callback(
        responses.POST,
        BASE,
        callback=_rejecting(
            400,
            {
                "diagnostics": "HAPI-1094: Resource Patient/pt-9 not found, "
                "specified in path: Observation.subject"
            },
        ),
    )
    with pytest.raises(TransactionRejected) as error:
        client.transaction([_obs(1), _obs(2, "pt-9"), _obs(3, "pt-9")])
    assert error.value.resource == "Observation/obs-002"
    assert "entries referring to Patient/pt-9: Observation/obs-002, Observation/obs-003" in str(error.value)


def test_transaction_error_naming_the_entry_itself(client, rsps):
    rsps.add_callback(
        responses.POST,
        BASE,
        callback=_rejecting(409, {"diagnostics": "HAPI-0550: Observation/obs-002 is locked"}),
    )
    with pytest.raises(TransactionRejected) as error:
        client.transaction([_obs(1), _obs(2), _obs(3)], chunk_size=2)
    assert error.value.resource == "Observation/obs-002"
    assert "bundle 1 of 2 (2 entries, nothing of it written) at Observation/obs-002 (409)" in str(error.value)


def test_locate_failing_entry_without_a_clue():
    assert locate_failing_entry({"resourceType": "OperationOutcome", "issue": []}, [Entry.put(_obs(1))]) == (
        None,
        "",
    )


def test_clients_from_settings_check_the_server_before_the_first_write(rsps):
    from adapter.fhir.client import client_for
    from adapter.settings import Settings

    rsps.get(f"{BASE}/metadata", json=minimal_statement(["export"]))
    client = client_for(Settings(fhir_url=BASE))
    with pytest.raises(CapabilityError, match="lacks transaction bundles"):
        client.transaction([_obs(1)])
    assert [c.request.method for c in rsps.calls] == ["GET"]  # nothing was sent


def test_capability_check_happens_once_per_client(rsps, retry):
    rsps.get(f"{BASE}/metadata", json=minimal_statement(["transaction"]))
    rsps.add_callback(responses.POST, BASE, callback=_answer)
    client = FhirClient(BASE, retry=retry, check_capabilities=True)
    client.transaction([_obs(1)])
    client.transaction([_obs(2)])
    assert [c.request.method for c in rsps.calls] == ["GET", "POST", "POST"]


# -- links the server hands out ------------------------------------------------------------------------
def test_next_links_resolve_relative_and_absolute_path_forms(client, rsps):
    rsps.get(f"{BASE}/Observation", json=_page([_obs(1)], "/r4/Observation?page=2"))
    rsps.get(f"{BASE}/Observation?page=2", json=_page([_obs(2)], "Observation?page=3"))
    rsps.get(f"{BASE}/Observation?page=3", json=_page([_obs(3)]))
    assert [r["id"] for r in client.search("Observation")] == ["obs-001", "obs-002", "obs-003"]


def test_a_link_with_the_servers_internal_address_is_moved_onto_the_configured_origin(rsps, retry, caplog):
    from requests.auth import HTTPBasicAuth

    client = FhirClient(BASE, auth=HTTPBasicAuth("u", "secret"), retry=retry)
    internal = "http://hapi-internal:8080/r4?_getpages=abc&_getpagesoffset=2"
    rsps.get(f"{BASE}/Observation", json=_page([_obs(1)], internal))
    rsps.get(f"{BASE}?_getpages=abc&_getpagesoffset=2", json=_page([_obs(2)]))
    assert [r["id"] for r in client.search("Observation")] == ["obs-001", "obs-002"]
    assert all(c.request.url.startswith(BASE) for c in rsps.calls)  # never to http://hapi-internal
    assert "proxy configuration" in caplog.text and "secret" not in caplog.text


def test_a_link_to_another_origin_is_refused_before_anything_is_sent(rsps, retry):
    from requests.auth import HTTPBasicAuth

    client = FhirClient(BASE, auth=HTTPBasicAuth("u", "secret"), retry=retry)
    rsps.get(f"{BASE}/Observation", json=_page([_obs(1)], "http://elsewhere.example.com/steal?page=2"))
    with pytest.raises(ServerRejected, match="another origin"):
        list(client.search("Observation"))
    assert len(rsps.calls) == 1


def test_a_version_aware_update_is_not_resent_after_a_500(client, rsps):
    from adapter.errors import ServerUnreachable

    stored = {**_obs(1), "meta": {"versionId": "3"}}
    rsps.put(f"{BASE}/Observation/obs-001", status=500, json={"resourceType": "OperationOutcome"})
    with pytest.raises(ServerUnreachable):
        client.put(stored, if_match=True)
    assert len(rsps.calls) == 1  # had it been saved, a re-send would only get 409/412
    assert Entry.put(stored, if_match="3").idempotent is False and Entry.put(stored).idempotent is True
