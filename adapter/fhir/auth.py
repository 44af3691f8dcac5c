"""Authentication to the FHIR server: none, HTTP basic, a static bearer token, SMART Backend Services.

Secrets come only from an environment variable or a file named in the settings (never the command line,
never adapter.toml in clear) and never reach a log, an exception message or a repr.

SMART Backend Services (https://hl7.org/fhir/smart-app-launch/backend-services.html): the client proves
its identity with a short-lived JWT signed by its private key (RS384 or ES384, `kid` header naming the
key registered with the server), swaps it at the token endpoint for an access token
(`client_credentials` grant), caches the token and fetches a new one shortly before it expires. On a 401
the client drops the cached token and retries once (see FhirClient.request).

In adapter.toml (paths and variable names only; the secrets stay where they are):

    [auth]                                   [auth]
    kind = "basic"                           kind = "smart-backend"
    username = "adapter"                     client_id = "vh-trial-adapter"
    password_env = "ADAPTER_FHIR_PASSWORD"   private_key_file = "/etc/adapter/client-es384.pem"
                                             key_id = "2024-06"       # kid registered with the server
    [tls]                                    algorithm = "ES384"
    ca_bundle = "/etc/adapter/hospital-ca.pem"
    client_cert = "/etc/adapter/adapter.crt" # token_url: omitted = from .well-known/smart-configuration
    client_key = "/etc/adapter/adapter.key"
"""

from __future__ import annotations

import logging
import os
import stat
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from requests.auth import AuthBase, HTTPBasicAuth

from adapter.errors import ConfigError, ServerRejected, ServerUnreachable
from adapter.fhir.retry import RETRY_STATUSES, RetryPolicy
from adapter.settings import AuthSettings

log = logging.getLogger(__name__)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME = 240  # seconds; SMART allows at most 5 minutes, minus room for clock skew
DEFAULT_TOKEN_LIFETIME = 300  # when the token response has no expires_in


def read_secret(env: str | None, file: Path | None, what: str) -> str:
    """A secret from the environment variable `env` or from `file` (first line, whitespace stripped)."""
    if env:
        value = os.environ.get(env, "")
        if not value.strip():
            raise ConfigError(f"{what}: environment variable {env} is not set or empty")
        return value.strip()
    if file:
        path = Path(file).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{what}: cannot read {path}: {exc.strerror}") from exc
        if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("%s: %s is readable by other users; chmod 600 it", what, path)
        value = text.strip()
        if not value:
            raise ConfigError(f"{what}: {path} is empty")
        return value
    raise ConfigError(f"{what}: set auth.{what}_env or auth.{what}_file in the config")


class NoAuth(AuthBase):
    """Sends a request without credentials even when the session has some (e.g. a storage URL)."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.pop("Authorization", None)
        return request


class BearerAuth(AuthBase):
    """A static bearer token."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "BearerAuth(<hidden>)"


class SecretBasicAuth(HTTPBasicAuth):
    """HTTP basic whose repr hides the password."""

    def __repr__(self) -> str:
        return f"SecretBasicAuth({self.username!r}, <hidden>)"


def load_private_key(pem: bytes, algorithm: str, source: str) -> Any:
    """The signing key, checked against the algorithm (RS384 needs RSA, ES384 needs EC P-384)."""
    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"auth.private_key: {source} is not an unencrypted PEM private key") from exc
    if algorithm == "RS384" and not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError(f"auth.algorithm RS384 needs an RSA private key; {source} holds another kind")
    if algorithm == "ES384" and not (
        isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP384R1)
    ):
        raise ConfigError(f"auth.algorithm ES384 needs an EC P-384 private key; {source} holds another kind")
    return key


