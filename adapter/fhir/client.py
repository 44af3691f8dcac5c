"""The FHIR client: the only code that speaks HTTP to a FHIR server.

Writes are transaction bundles of `PUT <Type>/<id>` (our ids are deterministic, see adapter/ids.py), so a
re-send updates in place and never duplicates; reads follow `next` links. Logs carry the method, the
resource type and the status, never query values (an identifier in a URL is PHI).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import requests

from adapter.errors import ServerRejected, ServerUnreachable
from adapter.model import Resource

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"


@dataclass
class TransactionResult:
    """What the server said about each entry we sent, in order."""

    statuses: list[str] = field(default_factory=list)
    locations: list[str] = field(default_factory=list)

    @property
    def created(self) -> int:
        return sum(1 for s in self.statuses if s.startswith("201"))


def outcome_text(body: Any) -> str:
    """A readable summary of an OperationOutcome (or of any error body)."""
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        parts = []
        for issue in body.get("issue", []):
            text = issue.get("diagnostics") or (issue.get("details") or {}).get("text") or issue.get("code")
            where = ", ".join(issue.get("expression", []) or issue.get("location", []))
            parts.append(f"{issue.get('severity', 'error')}: {text}" + (f" (at {where})" if where else ""))
        return "; ".join(parts) or "OperationOutcome without issues"
    return str(body)[:500]


class FhirClient:
    """A small synchronous FHIR R4 client over a requests Session (inject one in tests)."""

    def __init__(
        self,
        base_url: str,
        session: requests.Session | None = None,
        timeout: float = 60.0,
        page_size: int = 200,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session or requests.Session()
        self.session.headers.setdefault("Accept", FHIR_JSON)
        self.timeout = timeout
        self.page_size = page_size

    # -- plumbing ---------------------------------------------------------------------------------
    def _url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return urljoin(self.base_url + "/", path.lstrip("/"))

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One HTTP request; connection problems become ServerUnreachable, 4xx ServerRejected."""
        kwargs.setdefault("timeout", self.timeout)
        try:
            response = self.session.request(method, self._url(path), **kwargs)
        except requests.RequestException as exc:
            raise ServerUnreachable(f"FHIR server {self.base_url} unreachable: {type(exc).__name__}") from exc
        log.debug("%s %s -> %s", method, path.split("?")[0], response.status_code)
        if response.status_code >= 500 or response.status_code == 429:
            raise ServerUnreachable(
                f"FHIR server answered {response.status_code} to {method} {path.split('?')[0]}"
            )
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = response.text
            text = outcome_text(body)
            raise ServerRejected(
                f"FHIR server rejected {method} {path.split('?')[0]} ({response.status_code}): {text}",
                status=response.status_code,
                outcome=text,
            )
        return response

    # -- reads ------------------------------------------------------------------------------------
    def capabilities(self) -> dict[str, Any]:
        return self.request("GET", "metadata").json()

    def read(self, resource_type: str, resource_id: str) -> Resource | None:
        try:
            return self.request("GET", f"{resource_type}/{resource_id}").json()
        except ServerRejected as exc:
            if exc.status in (404, 410):
                return None
            raise

    def search_pages(self, resource_type: str, params: dict[str, Any] | None = None) -> Iterator[dict]:
        """Each Bundle page of a search, following `next` links."""
        query = {"_count": self.page_size, **(params or {})}
        page = self.request("GET", resource_type, params=query).json()
        while True:
            yield page
            next_url = next(
                (link["url"] for link in page.get("link", []) if link.get("relation") == "next"), None
            )
            if not next_url:
                return
            page = self.request("GET", next_url).json()

    def search(self, resource_type: str, params: dict[str, Any] | None = None) -> Iterator[Resource]:
        """Every matching resource (search-mode `match`), across all pages."""
        for page in self.search_pages(resource_type, params):
            for entry in page.get("entry", []):
                if (entry.get("search") or {}).get("mode", "match") == "match" and "resource" in entry:
                    yield entry["resource"]

    def count(self, resource_type: str, params: dict[str, Any] | None = None) -> int:
        query = {"_summary": "count", **(params or {})}
        return int(self.request("GET", resource_type, params=query).json().get("total", 0))

    # -- writes -----------------------------------------------------------------------------------
    def put(self, resource: Resource) -> Resource:
        return self.request(
            "PUT",
            f"{resource['resourceType']}/{resource['id']}",
            json=resource,
            headers={"Content-Type": FHIR_JSON},
        ).json()

    def transaction(
        self,
        resources: Sequence[Resource],
        chunk_size: int = 200,
        on_chunk: Callable[[int], None] | None = None,
    ) -> TransactionResult:
        """PUT every resource by id in transaction bundles of `chunk_size` (each bundle atomic)."""
        result = TransactionResult()
        for start in range(0, len(resources), chunk_size):
            chunk = resources[start : start + chunk_size]
            bundle = {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    {
                        "fullUrl": f"{self.base_url}/{r['resourceType']}/{r['id']}",
                        "resource": r,
                        "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
                    }
                    for r in chunk
                ],
            }
            response = self.request("POST", "", json=bundle, headers={"Content-Type": FHIR_JSON}).json()
            for entry in response.get("entry", []):
                answer = entry.get("response", {})
                result.statuses.append(answer.get("status", ""))
                result.locations.append(answer.get("location", ""))
            if on_chunk:
                on_chunk(len(chunk))
        return result


def client_for(settings: Any) -> FhirClient:
    """The client for the configured server (auth and TLS settings applied)."""
    return FhirClient(settings.fhir_url, timeout=settings.timeout_seconds, page_size=settings.page_size)
