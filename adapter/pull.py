"""`adapter pull`: the study's resources back from the FHIR server as NDJSON, one file per type.

Two ways, same output:
- search (default): the ResearchStudy by its official identifier (or its stable id), with protocol,
  sponsor and site included; the cohort Group; its ResearchSubjects with their Patients included; then
  per type the subjects' Observations, DiagnosticReports, MedicationStatements/-Administrations,
  AdverseEvents and Procedures, asking for `subject=Patient/a,Patient/b,...` in chunks; then the
  Provenance of all that (`Provenance?target.subject=...`, chunked the same way).
- `--bulk`: the study-level resources as above, the subjects' data by `Group/<cohort>/$export` (Bulk
  Data), the Provenance by search (it is outside the Patient compartment, so $export leaves it out).
Only the study's subjects' data is asked for. `--since` asks only what changed (`_lastUpdated=ge` /
`_since`) and merges it into the folder (newer version wins); without it the files are replaced by the
server's truth. Memory stays flat for large studies: resources are spooled to disk as they arrive and
only an index (id -> version, file offset) is kept, then each file is written sorted by id.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any, Protocol

from adapter.errors import ConfigError, ServerError
from adapter.fhir import bulk
from adapter.fhir.client import FhirClient, chunked, outcome_text
from adapter.ids import sha256_hex
from adapter.mapping.study import study_id
from adapter.mapping.subjects import group_id
from adapter.model import Resource
from adapter.ndjson import dumps, iter_file
from adapter.study import StudyConfig

log = logging.getLogger(__name__)

STUDY_TYPES = ("ResearchStudy", "PlanDefinition", "Organization", "Location", "Group")
SUBJECT_TYPES = ("ResearchSubject", "Patient")
# Searched per subject with `subject=`; all are in the Patient compartment, so $export has them too.
CLINICAL_TYPES = (
    "Observation",
    "DiagnosticReport",
    "MedicationStatement",
    "MedicationAdministration",
    "AdverseEvent",
    "Procedure",
)
PULLED_TYPES = (*STUDY_TYPES, *SUBJECT_TYPES, *CLINICAL_TYPES, "Provenance")
# Asked of $export; Provenance is fetched by search (see pull_provenance).
EXPORT_TYPES = (*SUBJECT_TYPES, *CLINICAL_TYPES)
STUDY_INCLUDES = ["ResearchStudy:protocol", "ResearchStudy:sponsor", "ResearchStudy:site"]


class Progress(Protocol):
    """Where the pull reports its progress (the CLI draws rich bars; the engine stays UI-free)."""

    def stage(self, label: str, total: int | None = None) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def note(self, text: str) -> None: ...


class NoProgress:
    def stage(self, label: str, total: int | None = None) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def note(self, text: str) -> None:
        pass


@dataclass
class PullResult:
    mode: str
    out: Path
    counts: dict[str, int] = field(default_factory=dict)  # resources written (or merged) per type
    files: dict[str, int] = field(default_factory=dict)  # resources each written file now holds
    subjects: int = 0
    since: str | None = None
    next_since: str | None = None  # give this as --since next time to get only later changes
    export_errors: list[str] = field(default_factory=list)
    requests: int = 0
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "out": str(self.out),
            "subjects": self.subjects,
            "resources": self.counts,
            "files": self.files,
            "since": self.since,
            "next_since": self.next_since,
            "export_errors": self.export_errors,
            "requests": self.requests,
            "seconds": round(self.seconds, 2),
        }


# -- instants --------------------------------------------------------------------------------------
def parse_since(text: str) -> datetime:
    """A `--since` value: a FHIR instant with an offset (`2024-05-01T08:00:00+07:00`, `...Z`) or a date
    (midnight UTC). A date-time without an offset is refused: whose midnight would it be?"""
    value = text.strip()
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(
            f"--since {text!r}: not a date (YYYY-MM-DD) or instant (YYYY-MM-DDThh:mm:ssZ)"
        ) from None
    if parsed.tzinfo is None:
        raise ConfigError(f"--since {text!r}: give a timezone offset (e.g. Z or +07:00)")
    return parsed


def format_instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _last_updated(resource: Resource) -> datetime | None:
    text = (resource.get("meta") or {}).get("lastUpdated")
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


# -- output ----------------------------------------------------------------------------------------
class Spool:
    """Resources of one type on their way to `<Type>.ndjson`: lines in a temporary file, an index in
    memory. Of two versions of one id, the later `meta.lastUpdated` wins (equal: the later one seen)."""

    def __init__(self, folder: Path, resource_type: str) -> None:
        self.resource_type = resource_type
        self._file: IO[bytes] = tempfile.TemporaryFile(  # noqa: SIM115 - lives as long as the spool
            dir=folder, prefix=f".{resource_type}."
        )
        self._index: dict[str, tuple[str, int, int]] = {}
        self.fresh: set[str] = set()  # ids added by this pull (not seeded from the folder)

    def add(self, resource: Resource, fresh: bool = True) -> None:
        line = dumps(resource).encode("utf-8")
        rid = str(resource["id"])
        updated = _last_updated(resource)
        key = format_instant(updated) if updated else ""
        old = self._index.get(rid)
        if old is not None and old[0] > key:
            return
        offset = self._file.seek(0, os.SEEK_END)
        self._file.write(line)
        self._index[rid] = (key, offset, len(line))
        if fresh:
            self.fresh.add(rid)

    def __len__(self) -> int:
        return len(self._index)

    def lines(self) -> Iterator[bytes]:
        """The resources sorted by id, one line each."""
        self._file.flush()
        for rid in sorted(self._index):
            _, offset, length = self._index[rid]
            self._file.seek(offset)
            yield self._file.read(length)

    def write(self, path: Path) -> None:
        """Replace `path` atomically with the spooled resources, sorted by id."""
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                for line in self.lines():
                    handle.write(line)
                    handle.write(b"\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        finally:
            self._file.close()


class Sink:
    """Everything a pull writes: one spool per type, the `--since` filter, the merge with the folder."""

    def __init__(self, out: Path, since: datetime | None) -> None:
        self.out = out
        self.since = since
        out.mkdir(parents=True, exist_ok=True)
        self._spools: dict[str, Spool] = {}

    def add(self, resource: Resource, allowed: Iterable[str] = PULLED_TYPES) -> bool:
        rtype = resource.get("resourceType", "")
        if rtype not in allowed or not resource.get("id"):
            return False
        if self.since is not None:
            updated = _last_updated(resource)
            if updated is not None and updated < self.since:
                return False
        spool = self._spools.get(rtype)
        if spool is None:
            spool = self._spools[rtype] = Spool(self.out, rtype)
            if self.since is not None:  # incremental: start from what the folder holds
                path = self.out / f"{rtype}.ndjson"
                if path.is_file():
                    for old in iter_file(path):
                        spool.add(old, fresh=False)
        spool.add(resource)
        return True

    def finish(self, types: Sequence[str]) -> tuple[dict[str, int], dict[str, int]]:
        """Write the files; a full pull writes every type in `types` (empty files clear stale data)."""
        counts: dict[str, int] = {}
        files: dict[str, int] = {}
        for rtype in types:
            spool = self._spools.pop(rtype, None)
            if spool is None:
                if self.since is not None:
                    continue
                spool = Spool(self.out, rtype)
            counts[rtype] = len(spool.fresh)
            files[rtype] = len(spool)
            spool.write(self.out / f"{rtype}.ndjson")
        return counts, files


# -- the study and its subjects -------------------------------------------------------------------
def _official_identifier(study: StudyConfig) -> tuple[str, str] | None:
    identifiers = study.study.identifiers
    chosen = next((i for i in identifiers if i.use == "official"), identifiers[0] if identifiers else None)
    return (chosen.system, chosen.value) if chosen else None


def find_study(client: FhirClient, study: StudyConfig, sink: Sink) -> tuple[str, str | None]:
    """Find the ResearchStudy (official identifier first, then its stable id); add it and the
    PlanDefinition, Organization and Location it references to the sink.
    Returns its id and the server's time of the search (the next `--since`)."""
    official = _official_identifier(study)
    queries = []
    if official:
        queries.append({"identifier": f"{official[0]}|{official[1]}"})
    queries.append({"_id": study_id(study)})
    for query in queries:
        server_time: str | None = None
        studies: list[Resource] = []
        included: list[Resource] = []
        for page in client.search_pages("ResearchStudy", {**query, "_include": STUDY_INCLUDES}):
            server_time = server_time or (page.get("meta") or {}).get("lastUpdated")
            for entry in page.get("entry", []):
                resource = entry.get("resource") or {}
                mode = (entry.get("search") or {}).get("mode", "match")
                (studies if mode == "match" else included).append(resource)
        if not studies:
            continue
        chosen = next((s for s in studies if s.get("id") == study_id(study)), studies[0])
        if len(studies) > 1:
            log.warning(
                "%d ResearchStudy resources carry the study's identifier; using %s",
                len(studies),
                chosen["id"],
            )
        sink.add(chosen)
        referenced = {r.get("reference") for r in [*chosen.get("protocol", []), *chosen.get("site", [])]}
        referenced.add((chosen.get("sponsor") or {}).get("reference"))
        for resource in included:
            if f"{resource.get('resourceType')}/{resource.get('id')}" in referenced:
                sink.add(resource)
        return str(chosen["id"]), server_time
    where = f"identifier {official[0]}|{official[1]} or " if official else ""
    raise ServerError(
        f"no ResearchStudy with {where}id {study_id(study)} on {client.base_url}: run `adapter study push`"
    )


