"""Authentication: basic, bearer, SMART Backend Services (JWT claims and signature, token cache, expiry,
401 refresh), secrets read from env/file only and never logged."""

from __future__ import annotations

import base64
import logging
import time
from pathlib import Path
from urllib.parse import parse_qs

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from adapter.errors import ConfigError, ServerRejected
from adapter.fhir.auth import ASSERTION_TYPE, SmartBackendAuth, build_auth, load_private_key
from adapter.fhir.client import FhirClient, client_for
from adapter.settings import AuthSettings, Settings
from tests.fhir.conftest import BASE

TOKEN_URL = "https://auth.example.org/token"
PASSWORD = "s3cr3t-Pa55word"
STATIC_TOKEN = "static-token-5f2b9c"
PATIENT = {"resourceType": "Patient", "id": "pt-1"}


def _pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key():
    return ec.generate_private_key(ec.SECP384R1())


@pytest.fixture()
def rsa_key_file(tmp_path: Path, rsa_key) -> Path:
    path = tmp_path / "client.pem"
    path.write_bytes(_pem(rsa_key))
    path.chmod(0o600)
    return path


def _token_answer(token: str, expires_in: int = 300):
    return {"access_token": token, "token_type": "bearer", "expires_in": expires_in, "scope": "system/*.read"}


def _smart(key, clock, algorithm="RS384") -> SmartBackendAuth:
    return SmartBackendAuth(
        client_id="adapter-vh",
        private_key=key,
        key_id="key-2024",
        algorithm=algorithm,
        scope="system/*.read",
        token_url=TOKEN_URL,
        clock=clock,
    )


# -- basic and bearer --------------------------------------------------------------------------------
def test_basic_auth_from_an_environment_variable(monkeypatch, rsps, retry):
    monkeypatch.setenv("FHIR_PASSWORD", PASSWORD)
    auth = build_auth(AuthSettings(kind="basic", username="etl", password_env="FHIR_PASSWORD"), BASE)
    rsps.get(f"{BASE}/Patient/pt-1", json=PATIENT)
    FhirClient(BASE, auth=auth, retry=retry).read("Patient", "pt-1")
    sent = rsps.calls[0].request.headers["Authorization"]
    assert sent == "Basic " + base64.b64encode(f"etl:{PASSWORD}".encode()).decode()
    assert PASSWORD not in repr(auth)


def test_bearer_token_from_a_file(tmp_path, rsps, retry):
    token_file = tmp_path / "token"
    token_file.write_text(STATIC_TOKEN + "\n")
    token_file.chmod(0o600)
    auth = build_auth(AuthSettings(kind="bearer", token_file=token_file), BASE)
    rsps.get(f"{BASE}/Patient/pt-1", json=PATIENT)
    FhirClient(BASE, auth=auth, retry=retry).read("Patient", "pt-1")
    assert rsps.calls[0].request.headers["Authorization"] == f"Bearer {STATIC_TOKEN}"
    assert STATIC_TOKEN not in repr(auth)


def test_missing_secrets_are_config_errors_naming_the_source_not_a_value(monkeypatch, tmp_path):
    monkeypatch.delenv("NOPE", raising=False)
    with pytest.raises(ConfigError, match="environment variable NOPE is not set"):
        build_auth(AuthSettings(kind="bearer", token_env="NOPE"), BASE)
    with pytest.raises(ConfigError, match="cannot read"):
        build_auth(AuthSettings(kind="bearer", token_file=tmp_path / "absent"), BASE)
    with pytest.raises(ConfigError, match=r"auth\.token_env or auth\.token_file"):
        build_auth(AuthSettings(kind="bearer"), BASE)
    with pytest.raises(ConfigError, match=r"needs auth\.username"):
        build_auth(AuthSettings(kind="basic", password_env="X"), BASE)
    with pytest.raises(ConfigError, match=r"auth.client_id, auth.key_id"):
        build_auth(AuthSettings(kind="smart-backend"), BASE)


def test_a_world_readable_secret_file_is_warned_about(tmp_path, caplog):
    token_file = tmp_path / "token"
    token_file.write_text(STATIC_TOKEN)
    token_file.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        build_auth(AuthSettings(kind="bearer", token_file=token_file), BASE)
    assert "readable by other users" in caplog.text
    assert STATIC_TOKEN not in caplog.text


