"""The FHIR client: the only code that speaks HTTP to a FHIR server.

Identity: client-assigned ids, written with `PUT <Type>/<id>` inside transaction bundles. Every resource
has a deterministic id derived from its business identity (adapter/ids.py), so
- the same resource gets the same id offline (`adapter convert` NDJSON) and on any server, and NDJSON
  folders, pushes and pulls line up by `Type/id` with no id mapping table to keep;
- a re-send is an idempotent update in place: never a duplicate, and HAPI keeps the current version when
  the content did not change; retrying a transaction after a timeout is therefore always safe;
- references are plain `Type/id`, resolvable before the target exists on the server, so no `urn:uuid`
  placeholders and no server-assigned ids to chase. Conditional create/update (`If-None-Exist`,
  `PUT Type?identifier=...`) would need a search per entry on the server, breaks when two resources
  share an identifier, and leaves references to be rewritten.
HAPI accepts client ids in PUT (update-as-create) when they are not purely numeric
(`ClientIdStrategyEnum.ALPHANUMERIC`); ours are `<prefix>-<32 hex>`.
Resources without a business identity can still be sent: an entry without an id is a `POST` whose
fullUrl is a fresh `urn:uuid:`, and other entries of the same bundle may refer to that urn; chunking
keeps such groups in one bundle. Version-aware updates (If-Match with the version read) are available
for read-modify-write cycles such as write-back of derived values.

Reads follow `next` links. Every request has a timeout; 429/5xx and connection errors are retried with
backoff (adapter/fhir/retry.py). Logs carry the method, the resource type and the status, never query
values (an identifier in a URL can be PHI) and never credentials.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
from requests.auth import AuthBase
from urllib3.exceptions import NewConnectionError

from adapter.errors import ServerRejected, ServerUnreachable
from adapter.fhir.bundle import (
    Entry,
    TransactionResult,
    chunk_entries,
    etag,
    locate_failing_entry,
    new_urn,
    outcome_text,
    versionless,
)
from adapter.fhir.capabilities import Capabilities, check
from adapter.fhir.retry import RETRY_STATUSES, RETRY_STATUSES_UNSAFE, RetryPolicy, RetryState
from adapter.model import Resource

__all__ = [
    "Entry",
    "FhirClient",
    "FhirRejected",
    "TransactionRejected",
    "TransactionResult",
    "client_for",
    "etag",
    "locate_failing_entry",
    "new_urn",
    "outcome_text",
]

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


class FhirRejected(ServerRejected):
    """A 4xx from the FHIR server; `body` is the parsed OperationOutcome (or the text) it sent."""

    def __init__(self, message: str, status: int | None = None, outcome: str | None = None, body: Any = None):
        super().__init__(message, status=status, outcome=outcome)
        self.body = body


class TransactionRejected(FhirRejected):
    """A transaction bundle was refused; `resource` names the failing entry when the server says which."""

    def __init__(self, message: str, status: int | None, outcome: str, body: Any, resource: str | None):
        super().__init__(message, status=status, outcome=outcome, body=body)
        self.resource = resource


class FhirClient:
    """A small synchronous FHIR R4 client over a requests Session (inject one in tests)."""

    def __init__(
        self,
        base_url: str,
        session: requests.Session | None = None,
        timeout: float = 60.0,
        page_size: int = 200,
        retry: RetryPolicy | None = None,
        auth: AuthBase | None = None,
        check_capabilities: bool = False,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session or requests.Session()
        self.session.headers.setdefault("Accept", FHIR_JSON)
        if auth is not None:
            self.session.auth = auth
        self.timeout = timeout
        self.page_size = page_size
        self.retry = retry or RetryPolicy()
        # When set (client_for does), the first write checks /metadata: R4 and transaction support.
        self.check_capabilities = check_capabilities
        self.requests_sent = 0
        self._warned_origin = False
        self._statement: dict[str, Any] | None = None
        self._capabilities: Capabilities | None = None

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> FhirClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------------------
    def _url(self, path: str, foreign_ok: bool = False) -> str:
        if path.startswith(("http://", "https://")):
            return path if foreign_ok else self._on_base_origin(path)
        if not path:
            return self.base_url
        return f"{self.base_url}/{path.lstrip('/')}"

    def link_url(self, link: str) -> str:
        """A URL the server handed us (a `next` link, an export status URL), resolved against the base:
        relative ones as the web resolves them, absolute ones kept on the base's origin (see _url)."""
        return self._url(urljoin(self.base_url + "/", link))

    def _on_base_origin(self, url: str) -> str:
        """Credentials go only to the configured origin. A server behind a proxy often writes links
        with its own address (http://internal:8080/fhir?...): a link under the base's path is moved onto
        the base's scheme and host; any other origin is refused."""
        base, link = urlsplit(self.base_url), urlsplit(url)
        if (link.scheme, link.netloc) == (base.scheme, base.netloc):
            return url
        prefix = base.path.rstrip("/")
        if link.path == prefix or link.path.startswith(prefix + "/"):
            if not self._warned_origin:
                log.warning(
                    "the server's links name %s://%s; sent to %s://%s instead (proxy configuration?)",
                    link.scheme,
                    link.hostname,
                    base.scheme,
                    base.netloc,
                )
                self._warned_origin = True
            return urlunsplit((base.scheme, base.netloc, link.path, link.query, ""))
        raise ServerRejected(
            f"the FHIR server sent a link to another origin ({link.scheme}://{link.hostname}{link.path}): "
            f"refused, credentials are only sent to {base.scheme}://{base.netloc}"
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool | None = None,
        retry_statuses: Iterable[int] | None = None,
        check: bool = True,
        retry: bool = True,
        foreign_ok: bool = False,
        **kwargs: Any,
    ) -> requests.Response:
        """One HTTP exchange, retried on 429/5xx/connection errors within the retry budget.

        A 401 with a refreshable token (SMART) refreshes it and retries once. With `check`, a 4xx raises
        FhirRejected (a ServerRejected) with the server's OperationOutcome, and exhausted retries raise
        ServerUnreachable; without it the last response is returned whatever its status.
        A non-idempotent request (a POST that creates) is retried only when the server surely did nothing;
        `retry=False` makes a single attempt (best-effort calls).
        """
        method = method.upper()
        where = f"{method} {_safe_path(path)}"
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        statuses = frozenset(
            retry_statuses
            if retry_statuses is not None
            else (RETRY_STATUSES if idempotent else RETRY_STATUSES_UNSAFE)
        )
        kwargs.setdefault("timeout", self.timeout)
        if self.session.verify is not True:  # keep a configured CA bundle over REQUESTS_CA_BUNDLE
            kwargs.setdefault("verify", self.session.verify)
        url = self._url(path, foreign_ok)
        state = (self.retry if retry else RetryPolicy(max_attempts=1)).start()
        reauthenticated = False
        while True:
            try:
                response = self.session.request(method, url, **kwargs)
            except requests.RequestException as exc:
                reason = type(exc).__name__
                if (idempotent or _not_sent(exc)) and self._wait(state, where, reason) is not None:
                    continue
                raise ServerUnreachable(
                    f"FHIR server {self.base_url} unreachable ({where}): {reason}{_tries(state)}"
                ) from exc
            self.requests_sent += 1
            status = response.status_code
            log.debug("%s -> %s", where, status)
            if status == 401 and not reauthenticated and hasattr(self.session.auth, "invalidate"):
                log.info("%s -> 401: refreshing the access token once", where)
                self.session.auth.invalidate()
                reauthenticated = True
                response.close()
                continue
            if status in statuses and (
                self._wait(state, where, str(status), response.headers.get("Retry-After")) is not None
            ):
                response.close()
                continue
            if check and (status >= 500 or status == 429):
                raise ServerUnreachable(
                    f"FHIR server answered {status} to {where}{_tries(state)}: "
                    f"{outcome_text(response_body(response))}"
                )
            if check and status >= 400:
                raise _rejected(where, response)
            return response

    def _wait(
        self, state: RetryState, where: str, reason: str, retry_after: str | None = None
    ) -> float | None:
        delay = state.wait(reason, retry_after)
        if delay is not None:
            log.warning("%s: %s, retry %d in %.1f s", where, reason, state.failures, delay)
        return delay

    # -- capabilities -----------------------------------------------------------------------------
    def capabilities(self) -> dict[str, Any]:
        """The server's CapabilityStatement, read once per client."""
        if self._statement is None:
            self._statement = self.request("GET", "metadata").json()
        return self._statement

    def require(self, *features: str) -> Capabilities:
        """Fail early (CapabilityError, exit 2) unless the server is R4 and has `features`
        ("transaction", "export"), naming what is missing. /metadata is read once per client."""
        if self._capabilities is not None and not self._capabilities.missing(features):
            return self._capabilities
        self._capabilities = check(self.capabilities(), features, self.base_url)
        return self._capabilities

    # -- reads ------------------------------------------------------------------------------------
    def read(self, resource_type: str, resource_id: str) -> Resource | None:
        try:
            return self.request("GET", f"{resource_type}/{resource_id}").json()
        except ServerRejected as exc:
            if exc.status in (404, 410):
                return None
            raise

    def search_pages(self, resource_type: str, params: dict[str, Any] | None = None) -> Iterator[dict]:
        """Each Bundle page of a search, following `next` links (`_count` = page_size unless given)."""
        query = {"_count": self.page_size, **(params or {})}
        page = self.request("GET", resource_type, params=query).json()
        seen: set[str] = set()
        while True:
            yield page
            next_url = next(
                (link["url"] for link in page.get("link", []) if link.get("relation") == "next"), None
            )
            if not next_url or next_url in seen:
                return
            seen.add(next_url)
            page = self.request("GET", self.link_url(next_url)).json()

    def search_entries(
        self, resource_type: str, params: dict[str, Any] | None = None
    ) -> Iterator[tuple[str, Resource]]:
        """(search mode, resource) of every entry on every page: `match`, or `include` for
        `_include`/`_revinclude` results. OperationOutcome entries (`outcome`) are skipped."""
        for page in self.search_pages(resource_type, params):
            for entry in page.get("entry", []):
                mode = (entry.get("search") or {}).get("mode", "match")
                if "resource" in entry and mode != "outcome":
                    yield mode, entry["resource"]

    def search(self, resource_type: str, params: dict[str, Any] | None = None) -> Iterator[Resource]:
        """Every matching resource (search-mode `match`), across all pages."""
        for mode, resource in self.search_entries(resource_type, params):
            if mode == "match":
                yield resource

    def count(self, resource_type: str, params: dict[str, Any] | None = None) -> int:
        query = {"_summary": "count", **(params or {})}
        return int(self.request("GET", resource_type, params=query).json().get("total", 0))

    # -- writes -----------------------------------------------------------------------------------
    def put(self, resource: Resource, if_match: str | bool | None = None) -> Resource:
        """Create or update one resource by id. `if_match=True` sends its meta.versionId as If-Match,
        so a concurrent change makes the server refuse (409/412) instead of being overwritten."""
        if self.check_capabilities:
            self.require()
        headers = {"Content-Type": FHIR_JSON}
        if if_match is True:
            version = (resource.get("meta") or {}).get("versionId")
            if not version:
                raise ValueError(f"{resource['resourceType']}/{resource['id']} has no meta.versionId")
            headers["If-Match"] = etag(str(version))
        elif if_match:
            headers["If-Match"] = etag(str(if_match))
        return self.request(  # a version-aware PUT is not re-sent after a 5xx/timeout (see Entry.idempotent)
            "PUT",
            f"{resource['resourceType']}/{resource['id']}",
            json=resource,
            headers=headers,
            idempotent="If-Match" not in headers,
        ).json()

    def transaction(
        self,
        resources: Sequence[Resource | Entry],
        chunk_size: int = 200,
        on_chunk: Callable[[int], None] | None = None,
        *,
        version_aware: bool = False,
    ) -> TransactionResult:
        """Write `resources` in transaction bundles of at most `chunk_size` entries (each bundle atomic).

        Resources with an id are `PUT Type/id` (If-Match their meta.versionId with `version_aware`),
        those without are `POST`ed under a urn:uuid; entries linked by urn:uuid references share a bundle.
        """
        if self.check_capabilities and resources:
            self.require("transaction")
        entries = [Entry.of(item, version_aware) for item in resources]
        chunks = list(chunk_entries(entries, chunk_size))
        result = TransactionResult()
        for number, chunk in enumerate(chunks, 1):
            bundle = {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [e.bundle_entry(self.base_url) for e in chunk],
            }
            try:
                response = self.request(
                    "POST",
                    "",
                    data=json.dumps(bundle, ensure_ascii=False).encode("utf-8"),
                    headers={"Content-Type": f"{FHIR_JSON}; charset=utf-8"},
                    idempotent=all(e.idempotent for e in chunk),
                ).json()
            except FhirRejected as exc:
                raise _transaction_rejected(exc, chunk, number, len(chunks)) from exc
            except ServerUnreachable as exc:
                done = len(result.statuses)
                safe = (
                    "re-sending is safe" if all(e.idempotent for e in entries) else "check before re-sending"
                )
                raise ServerUnreachable(
                    f"{exc} [bundle {number} of {len(chunks)}; {done} of {len(entries)} entries written "
                    f"before it; {safe}]"
                ) from exc
            answers = response.get("entry", [])
            for sent, entry in zip(chunk, answers, strict=False):
                answer = entry.get("response", {})
                result.statuses.append(answer.get("status", ""))
                result.locations.append(answer.get("location", ""))
                result.entries.append(sent.label if sent.method != "POST" else sent.full_url)
                if sent.method == "POST" and answer.get("location"):
                    result.resolved[sent.full_url] = versionless(answer["location"])
            result.bundles += 1
            if on_chunk:
                on_chunk(len(chunk))
        return result


