"""TLS for real: a local HTTPS server with its own CA that requires a client certificate (mutual TLS)."""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from adapter.errors import ServerUnreachable
from adapter.fhir.capabilities import minimal_statement
from adapter.fhir.client import client_for
from adapter.settings import Settings, SyncSettings, TlsSettings


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _cert(subject_key, name: str, issuer_key, issuer_name: str, *, ca: bool = False, usage=None, ip=None):
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(subject_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if ip:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ip)]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, *items) -> Path:
    data = b""
    for item in items:
        if isinstance(item, x509.Certificate):
            data += item.public_bytes(serialization.Encoding.PEM)
        else:
            data += item.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
    path.write_bytes(data)
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pki")
    ca_key = _key()
    ca = _cert(ca_key, "Test Hospital CA", ca_key, "Test Hospital CA", ca=True)
    server_key, client_key = _key(), _key()
    server = _cert(
        server_key,
        "127.0.0.1",
        ca_key,
        "Test Hospital CA",
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        ip=ipaddress.ip_address("127.0.0.1"),
    )
    client = _cert(client_key, "adapter", ca_key, "Test Hospital CA", usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    return {
        "ca": _write(folder / "ca.pem", ca),
        "server": _write(folder / "server.pem", server, server_key),
        "client_cert": _write(folder / "client.crt", client),
        "client_key": _write(folder / "client.key", client_key),
    }


class _Metadata(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps(minimal_statement()).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def https_url(pki) -> Iterator[str]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki["server"])
    context.load_verify_locations(pki["ca"])
    context.verify_mode = ssl.CERT_REQUIRED  # mutual TLS: no client certificate, no handshake
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Metadata)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}/fhir"
    httpd.shutdown()
    httpd.server_close()


def _settings(url: str, tls: TlsSettings) -> Settings:
    return Settings(fhir_url=url, tls=tls, timeout_seconds=5, sync=SyncSettings(retry_budget_seconds=0))


def test_mutual_tls_with_the_hospital_ca(https_url, pki):
    tls = TlsSettings(ca_bundle=pki["ca"], client_cert=pki["client_cert"], client_key=pki["client_key"])
    assert client_for(_settings(https_url, tls)).require("transaction").fhir_version == "4.0.1"


def test_unknown_ca_is_refused_by_default(https_url, pki):
    tls = TlsSettings(client_cert=pki["client_cert"], client_key=pki["client_key"])
    with pytest.raises(ServerUnreachable, match="SSLError"):
        client_for(_settings(https_url, tls)).capabilities()


def test_without_a_client_certificate_the_server_refuses(https_url, pki):
    with pytest.raises(ServerUnreachable):
        client_for(_settings(https_url, TlsSettings(ca_bundle=pki["ca"]))).capabilities()
