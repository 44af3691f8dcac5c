"""The CRF adverse-event export -> AdverseEvent (R4), one per row, for both arms.

Columns (design page): `subject_id,term,onset,resolved,severity,serious,related,outcome`.

Where each fact goes (what endpoint extraction reads):
- `event.text` = the term as reported (always); `event.coding` SNOMED CT only where adverse-events.yaml has
  a verified code. An unknown term is converted with text only and the account says so.
- `date` = onset. The resolved date: extension `<system_base>/StructureDefinition/ae-resolved-date`
  (valueDateTime: a date, or a date-time when the CRF gave a time).
- `seriousness`, `severity`, `outcome`: the R4 codes. A CTCAE grade (1 mild, 2 moderate, >= 3 severe) is
  kept in extension `<system_base>/StructureDefinition/ae-ctcae-grade` (valueInteger).
- Causality (WHO-UMC, `related`): on EVERY AdverseEvent with a `related` value, in extension
  `<system_base>/StructureDefinition/ae-causality` (valueCodeableConcept, system
  http://terminology.hl7.org/CodeSystem/adverse-event-causality-assess, text = the CRF's term). "Related" =
  code Certain, Probably-Likely or Possible. For a subject who had the cell therapy, the same assessment is
  also in `suspectEntity[0].causality[0].assessment`, with `suspectEntity[0].instance` -> the subject's
  `cell-infusion` Procedure, or `bm-harvest` when adverse-events.yaml's rules say the term is about the
  aspiration/harvest site. Controls (and not-yet-infused subjects) have no procedure to suspect, and R4 needs
  `suspectEntity.instance`, so they carry no suspectEntity: the extension is the one place read for all.
- `study` -> ResearchStudy/<stable_id("study", study key)>; `subject` -> the study Patient.
Identity: study, subject, folded term, onset date and the row's occurrence number among rows with those keys.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from adapter.ae.terms import (
    CAUSALITY_DISPLAY,
    CAUSALITY_SYSTEM,
    OUTCOME_DISPLAY,
    OUTCOME_SYSTEM,
    SERIOUSNESS_DISPLAY,
    SERIOUSNESS_SYSTEM,
    SEVERITY_DISPLAY,
    SEVERITY_SYSTEM,
    SNOMED,
    AeVocabulary,
    VocabularyError,
    load_ae_vocabulary,
)
from adapter.converters import ConvertContext
from adapter.errors import InputError
from adapter.ids import patient_id, reference, stable_id
from adapter.mapping.intervention import has_intervention, procedure_id
from adapter.mapping.study import study_id
from adapter.meds.drugs import fold
from adapter.meds.rows import FieldError, Row, not_before, parse_date, read_rows
from adapter.model import Conversion, InputAccount, Resource
from adapter.roster import Subject

KIND = "ae"
REQUIRED = ("subject_id", "term", "onset", "resolved", "severity", "serious", "related", "outcome")
RESOLVED_EXTENSION = "StructureDefinition/ae-resolved-date"
GRADE_EXTENSION = "StructureDefinition/ae-ctcae-grade"
CAUSALITY_EXTENSION = "StructureDefinition/ae-causality"
UNKNOWN_TERM = "event: term not in adverse-events.yaml, coded as text only"


def convert_files(paths: Sequence[Path], ctx: ConvertContext) -> Conversion:
    """Convert CRF adverse-event CSV files; every row is accounted for, bad rows never stop the others."""
    vocabulary = load_ae_vocabulary(ctx.mappings_dir)
    result = Conversion()
    for path in paths:
        result.extend(convert_file(path, ctx, vocabulary))
    return result


def convert_file(path: Path, ctx: ConvertContext, vocabulary: AeVocabulary) -> Conversion:
    result = Conversion()
    try:
        rows = list(read_rows(path, REQUIRED))
    except InputError as exc:
        result.accounts.append(InputAccount(KIND, path.name, 0, "rejected", reason=str(exc)))
        return result
    seen: Counter[tuple[str, ...]] = Counter()
    for row in rows:
        account = InputAccount(KIND, path.name, row.line, "converted", message_type="csv")
        result.accounts.append(account)
        subject_id = row.get("subject_id")
        subject = ctx.roster.by_subject(subject_id) if subject_id else None
        if subject_id and subject is None:
            account.outcome = "not-enrolled"
            continue
        try:
            if subject is None:
                raise FieldError("subject_id", "empty")
            resource = adverse_event(row, subject, ctx, vocabulary, seen)
        except FieldError as exc:
            account.outcome = "rejected"
            account.reason = f"{path.name}:{row.line}: {exc}"
            continue
        if vocabulary.term(row.get("term")) is None:
            account.reason = UNKNOWN_TERM
        account.resources = [f"AdverseEvent/{resource['id']}"]
        result.resources.append(resource)
    return result


def _concept(system: str, code: str, display: str, text: str | None = None) -> dict[str, Any]:
    concept: dict[str, Any] = {"coding": [{"system": system, "code": code, "display": display}]}
    if text:
        concept["text"] = text
    return concept


def _coded(vocabulary_fn, row: Row, column: str):
    try:
        return vocabulary_fn(row.get(column)) if row.get(column) else None
    except VocabularyError as exc:
        raise FieldError(column, str(exc)) from None


def adverse_event(
    row: Row, subject: Subject, ctx: ConvertContext, vocabulary: AeVocabulary, seen: Counter[tuple[str, ...]]
) -> Resource:
    """One AdverseEvent from one CSV row; FieldError names the first bad field."""
    study = ctx.study
    key_study = study.study.key
    term = " ".join(row.get("term").split())
    if not term:
        raise FieldError("term", "empty")
    onset = parse_date(row.get("onset"), "onset", study.tz, partial=True)
    key = (key_study, subject.subject_id, fold(term), onset[:10])
    seen[key] += 1  # counted before the other checks, so a rejected row keeps its place in the numbering
    resolved = (
        parse_date(row.get("resolved"), "resolved", study.tz, partial=True) if row.get("resolved") else None
    )
    if resolved and not not_before(resolved, onset):
        raise FieldError("resolved", "before onset")
    severity = _coded(vocabulary.severity, row, "severity")
    seriousness = _coded(vocabulary.seriousness, row, "serious")
    causality = _coded(vocabulary.causality, row, "related")
    outcome = _coded(vocabulary.outcome, row, "outcome")

    resource: Resource = {"resourceType": "AdverseEvent", "id": stable_id("ae", *key, seen[key])}
    extensions: list[dict[str, Any]] = []
    if resolved:
        extensions.append({"url": study.system(RESOLVED_EXTENSION), "valueDateTime": resolved})
    if severity and severity.grade is not None:
        extensions.append({"url": study.system(GRADE_EXTENSION), "valueInteger": severity.grade})
    causality_concept = None
    if causality:
        causality_concept = _concept(
            CAUSALITY_SYSTEM, causality, CAUSALITY_DISPLAY[causality], row.get("related")
        )
        extensions.append(
            {"url": study.system(CAUSALITY_EXTENSION), "valueCodeableConcept": causality_concept}
        )
    if extensions:
        resource["extension"] = extensions
    resource["actuality"] = "actual"
    event: dict[str, Any] = {}
    entry = vocabulary.term(term)
    if entry and entry.snomed:
        event["coding"] = [{"system": SNOMED, "code": entry.snomed.code, "display": entry.snomed.display}]
    event["text"] = term
    resource["event"] = event
    resource["subject"] = reference("Patient", patient_id(key_study, subject.subject_id))
    resource["date"] = onset
    if seriousness:
        resource["seriousness"] = _concept(SERIOUSNESS_SYSTEM, seriousness, SERIOUSNESS_DISPLAY[seriousness])
    if severity:
        resource["severity"] = _concept(SEVERITY_SYSTEM, severity.code, SEVERITY_DISPLAY[severity.code])
    if outcome:
        resource["outcome"] = _concept(OUTCOME_SYSTEM, outcome, OUTCOME_DISPLAY[outcome])
    if has_intervention(subject, study):
        suspect: dict[str, Any] = {
            "instance": reference(
                "Procedure", procedure_id(key_study, subject.subject_id, vocabulary.suspect(term))
            )
        }
        if causality_concept:
            suspect["causality"] = [{"assessment": causality_concept}]
        resource["suspectEntity"] = [suspect]
    resource["study"] = [reference("ResearchStudy", study_id(study))]
    return resource
