"""The HTTP session to a FHIR server: TLS trust and client certificates from the settings.

Verification is on by default; a custom CA bundle (a hospital's own CA) and a client certificate with
its key (mutual TLS) are plain files named in the settings. Turning verification off is logged loudly.
"""

from __future__ import annotations

import logging
from pathlib import Path

import requests

from adapter.errors import ConfigError
from adapter.settings import TlsSettings

log = logging.getLogger(__name__)

USER_AGENT = "adapter/0.1 (FHIR R4 trial adapter)"


def _existing(path: Path, what: str) -> str:
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"tls.{what}: {path} does not exist or is not a file")
    return str(path)


def build_session(tls: TlsSettings | None = None) -> requests.Session:
    """A requests Session with the TLS settings applied (verify, CA bundle, client certificate)."""
    tls = tls or TlsSettings()
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    if not tls.verify:
        log.warning("TLS certificate verification is OFF (tls.verify = false): use only for testing")
        session.verify = False
    elif tls.ca_bundle:
        session.verify = _existing(tls.ca_bundle, "ca_bundle")
    if tls.client_key and not tls.client_cert:
        raise ConfigError("tls.client_key is set but tls.client_cert is not")
    if tls.client_cert:
        cert = _existing(tls.client_cert, "client_cert")
        session.cert = (cert, _existing(tls.client_key, "client_key")) if tls.client_key else cert
    return session