# -- SMART Backend Services ------------------------------------------------------------------------
@pytest.mark.parametrize("algorithm", ["RS384", "ES384"])
def test_smart_assertion_claims_and_signature(algorithm, rsa_key, ec_key):
    key = rsa_key if algorithm == "RS384" else ec_key
    now = 1_700_000_000.0
    auth = _smart(key, lambda: now, algorithm)
    first, second = auth.assertion(), auth.assertion()
    header = jwt.get_unverified_header(first)
    assert header == {"alg": algorithm, "kid": "key-2024", "typ": "JWT"}
    claims = jwt.decode(
        first,
        key.public_key(),
        algorithms=[algorithm],
        audience=TOKEN_URL,
        options={"verify_exp": False},
    )
    assert claims["iss"] == claims["sub"] == "adapter-vh"
    assert claims["aud"] == TOKEN_URL
    assert 0 < claims["exp"] - now <= 300  # SMART: no more than five minutes ahead
    assert set(claims) == {"iss", "sub", "aud", "exp", "jti"}
    assert claims["jti"] != jwt.decode(second, options={"verify_signature": False})["jti"]
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048) if algorithm == "RS384" else None
    if other is not None:  # a signature by another key does not verify
        with pytest.raises(jwt.InvalidSignatureError):
            jwt.decode(first, other.public_key(), algorithms=[algorithm], audience=TOKEN_URL)


def test_smart_token_request_is_a_client_credentials_form(rsa_key, rsps, retry):
    rsps.post(TOKEN_URL, json=_token_answer("tok-1"))
    rsps.get(f"{BASE}/Patient/pt-1", json=PATIENT)
    FhirClient(BASE, auth=_smart(rsa_key, time.time), retry=retry).read("Patient", "pt-1")
    form = {k: v[0] for k, v in parse_qs(rsps.calls[0].request.body).items()}
    assert form["grant_type"] == "client_credentials"
    assert form["scope"] == "system/*.read"
    assert form["client_assertion_type"] == ASSERTION_TYPE
    assert jwt.decode(
        form["client_assertion"], rsa_key.public_key(), algorithms=["RS384"], audience=TOKEN_URL
    )["iss"] == ("adapter-vh")
    assert "Authorization" not in rsps.calls[0].request.headers  # the token endpoint gets no FHIR credentials
    assert rsps.calls[1].request.headers["Authorization"] == "Bearer tok-1"


def test_smart_token_is_cached_and_renewed_before_expiry(rsa_key, rsps, retry):
    now = [1_700_000_000.0]
    rsps.post(TOKEN_URL, json=_token_answer("tok-1", expires_in=300))
    rsps.post(TOKEN_URL, json=_token_answer("tok-2", expires_in=300))
    rsps.get(f"{BASE}/Patient/pt-1", json=PATIENT)
    auth = _smart(rsa_key, lambda: now[0])
    client = FhirClient(BASE, auth=auth, retry=retry)
    client.read("Patient", "pt-1")
    now[0] += 200  # still valid: renewed only from 300 - 60 = 240 s on
    client.read("Patient", "pt-1")
    assert auth.tokens_fetched == 1
    now[0] += 45  # 245 s: inside the renewal margin
    client.read("Patient", "pt-1")
    assert auth.tokens_fetched == 2
    bearers = [c.request.headers.get("Authorization") for c in rsps.calls if c.request.url.startswith(BASE)]
    assert bearers == ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]


def test_a_401_refreshes_the_token_once_and_retries(rsa_key, rsps, retry):
    rsps.post(TOKEN_URL, json=_token_answer("revoked"))
    rsps.post(TOKEN_URL, json=_token_answer("fresh"))
    rsps.get(f"{BASE}/Patient/pt-1", status=401)
    rsps.get(f"{BASE}/Patient/pt-1", json=PATIENT)
    auth = _smart(rsa_key, time.time)
    assert FhirClient(BASE, auth=auth, retry=retry).read("Patient", "pt-1") == PATIENT
    assert auth.tokens_fetched == 2
    assert rsps.calls[-1].request.headers["Authorization"] == "Bearer fresh"


def test_a_second_401_is_an_error(rsa_key, rsps, retry):
    rsps.post(TOKEN_URL, json=_token_answer("tok"))
    rsps.get(f"{BASE}/Patient/pt-1", status=401)
    with pytest.raises(ServerRejected, match=r"\(401\).*authentication failed"):
        FhirClient(BASE, auth=_smart(rsa_key, time.time), retry=retry).read("Patient", "pt-1")
    assert len([c for c in rsps.calls if c.request.url.startswith(BASE)]) == 2


def test_token_endpoint_refusal_is_readable(rsa_key, rsps, retry):
    rsps.post(TOKEN_URL, status=401, json={"error": "invalid_client", "error_description": "unknown kid"})
    with pytest.raises(
        ServerRejected, match="refused client adapter-vh \\(401\\): invalid_client: unknown kid"
    ):
        FhirClient(BASE, auth=_smart(rsa_key, time.time), retry=retry).read("Patient", "pt-1")