# -- helpers ---------------------------------------------------------------------------------------
def _safe_path(path: str) -> str:
    """The path without its query (identifiers in queries can be PHI) nor the base URL."""
    return path.split("?", 1)[0] or "/"


def _tries(state: RetryState) -> str:
    return f" (after {state.failures} attempts, {state.elapsed:.0f} s)" if state.failures > 1 else ""


def _not_sent(exc: requests.RequestException) -> bool:
    """True when the request surely never reached the server (safe to retry even a create)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)


def chunked(items: Sequence[str], size: int) -> list[list[str]]:
    """Consecutive slices of at most `size` items: the OR-lists of searches that stay short enough."""
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def response_body(response: requests.Response) -> Any:
    """The answer's JSON, or its text when it is not JSON (for error messages)."""
    try:
        return response.json()
    except ValueError:
        return response.text


_HINTS = {
    401: "authentication failed: check the auth settings and the secret they point to",
    403: "forbidden: the credentials lack the permission (scope) for this",
    409: "conflict: the resource changed on the server since the version sent (If-Match), or a "
    "concurrent write",
    412: "precondition failed: the resource changed on the server since the version sent (If-Match)",
}


def _rejected(where: str, response: requests.Response) -> FhirRejected:
    body = response_body(response)
    text = outcome_text(body)
    hint = _HINTS.get(response.status_code)
    return FhirRejected(
        f"FHIR server rejected {where} ({response.status_code}): {text}" + (f" [{hint}]" if hint else ""),
        status=response.status_code,
        outcome=text,
        body=body,
    )