class SmartBackendAuth(AuthBase):
    """SMART Backend Services: signed JWT assertion -> access token, cached until shortly before expiry."""

    def __init__(
        self,
        client_id: str,
        private_key: Any,
        key_id: str,
        algorithm: str = "RS384",
        scope: str = "system/*.read",
        token_url: str | None = None,
        discovery_base: str | None = None,
        session: requests.Session | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client_id = client_id
        self.key_id = key_id
        self.algorithm = algorithm
        self.scope = scope
        self.token_url = token_url
        self.discovery_base = discovery_base
        self.session = session or requests.Session()
        self.timeout = timeout
        self.retry = retry or RetryPolicy(budget_seconds=60)
        self.clock = clock
        self._key = private_key
        self._token: str | None = None
        self._expires_at = 0.0
        self.tokens_fetched = 0

    def __repr__(self) -> str:
        return f"SmartBackendAuth(client_id={self.client_id!r}, token_url={self.token_url!r})"

    # -- requests hook ----------------------------------------------------------------------------
    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.access_token()}"
        return request

    def invalidate(self) -> None:
        """Forget the cached token (the server answered 401): the next request fetches a new one."""
        self._token = None
        self._expires_at = 0.0

    # -- tokens -----------------------------------------------------------------------------------
    def access_token(self) -> str:
        if self._token is None or self.clock() >= self._expires_at:
            self._fetch_token()
        assert self._token is not None
        return self._token

    def assertion(self) -> str:
        """The signed client assertion: iss = sub = client_id, aud = token URL, exp <= 5 min, unique jti."""
        now = int(self.clock())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self._token_url(),
            "exp": now + ASSERTION_LIFETIME,
            "jti": uuid.uuid4().hex,
        }
        headers = {"kid": self.key_id, "typ": "JWT"}
        return jwt.encode(claims, self._key, algorithm=self.algorithm, headers=headers)

    def _token_url(self) -> str:
        if not self.token_url:
            self.token_url = discover_token_url(self.session, self.discovery_base or "", self.timeout)
        return self.token_url

    def _fetch_token(self) -> None:
        url = self._token_url()
        state = self.retry.start()
        while True:
            form = {  # a fresh assertion each attempt: the server refuses a jti it has seen
                "grant_type": "client_credentials",
                "scope": self.scope,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": self.assertion(),
            }
            try:
                response = self.session.post(
                    url,
                    data=form,
                    headers={"Accept": "application/json"},
                    timeout=self.timeout,
                    verify=self.session.verify,  # the configured CA, not REQUESTS_CA_BUNDLE
                )
            except requests.RequestException as exc:
                if state.wait(type(exc).__name__) is None:
                    raise ServerUnreachable(
                        f"token endpoint {url} unreachable: {type(exc).__name__}"
                    ) from None
                continue
            if (
                response.status_code in RETRY_STATUSES
                and state.wait(str(response.status_code), response.headers.get("Retry-After")) is not None
            ):
                continue
            break
        body = _json_or_empty(response)
        if response.status_code != 200 or not body.get("access_token"):
            error = body.get("error", "no access_token in the answer")
            detail = body.get("error_description")
            raise ServerRejected(
                f"token endpoint {url} refused client {self.client_id} ({response.status_code}): {error}"
                + (f": {detail}" if detail else ""),
                status=response.status_code,
                outcome=str(error),
            )
        lifetime = _int_or(body.get("expires_in"), DEFAULT_TOKEN_LIFETIME)
        # Renew a little early: a fifth of the lifetime, at most a minute.
        margin = min(60.0, lifetime / 5)
        self._token = str(body["access_token"])
        self._expires_at = self.clock() + lifetime - margin
        self.tokens_fetched += 1
        log.info("SMART access token obtained for client %s (valid %d s)", self.client_id, lifetime)


def discover_token_url(session: requests.Session, base_url: str, timeout: float) -> str:
    """The token endpoint from the server's `.well-known/smart-configuration`."""
    url = base_url.rstrip("/") + "/.well-known/smart-configuration"
    try:
        response = session.get(
            url, headers={"Accept": "application/json"}, timeout=timeout, verify=session.verify
        )
    except requests.RequestException as exc:
        raise ServerUnreachable(f"{url} unreachable: {type(exc).__name__}") from None
    endpoint = _json_or_empty(response).get("token_endpoint") if response.ok else None
    if not endpoint:
        raise ConfigError(
            f"auth.token_url is not set and {url} does not name a token_endpoint ({response.status_code})"
        )
    return str(endpoint)


def _json_or_empty(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _int_or(value: Any, default: int) -> int:
    try:
        return max(1, int(value))
    except (TypeError, ValueError):
        return default


def build_auth(
    settings: AuthSettings,
    base_url: str,
    token_session: requests.Session | None = None,
    timeout: float = 30.0,
) -> AuthBase | None:
    """The requests auth object for the configured scheme (None for `none`)."""
    kind = settings.kind
    if kind == "none":
        return None
    if kind == "basic":
        if not settings.username:
            raise ConfigError("auth.kind basic needs auth.username")
        return SecretBasicAuth(
            settings.username, read_secret(settings.password_env, settings.password_file, "password")
        )
    if kind == "bearer":
        return BearerAuth(read_secret(settings.token_env, settings.token_file, "token"))
    missing = [name for name in ("client_id", "key_id") if not getattr(settings, name)]
    if not (settings.private_key_file or settings.private_key_env):
        missing.append("private_key_file (or private_key_env)")
    if missing:
        raise ConfigError(f"auth.kind smart-backend needs auth.{', auth.'.join(missing)}")
    source = settings.private_key_env or str(settings.private_key_file)
    pem = read_secret(settings.private_key_env, settings.private_key_file, "private_key")
    key = load_private_key(pem.encode("utf-8"), settings.algorithm, source)
    return SmartBackendAuth(
        client_id=str(settings.client_id),
        private_key=key,
        key_id=str(settings.key_id),
        algorithm=settings.algorithm,
        scope=settings.scope,
        token_url=settings.token_url,
        discovery_base=base_url,
        session=token_session,
        timeout=timeout,
    )