def test_token_url_is_discovered_from_smart_configuration(rsa_key, rsps, retry):
    rsps.get(f"{BASE}/.well-known/smart-configuration", json={"token_endpoint": TOKEN_URL})
    rsps.post(TOKEN_URL, json=_token_answer("tok"))
    rsps.get(f"{BASE}/Patient/pt-1", json=PATIENT)
    auth = SmartBackendAuth("adapter-vh", rsa_key, "k1", discovery_base=BASE)
    FhirClient(BASE, auth=auth, retry=retry).read("Patient", "pt-1")
    assert auth.token_url == TOKEN_URL


def test_key_must_match_the_algorithm(rsa_key, ec_key):
    with pytest.raises(ConfigError, match="ES384 needs an EC P-384"):
        load_private_key(_pem(rsa_key), "ES384", "k.pem")
    with pytest.raises(ConfigError, match="RS384 needs an RSA"):
        load_private_key(_pem(ec_key), "RS384", "k.pem")
    with pytest.raises(ConfigError, match="not an unencrypted PEM"):
        load_private_key(b"garbage", "RS384", "k.pem")


def test_smart_from_settings_with_the_key_in_a_file(rsa_key_file, rsps, tmp_path):
    settings = Settings(
        fhir_url=BASE,
        auth=AuthSettings(
            kind="smart-backend",
            client_id="adapter-vh",
            token_url=TOKEN_URL,
            private_key_file=rsa_key_file,
            key_id="k1",
        ),
    )
    client = client_for(settings)
    assert isinstance(client.session.auth, SmartBackendAuth)
    rsps.post(TOKEN_URL, json=_token_answer("tok"))
    rsps.get(f"{BASE}/Patient/pt-1", json=PATIENT)
    client.read("Patient", "pt-1")
    assert rsps.calls[1].request.headers["Authorization"] == "Bearer tok"


# -- secrets never logged ---------------------------------------------------------------------------
def test_no_secret_reaches_logs_or_error_messages(monkeypatch, rsa_key, rsps, retry, caplog, tmp_path):
    key_pem = _pem(rsa_key).decode()
    monkeypatch.setenv("FHIR_PASSWORD", PASSWORD)
    monkeypatch.setenv("FHIR_TOKEN", STATIC_TOKEN)
    monkeypatch.setenv("FHIR_KEY", key_pem)
    messages = []
    with caplog.at_level(logging.DEBUG):
        for settings in (
            AuthSettings(kind="basic", username="etl", password_env="FHIR_PASSWORD"),
            AuthSettings(kind="bearer", token_env="FHIR_TOKEN"),
            AuthSettings(
                kind="smart-backend",
                client_id="adapter-vh",
                token_url=TOKEN_URL,
                private_key_env="FHIR_KEY",
                key_id="k1",
            ),
        ):
            rsps.reset()
            rsps.post(TOKEN_URL, json=_token_answer("access-tok-9d8e7f", expires_in=1))
            rsps.get(f"{BASE}/Patient/pt-1", status=401, json={"resourceType": "OperationOutcome"})
            client = FhirClient(BASE, auth=build_auth(settings, BASE), retry=retry)
            with pytest.raises(ServerRejected) as error:
                client.read("Patient", "pt-1")
            messages.append(str(error.value))
            messages.append(repr(client.session.auth))
    rsps.reset()
    rsps.post(TOKEN_URL, status=400, json={"error": "invalid_grant"})
    with caplog.at_level(logging.DEBUG), pytest.raises(ServerRejected) as error:
        FhirClient(BASE, auth=build_auth(settings, BASE), retry=retry).read("Patient", "pt-1")
    messages.append(str(error.value))
    everything = caplog.text + "\n".join(messages)
    assert "SMART access token obtained" in caplog.text  # the logs were captured at all
    for secret in (PASSWORD, STATIC_TOKEN, "access-tok-9d8e7f", key_pem.splitlines()[1]):
        assert secret not in everything
    assert base64.b64encode(f"etl:{PASSWORD}".encode()).decode() not in everything


def test_each_token_attempt_signs_a_new_assertion_and_retry_after_0_is_retried(rsa_key, rsps, retry):
    rsps.post(TOKEN_URL, status=503, headers={"Retry-After": "0"})
    rsps.post(TOKEN_URL, json=_token_answer("tok-1"))
    rsps.get(f"{BASE}/Patient/pt-1", json=PATIENT)
    FhirClient(BASE, auth=_smart(rsa_key, time.time), retry=retry).read("Patient", "pt-1")
    token_calls = [c for c in rsps.calls if c.request.url == TOKEN_URL]
    assert len(token_calls) == 2
    jtis = [
        jwt.decode(
            parse_qs(c.request.body)["client_assertion"][0],
            rsa_key.public_key(),
            algorithms=["RS384"],
            audience=TOKEN_URL,
        )["jti"]
        for c in token_calls
    ]
    assert jtis[0] != jtis[1]  # a replayed jti would be refused by the token server
