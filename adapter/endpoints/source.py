"""Where the resources come from: an NDJSON folder (Bulk Data layout) or a FHIR server.

Both stream: a folder is read line by line, a server search page by page. The server searches are scoped to
the study (ResearchSubjects of the ResearchStudy, then their Patients' resources in chunks of ids), so a
shared hospital server is never read wholesale.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from adapter.errors import ConfigError
from adapter.fhir.client import chunked
from adapter.model import Resource
from adapter.ndjson import iter_resources

# The search parameter that names the patient, per resource type.
_PATIENT_PARAM = {
    "Observation": "subject",
    "Procedure": "subject",
    "MedicationStatement": "subject",
    "AdverseEvent": "subject",
}


class SearchClient(Protocol):
    """What a server source needs from `adapter.fhir.client.FhirClient`."""

    base_url: str

    def search(self, resource_type: str, params: dict[str, Any] | None = None) -> Iterator[Resource]: ...


class Source(Protocol):
    """A stream of resources of one type, optionally narrowed to some patients, ids or search params.

    The narrowing is a hint that saves work (a folder ignores it); callers filter what they receive anyway.
    """

    description: str

    def resources(
        self,
        resource_type: str,
        *,
        params: dict[str, str] | None = None,
        patients: Sequence[str] | None = None,
        ids: Sequence[str] | None = None,
    ) -> Iterator[Resource]: ...


class FolderSource:
    """An NDJSON folder as `adapter convert` and `adapter pull` write it."""

    def __init__(self, folder: Path) -> None:
        if not folder.is_dir():
            raise ConfigError(f"--source {folder}: not a folder (give an NDJSON folder or a http(s) URL)")
        self.folder = folder
        self.description = str(folder)

    def resources(
        self,
        resource_type: str,
        *,
        params: dict[str, str] | None = None,
        patients: Sequence[str] | None = None,
        ids: Sequence[str] | None = None,
    ) -> Iterator[Resource]:
        wanted = set(ids) if ids is not None else None
        for resource in iter_resources(self.folder, resource_type):
            if wanted is None or resource.get("id") in wanted:
                yield resource


class ServerSource:
    """A FHIR server, read through the project's FhirClient with study-scoped searches."""

    def __init__(self, client: SearchClient, chunk_size: int = 50, page_size: int | None = 1000) -> None:
        self.client = client
        self.chunk_size = chunk_size
        self.page_size = page_size  # large pages: endpoints read everything (HAPI caps _count at its maximum)
        self.description = client.base_url

    def resources(
        self,
        resource_type: str,
        *,
        params: dict[str, str] | None = None,
        patients: Sequence[str] | None = None,
        ids: Sequence[str] | None = None,
    ) -> Iterator[Resource]:
        base = dict(params or {})
        if self.page_size:
            base.setdefault("_count", str(self.page_size))
        if ids is not None:
            for chunk in chunked(sorted(set(ids)), self.chunk_size):
                yield from self.client.search(resource_type, {**base, "_id": ",".join(chunk)})
            return
        if patients is not None and resource_type in _PATIENT_PARAM:
            name = _PATIENT_PARAM[resource_type]
            for chunk in chunked(sorted(set(patients)), self.chunk_size):
                refs = ",".join(f"Patient/{p}" for p in chunk)
                yield from self.client.search(resource_type, {**base, name: refs})
            return
        yield from self.client.search(resource_type, base)


def is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def open_source(text: str, settings: Any = None, client: SearchClient | None = None) -> Source:
    """`--source`: a http(s) URL is a FHIR server (read with the configured client), else a folder."""
    if is_url(text):
        if client is None:
            from adapter.fhir.client import FhirClient, client_for

            if settings is not None:  # the configured auth and TLS, pointed at --source
                client = client_for(settings.model_copy(update={"fhir_url": text.rstrip("/")}))
            else:
                client = FhirClient(text)
        return ServerSource(client)
    return FolderSource(Path(text))