def pull_subjects(client: FhirClient, research_study: str, sink: Sink, progress: Progress) -> list[str]:
    """The study's ResearchSubjects and their Patients (and Provenance about the subjects); returns the
    `Patient/<id>` references of the subjects, sorted."""
    progress.stage("ResearchSubject")
    patients: set[str] = set()
    query = {
        "study": f"ResearchStudy/{research_study}",
        "_include": "ResearchSubject:individual",
        "_revinclude": "Provenance:target",
    }
    for mode, resource in client.search_entries("ResearchSubject", query):
        if mode == "match" and resource.get("resourceType") == "ResearchSubject":
            ref = (resource.get("individual") or {}).get("reference")
            if ref and ref.startswith("Patient/"):
                patients.add(ref)
        sink.add(resource)
        progress.advance()
    return sorted(patients)


def pull_provenance(
    client: FhirClient,
    chunks: Sequence[Sequence[str]],
    sink: Sink,
    progress: Progress,
    lu: dict[str, str],
) -> None:
    """The Provenance that targets the given references (`Provenance?target=<refs>`, one query per
    chunk): the Patients in search mode (their data's Provenance comes by _revinclude), every exported
    resource in bulk mode (the Patient compartment leaves out a Provenance that targets an Observation,
    so $export does not carry it). Never the chained `target.subject`: slow on a large HAPI."""
    progress.stage("Provenance", len(chunks))
    for chunk in chunks:
        for resource in client.search("Provenance", {"target": ",".join(chunk), **lu}):
            sink.add(resource)
        progress.advance()


