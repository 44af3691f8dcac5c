"""Bulk export edge cases, TLS session settings, and locating failing entries in HAPI's own words."""

from __future__ import annotations

import json

import pytest
import requests

from adapter.errors import ConfigError, ServerError
from adapter.fhir import bulk
from adapter.fhir.auth import BearerAuth
from adapter.fhir.client import Entry, FhirClient, client_for, locate_failing_entry
from adapter.fhir.session import build_session
from adapter.settings import Settings, TlsSettings
from tests.fhir.conftest import BASE

STATUS = f"{BASE}/$export-poll-status?_jobId=42"


def test_export_kick_off_sends_prefer_and_returns_the_status_url(client, rsps):
    rsps.get(f"{BASE}/Group/g1/$export", status=202, headers={"Content-Location": STATUS})
    assert bulk.kick_off(client, "Group/g1/$export", {"_type": "Patient"}) == STATUS
    sent = rsps.calls[0].request
    assert sent.headers["Prefer"] == "respond-async"
    assert sent.url == f"{BASE}/Group/g1/$export?_type=Patient"


def test_kick_off_without_202_is_an_error(client, rsps):
    rsps.get(f"{BASE}/Group/g1/$export", status=200, json={})
    with pytest.raises(bulk.ExportFailed, match="expected 202 Accepted"):
        bulk.kick_off(client, "Group/g1/$export", {})


def test_polling_honours_retry_after_up_to_the_cap_and_reports_progress(client, rsps, fake_time):
    rsps.get(STATUS, status=202, headers={"Retry-After": "2", "X-Progress": "10%"})
    rsps.get(STATUS, status=202, headers={"Retry-After": "120", "X-Progress": "60%"})
    rsps.get(STATUS, status=202, headers={"X-Progress": "90%"})
    rsps.get(
        STATUS, json={"transactionTime": "2024-06-01T00:00:00Z", "requiresAccessToken": True, "output": []}
    )
    seen = []
    manifest = bulk.wait_for_manifest(client, STATUS, poll_cap=10, on_progress=seen.append)
    assert seen == ["10%", "60%", "90%"]
    assert fake_time.sleeps == [2.0, 10.0, 0.5 * 1.5**3]  # as asked, capped, own backoff without a header
    assert manifest.transaction_time == "2024-06-01T00:00:00Z" and manifest.requires_access_token


def test_a_failed_export_reports_the_servers_outcome(client, rsps):
    rsps.get(
        STATUS,
        status=500,
        json={
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "diagnostics": "job failed"}],
        },
    )
    with pytest.raises(bulk.ExportFailed, match=r"\$export failed \(500\): error: job failed"):
        bulk.wait_for_manifest(client, STATUS)
    assert len(rsps.calls) == 1  # a 500 on the status URL is an answer, not a transient failure


def test_polling_gives_up_after_the_timeout(client, rsps, fake_time):
    rsps.get(STATUS, status=202, headers={"Retry-After": "30", "X-Progress": "stuck"})
    with pytest.raises(bulk.ExportFailed, match=r"not finished after 60 s .*stuck"):
        bulk.wait_for_manifest(client, STATUS, timeout=60, poll_cap=30)
    assert sum(fake_time.sleeps) <= 60


def test_downloads_carry_the_token_only_when_the_manifest_requires_it(rsps, retry):
    client = FhirClient(BASE, auth=BearerAuth("tok"), retry=retry)
    file = bulk.ExportFile("Patient", "https://storage.example.org/f1.ndjson")
    rsps.get(file.url, body='{"resourceType":"Patient","id":"a"}\n\n{"resourceType":"Patient","id":"b"}\n')
    assert [r["id"] for r in bulk.iter_file(client, file, requires_access_token=False)] == ["a", "b"]
    assert "Authorization" not in rsps.calls[0].request.headers
    list(bulk.iter_file(client, file, requires_access_token=True))
    assert rsps.calls[1].request.headers["Authorization"] == "Bearer tok"
    assert rsps.calls[1].request.headers["Accept"] == "application/fhir+ndjson"


def test_a_broken_ndjson_line_names_type_and_line(client, rsps):
    file = bulk.ExportFile("Observation", f"{BASE}/Binary/x")
    rsps.get(file.url, body='{"resourceType":"Observation","id":"a"}\n{"resourceType":\n')
    with pytest.raises(bulk.ExportFailed, match="Observation line 2: not JSON"):
        list(bulk.iter_file(client, file))


# -- TLS -------------------------------------------------------------------------------------------
def test_tls_defaults_verify_and_no_client_cert():
    session = build_session(TlsSettings())
    assert session.verify is True and session.cert is None


