"""FHIR R4 MedicationStatement / MedicationAdministration from normalised medication facts.

Every medication input (HIS CSV, HL7 RDE/RAS, BHYT XML2) reduces a record to `MedicationFacts` and calls
`medication_statement()`, so the resources look the same whatever the source. What endpoint extraction
relies on (INSDOSE): `medicationCodeableConcept.coding` carries the ATC code (insulins A10A*), `dosage[0].
doseAndRate[0].doseQuantity` the dose in UCUM (`[IU]` for insulin), `dosage[0].timing.repeat.frequency` the
times per day (period 1 d), `effectivePeriod` start/end (no end = still taking it).

A fixed-dose combination has no verified code of its own: its components' codings (ATC, RxNorm) are listed
in the extension `<system_base>/StructureDefinition/medication-component` (valueCodeableConcept, one per
component), so drug classes stay computable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from adapter.ids import patient_id, reference, stable_id
from adapter.meds.dose import Dose
from adapter.meds.drugs import ATC_SYSTEM, RXNORM_SYSTEM, DrugEntry, DrugMap, DrugMatch
from adapter.model import Resource
from adapter.study import StudyConfig

COMPONENT_EXTENSION = "StructureDefinition/medication-component"
SOURCE_EXTENSION = "StructureDefinition/medication-source"
DRUG_CODESYSTEM = "CodeSystem/drugs"


@dataclass(frozen=True)
class MedicationFacts:
    """One prescription line (or administration), normalised, with nothing source-specific left.

    `identity` are the source record keys the resource id is derived from (never an MRN in clear): the same
    record re-imported, or corrected, must give the same identity. `start`/`end` are FHIR date/dateTime
    strings; `text` is the dosage as the source wrote it.
    """

    subject_id: str
    drug: DrugMatch
    original_name: str
    identity: Sequence[str]
    dose: Dose | None = None
    times_per_day: int | None = None
    route_text: str | None = None
    start: str | None = None
    end: str | None = None
    text: str | None = None
    status: str | None = None  # default: completed when `end` is given, else active
    last_updated: str | None = None
    source_kind: str | None = None  # e.g. "his-csv", "hl7-rde", "bhyt-xml2": recorded in an extension
    note: list[str] = field(default_factory=list)


def _coding(system: str, code: str, display: str | None) -> dict[str, str]:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def entry_codings(entry: DrugEntry) -> list[dict[str, str]]:
    """The external codings of one entry: ATC then RxNorm (verified codes only, as listed in drugs.yaml)."""
    codings = []
    if entry.atc:
        codings.append(_coding(ATC_SYSTEM, entry.atc.code, entry.atc.display))
    if entry.rxnorm:
        codings.append(_coding(RXNORM_SYSTEM, entry.rxnorm.code, entry.rxnorm.display))
    return codings


def medication_concept(match: DrugMatch, original_name: str, study: StudyConfig) -> dict[str, Any]:
    """medicationCodeableConcept: ATC + RxNorm codings, the site's drug code, and the original local name."""
    codings: list[dict[str, str]] = []
    if match.entry is not None:
        codings.extend(entry_codings(match.entry))
        codings.append(_coding(study.system(DRUG_CODESYSTEM), match.entry.id, match.entry.display))
    elif match.system and match.code:
        codings.append(_coding(match.system, match.code, None))
    concept: dict[str, Any] = {}
    if codings:
        concept["coding"] = codings
    concept["text"] = original_name.strip() or (match.entry.display if match.entry else match.key)
    return concept


def _component_extensions(match: DrugMatch, drugs: DrugMap, study: StudyConfig) -> list[dict[str, Any]]:
    if match.entry is None or not match.entry.components:
        return []
    out = []
    for component in drugs.components(match.entry):
        concept = {"coding": entry_codings(component), "text": component.display}
        if not concept["coding"]:
            del concept["coding"]
        out.append({"url": study.system(COMPONENT_EXTENSION), "valueCodeableConcept": concept})
    return out


def dosage(facts: MedicationFacts) -> dict[str, Any]:
    """Dosage: text, timing (times per day), route (text: no verified route code), dose in UCUM."""
    out: dict[str, Any] = {}
    if facts.text:
        out["text"] = facts.text
    if facts.times_per_day:
        out["timing"] = {"repeat": {"frequency": facts.times_per_day, "period": 1, "periodUnit": "d"}}
    if facts.route_text:
        out["route"] = {"text": facts.route_text}
    if facts.dose is not None:
        out["doseAndRate"] = [{"doseQuantity": facts.dose.as_quantity()}]
    return out


def statement_id(identity: Sequence[str]) -> str:
    return stable_id("ms", *identity)


def medication_statement(facts: MedicationFacts, study: StudyConfig, drugs: DrugMap) -> Resource:
    """A MedicationStatement (R4) for one prescription line."""
    resource: Resource = {"resourceType": "MedicationStatement", "id": statement_id(facts.identity)}
    if facts.last_updated:
        resource["meta"] = {"lastUpdated": facts.last_updated}
    extensions = _component_extensions(facts.drug, drugs, study)
    if facts.source_kind:
        extensions.append({"url": study.system(SOURCE_EXTENSION), "valueCode": facts.source_kind})
    if extensions:
        resource["extension"] = extensions
    resource["status"] = facts.status or ("completed" if facts.end else "active")
    resource["medicationCodeableConcept"] = medication_concept(facts.drug, facts.original_name, study)
    resource["subject"] = reference("Patient", patient_id(study.study.key, facts.subject_id))
    period = {k: v for k, v in (("start", facts.start), ("end", facts.end)) if v}
    if period:
        resource["effectivePeriod"] = period
    if facts.note:
        resource["note"] = [{"text": n} for n in facts.note]
    dose = dosage(facts)
    if dose:
        resource["dosage"] = [dose]
    return resource


def medication_administration(facts: MedicationFacts, study: StudyConfig, drugs: DrugMap) -> Resource:
    """A MedicationAdministration (R4) for one administration (HL7 RAS); `start` is when it was given."""
    resource: Resource = {"resourceType": "MedicationAdministration", "id": stable_id("ma", *facts.identity)}
    if facts.last_updated:
        resource["meta"] = {"lastUpdated": facts.last_updated}
    extensions = _component_extensions(facts.drug, drugs, study)
    if facts.source_kind:
        extensions.append({"url": study.system(SOURCE_EXTENSION), "valueCode": facts.source_kind})
    if extensions:
        resource["extension"] = extensions
    resource["status"] = facts.status or "completed"
    resource["medicationCodeableConcept"] = medication_concept(facts.drug, facts.original_name, study)
    resource["subject"] = reference("Patient", patient_id(study.study.key, facts.subject_id))
    if facts.start and facts.end:
        resource["effectivePeriod"] = {"start": facts.start, "end": facts.end}
    elif facts.start:
        resource["effectiveDateTime"] = facts.start
    if facts.note:
        resource["note"] = [{"text": n} for n in facts.note]
    dose: dict[str, Any] = {}
    if facts.text:
        dose["text"] = facts.text
    if facts.route_text:
        dose["route"] = {"text": facts.route_text}
    if facts.dose is not None:
        dose["dose"] = facts.dose.as_quantity()
    if dose:
        resource["dosage"] = dose
    return resource