def _transaction_rejected(
    exc: FhirRejected, chunk: Sequence[Entry], number: int, total: int
) -> TransactionRejected:
    resource, extra = locate_failing_entry(exc.body, chunk)
    text = exc.outcome or ""
    where = f" at {resource}" if resource else ""
    hint = _HINTS.get(exc.status or 0)
    message = (
        f"FHIR server rejected transaction bundle {number} of {total} ({len(chunk)} entries, nothing of it "
        f"written){where} ({exc.status}): {text}{extra}" + (f" [{hint}]" if hint else "")
    )
    return TransactionRejected(message, exc.status, text, exc.body, resource)


def client_for(settings: Any) -> FhirClient:
    """The client for the configured server: auth, TLS, timeouts, paging and retry budget applied."""
    from adapter.fhir.auth import build_auth
    from adapter.fhir.session import build_session

    tls = getattr(settings, "tls", None)
    session = build_session(tls)
    auth = getattr(settings, "auth", None)
    if auth is not None:
        session.auth = build_auth(auth, settings.fhir_url, build_session(tls), settings.timeout_seconds)
    sync = getattr(settings, "sync", None)
    budget = getattr(sync, "retry_budget_seconds", 120.0)
    return FhirClient(
        settings.fhir_url,
        session=session,
        timeout=settings.timeout_seconds,
        page_size=settings.page_size,
        retry=RetryPolicy(budget_seconds=budget),
        check_capabilities=True,
    )