def test_tls_ca_bundle_and_client_certificate(tmp_path):
    for name in ("ca.pem", "client.crt", "client.key"):
        (tmp_path / name).write_text("-----BEGIN CERTIFICATE-----\n")
    tls = TlsSettings(
        ca_bundle=tmp_path / "ca.pem", client_cert=tmp_path / "client.crt", client_key=tmp_path / "client.key"
    )
    session = build_session(tls)
    assert session.verify == str(tmp_path / "ca.pem")
    assert session.cert == (str(tmp_path / "client.crt"), str(tmp_path / "client.key"))
    client = client_for(Settings(fhir_url=BASE, tls=tls))
    assert client.session.verify == str(tmp_path / "ca.pem")


def test_tls_configured_ca_bundle_wins_over_requests_env(tmp_path, rsps, retry, monkeypatch):
    (tmp_path / "ca.pem").write_text("x")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/somewhere/else.pem")
    session = build_session(TlsSettings(ca_bundle=tmp_path / "ca.pem"))
    seen = []
    rsps.add_callback(
        "GET", f"{BASE}/Patient/p", callback=lambda r: seen.append(r.req_kwargs["verify"]) or (200, {}, "{}")
    )
    FhirClient(BASE, session=session, retry=retry).read("Patient", "p")
    assert seen == [str(tmp_path / "ca.pem")]


def test_tls_errors_are_config_errors(tmp_path, caplog):
    with pytest.raises(ConfigError, match=r"tls\.ca_bundle: .* does not exist"):
        build_session(TlsSettings(ca_bundle=tmp_path / "missing.pem"))
    with pytest.raises(ConfigError, match=r"client_key is set but tls\.client_cert is not"):
        build_session(TlsSettings(client_key=tmp_path / "k"))
    session = build_session(TlsSettings(verify=False))
    assert session.verify is False and "verification is OFF" in caplog.text


def test_a_tls_failure_is_unreachable_not_a_crash(rsps, retry):
    rsps.get(f"{BASE}/metadata", body=requests.exceptions.SSLError("certificate verify failed"))
    from adapter.errors import ServerUnreachable

    with pytest.raises(ServerUnreachable, match="SSLError"):
        FhirClient(BASE, retry=retry).capabilities()


# -- HAPI's words ----------------------------------------------------------------------------------
def _oo(text: str) -> dict:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "processing", "diagnostics": text}],
    }


def _obs(rid: str, **extra) -> Entry:
    return Entry.put(
        {"resourceType": "Observation", "id": rid, "status": "final", "code": {"text": "g"}, **extra}
    )


def test_locate_hapi_parser_errors_by_element_value():
    chunk = [_obs("a"), _obs("b", status="bogus"), _obs("c", valueQuantity={"value": "abc"})]
    text = (
        "HAPI-0450: Failed to parse request body as JSON resource. Error was: HAPI-1821: "
        '[element="status"] Invalid attribute value "bogus": Unknown ObservationStatus code \'bogus\''
    )
    assert locate_failing_entry(_oo(text), chunk) == ("Observation/b", "")
    text = (
        'HAPI-1821: [element="value"] Invalid attribute value "abc": Character a is neither a decimal digit'
    )
    assert locate_failing_entry(_oo(text), chunk) == ("Observation/c", "")


def test_locate_hapi_numeric_client_id():
    text = (
        "HAPI-0960: Can not create resource with ID[12345], no resource with this ID exists and clients may "
        "only assign IDs which contain at least one non-numeric character"
    )
    assert locate_failing_entry(_oo(text), [_obs("a"), _obs("12345")]) == ("Observation/12345", "")


def test_transaction_bundle_body_is_utf8_json(client, rsps):
    rsps.post(
        BASE,
        json={
            "resourceType": "Bundle",
            "type": "transaction-response",
            "entry": [{"response": {"status": "201 Created"}}],
        },
    )
    client.transaction([{"resourceType": "Location", "id": "loc-1", "name": "Bệnh viện Đa khoa Vạn Hạnh"}])
    request = rsps.calls[0].request
    assert request.headers["Content-Type"] == "application/fhir+json; charset=utf-8"
    assert (
        json.loads(request.body.decode("utf-8"))["entry"][0]["resource"]["name"]
        == "Bệnh viện Đa khoa Vạn Hạnh"
    )


def test_kick_off_is_not_repeated_after_a_server_error(client, rsps):
    rsps.get(f"{BASE}/Group/g1/$export", status=500, json={"resourceType": "OperationOutcome"})
    with pytest.raises(ServerError):
        bulk.kick_off(client, "Group/g1/$export", {})
    assert len(rsps.calls) == 1  # a second kick-off could start a second export job


def test_a_relative_status_url_is_resolved_against_the_base(client, rsps):
    rsps.get(f"{BASE}/Group/g1/$export", status=202, headers={"Content-Location": "/r4/$export-poll?id=7"})
    assert bulk.kick_off(client, "Group/g1/$export", {}) == f"{BASE}/$export-poll?id=7"
