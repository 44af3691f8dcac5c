"""Send converted resources to the FHIR server in transaction bundles, with a progress bar."""

from __future__ import annotations

from collections.abc import Sequence

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from adapter.cli_common import console
from adapter.fhir.client import FhirClient, TransactionResult
from adapter.model import Resource, supersedes

# Referenced resources first, so one bundle never points at something a later bundle creates.
_TYPE_ORDER = [
    "Organization",
    "Location",
    "PlanDefinition",
    "ResearchStudy",
    "Patient",
    "ResearchSubject",
    "Group",
    "Procedure",
    "Medication",
    "Observation",
    "DiagnosticReport",
    "MedicationStatement",
    "MedicationAdministration",
    "AdverseEvent",
    "Provenance",
]


def dependency_order(resources: Sequence[Resource]) -> list[Resource]:
    """Resources sorted so that targets of references come before what refers to them."""
    rank = {t: i for i, t in enumerate(_TYPE_ORDER)}
    return sorted(resources, key=lambda r: rank.get(r["resourceType"], len(rank)))


def dedupe(resources: Sequence[Resource]) -> list[Resource]:
    """One entry per Type/id (a transaction may not name the same resource twice): the version with the
    latest source time, the later arrival on a tie."""
    by_key: dict[str, Resource] = {}
    for resource in resources:
        key = f"{resource['resourceType']}/{resource['id']}"
        kept = by_key.get(key)
        if kept is None or supersedes(resource, kept):
            by_key[key] = resource
    return list(by_key.values())


def push(
    client: FhirClient, resources: Sequence[Resource], chunk_size: int = 200, label: str = "push"
) -> TransactionResult:
    ordered = dependency_order(dedupe(resources))
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=not console.is_terminal,
    ) as progress:
        task = progress.add_task(label, total=len(ordered))
        return client.transaction(ordered, chunk_size, on_chunk=lambda n: progress.advance(task, n))