# -- search mode -----------------------------------------------------------------------------------
def pull_search(
    client: FhirClient,
    study: StudyConfig,
    out: Path,
    since: datetime | None = None,
    progress: Progress | None = None,
    ids_per_query: int = 50,
) -> PullResult:
    """Pull the study's resources by searches that follow `next` links (`_count` = client.page_size)."""
    progress = progress or NoProgress()
    started, requests_before = time.monotonic(), client.requests_sent
    client.require()
    sink = Sink(out, since)
    lu = {"_lastUpdated": f"ge{format_instant(since)}"} if since else {}
    research_study, server_time = find_study(client, study, sink)
    cohort = client.read("Group", group_id(study))
    if cohort is not None:
        sink.add(cohort)
    patients = pull_subjects(client, research_study, sink, progress)
    chunks = chunked(patients, ids_per_query)
    # Each page brings the Provenance of its resources (_revinclude): HAPI answers the chained
    # Provenance?target.subject=<patients> in about a minute per chunk of 50 subjects once it holds a
    # few hundred thousand resources (5,000 subjects: most of an hour), a _revinclude in milliseconds.
    revinclude = {"_revinclude": "Provenance:target"}
    for rtype in CLINICAL_TYPES:
        progress.stage(rtype, len(chunks))
        for chunk in chunks:
            for _mode, resource in client.search_entries(
                rtype, {"subject": ",".join(chunk), **lu, **revinclude}
            ):
                sink.add(resource)
            progress.advance()
    pull_provenance(client, chunks, sink, progress, lu)
    counts, files = sink.finish(PULLED_TYPES)
    return PullResult(
        mode="search",
        out=out,
        counts=counts,
        files=files,
        subjects=len(patients),
        since=format_instant(since) if since else None,
        next_since=server_time,
        requests=client.requests_sent - requests_before,
        seconds=time.monotonic() - started,
    )


# -- bulk mode -------------------------------------------------------------------------------------
def pull_bulk(
    client: FhirClient,
    study: StudyConfig,
    out: Path,
    since: datetime | None = None,
    progress: Progress | None = None,
    timeout: float = 3600.0,
    poll_cap: float = 10.0,
    ids_per_query: int = 50,
) -> PullResult:
    """Pull the study-level resources by search and the subjects' data by `Group/<cohort>/$export`."""
    progress = progress or NoProgress()
    started, requests_before = time.monotonic(), client.requests_sent
    client.require("export")
    sink = Sink(out, since)
    research_study, _ = find_study(client, study, sink)
    cohort_id = group_id(study)
    cohort = client.read("Group", cohort_id)
    if cohort is None:
        raise ServerError(
            f"no Group/{cohort_id} (the study's cohort) on {client.base_url}: run `adapter enroll` first, "
            "or pull without --bulk"
        )
    sink.add(cohort)
    params = {"_type": ",".join(EXPORT_TYPES)}
    if since:
        params["_since"] = format_instant(since)
    progress.stage("$export")
    status_url = bulk.kick_off(client, f"Group/{cohort_id}/$export", params)
    try:  # the job and its files of patient data are deleted on the server, whatever happens here
        manifest = bulk.wait_for_manifest(
            client, status_url, timeout=timeout, poll_cap=poll_cap, on_progress=progress.note
        )
        study_ref = f"ResearchStudy/{research_study}"
        targets: set[str] = set()  # what the subjects' Provenance can point at
        for file in manifest.output:
            progress.stage(f"download {file.type}", file.count)
            for resource in bulk.iter_file(client, file, manifest.requires_access_token):
                progress.advance()
                # A Patient may be in other studies: keep only this study's ResearchSubjects.
                if (
                    resource.get("resourceType") == "ResearchSubject"
                    and (resource.get("study") or {}).get("reference") != study_ref
                ):
                    continue
                sink.add(resource, (*EXPORT_TYPES, "Provenance"))
                if resource.get("resourceType") in CLINICAL_TYPES:
                    targets.add(f"{resource['resourceType']}/{resource.get('id')}")
        patients = sorted(
            str(m["entity"]["reference"])
            for m in cohort.get("member") or []
            if str((m.get("entity") or {}).get("reference", "")).startswith("Patient/")
        )
        lu = {"_lastUpdated": f"ge{format_instant(since)}"} if since else {}
        pull_provenance(client, chunked([*patients, *sorted(targets)], ids_per_query), sink, progress, lu)
        errors = []
        for file in manifest.error:
            for outcome in bulk.iter_file(client, file, manifest.requires_access_token):
                errors.append(outcome_text(outcome))
    finally:
        bulk.delete_export(client, status_url)
    counts, files = sink.finish(PULLED_TYPES)
    return PullResult(
        mode="bulk",
        out=out,
        counts=counts,
        files=files,
        subjects=len(patients),
        since=format_instant(since) if since else None,
        next_since=manifest.transaction_time or None,
        export_errors=errors,
        requests=client.requests_sent - requests_before,
        seconds=time.monotonic() - started,
    )


def fingerprint(folder: Path, types: Iterable[str] = PULLED_TYPES) -> dict[str, str]:
    """SHA-256 of each type's file with server bookkeeping (meta) removed: compares two pulls."""
    result = {}
    for rtype in types:
        path = folder / f"{rtype}.ndjson"
        if not path.is_file():
            continue
        lines = []
        for resource in iter_file(path):
            resource.pop("meta", None)
            lines.append(json.dumps(resource, sort_keys=True, ensure_ascii=False))
        result[rtype] = sha256_hex("\n".join(sorted(lines)).encode("utf-8"))
    return result
