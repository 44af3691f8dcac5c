"""The cell-therapy intervention as FHIR R4: bone-marrow harvest and cell infusion Procedures, body weight.

For a subject of an arm with `intervention: true` and an `infused_on` date, two Procedures:
- `bm-harvest` (autologous bone-marrow aspiration for BM-MNC), performed on `harvested_on` if the roster has
  that column, else on the infusion day;
- `cell-infusion` (IV BM-MNC + UC-MSC), performed on `infused_on`: this is Day 1 for endpoint extraction.
Both are coded in the site's own CodeSystem `<system_base>/CodeSystem/procedures` (no SNOMED procedure code
is verified in terminology.md). The infusion records the planned UC-MSC dose per kg (study
`cell_dose_per_kg`) and the total cells (dose x roster weight), each as an extension with a UCUM quantity:
  `<system_base>/StructureDefinition/cell-dose-per-kg`: valueQuantity {unit "cells/kg", code "{cells}/kg"}
  `<system_base>/StructureDefinition/cell-total`: valueQuantity {unit "cells", code "{cells}"}
and the same in words in `note`. For every subject with `weight_kg`, a body-weight Observation (LOINC
29463-7, kg, vital-signs) dated `enrolled_on`.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from adapter.ids import patient_id, reference, stable_id
from adapter.model import Resource
from adapter.roster import Subject
from adapter.study import StudyConfig

UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
PROCEDURE_CODESYSTEM = "CodeSystem/procedures"
DOSE_PER_KG_EXTENSION = "StructureDefinition/cell-dose-per-kg"
TOTAL_CELLS_EXTENSION = "StructureDefinition/cell-total"

HARVEST = "bm-harvest"
INFUSION = "cell-infusion"
PROCEDURE_DISPLAY = {
    HARVEST: "Bone marrow harvest (autologous, for bone-marrow mononuclear cells)",
    INFUSION: "Intravenous infusion of BM-MNC and UC-MSC",
}


def procedure_id(study_key: str, subject_id: str, kind: str) -> str:
    """The id of a subject's `bm-harvest` or `cell-infusion` Procedure (AEs reference it as suspectEntity)."""
    if kind not in PROCEDURE_DISPLAY:
        raise ValueError(f"unknown procedure kind {kind!r}; known: {', '.join(PROCEDURE_DISPLAY)}")
    return stable_id("proc", study_key, subject_id, kind)


def weight_observation_id(study_key: str, subject_id: str, on: date) -> str:
    return stable_id("obs-weight", study_key, subject_id, on.isoformat())


def has_intervention(subject: Subject, study: StudyConfig) -> bool:
    """Whether the subject has (had) the cell therapy: an intervention arm and an infusion date."""
    arm = study.arm(subject.arm)
    return bool(arm and arm.intervention and subject.infused_on)


def intervention_resources(subject: Subject, study: StudyConfig) -> list[Resource]:
    """The subject's harvest and infusion Procedures (cell-therapy, infused) and body weight Observation."""
    resources: list[Resource] = []
    if has_intervention(subject, study):
        assert subject.infused_on is not None
        harvested_on = getattr(subject, "harvested_on", None) or subject.infused_on
        resources.append(_procedure(subject, study, HARVEST, harvested_on))
        resources.append(_procedure(subject, study, INFUSION, subject.infused_on))
    if subject.weight_kg is not None:
        resources.append(weight_observation(subject, study))
    return resources


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _cell_dose(subject: Subject, study: StudyConfig) -> tuple[list[dict[str, Any]], str] | None:
    if study.cell_dose_per_kg is None:
        return None
    per_kg = Decimal(str(study.cell_dose_per_kg))
    extensions: list[dict[str, Any]] = [
        {
            "url": study.system(DOSE_PER_KG_EXTENSION),
            "valueQuantity": {
                "value": _number(per_kg),
                "unit": "cells/kg",
                "system": UCUM,
                "code": "{cells}/kg",
            },
        }
    ]
    note = f"Planned UC-MSC dose {per_kg:.4g} cells/kg"
    if subject.weight_kg is None:
        return extensions, note + "; total cells not computed (no body weight in the roster)."
    weight = Decimal(str(subject.weight_kg))
    total = per_kg * weight
    extensions.append(
        {
            "url": study.system(TOTAL_CELLS_EXTENSION),
            "valueQuantity": {"value": _number(total), "unit": "cells", "system": UCUM, "code": "{cells}"},
        }
    )
    return extensions, note + f" x {weight} kg = {total:.4g} cells in total."


def _procedure(subject: Subject, study: StudyConfig, kind: str, on: date) -> Resource:
    key = study.study.key
    resource: Resource = {"resourceType": "Procedure", "id": procedure_id(key, subject.subject_id, kind)}
    dose = _cell_dose(subject, study) if kind == INFUSION else None
    if dose:
        resource["extension"] = dose[0]
    resource["status"] = "completed"
    resource["code"] = {
        "coding": [
            {"system": study.system(PROCEDURE_CODESYSTEM), "code": kind, "display": PROCEDURE_DISPLAY[kind]}
        ],
        "text": PROCEDURE_DISPLAY[kind],
    }
    resource["subject"] = reference("Patient", patient_id(key, subject.subject_id))
    resource["performedDateTime"] = on.isoformat()
    resource["reasonCode"] = [{"coding": [study.study.condition.as_fhir()]}]
    if dose:
        resource["note"] = [{"text": dose[1]}]
    return resource


def weight_observation(subject: Subject, study: StudyConfig) -> Resource:
    """Body weight (LOINC 29463-7, kg) from the roster, effective on the enrollment date."""
    assert subject.weight_kg is not None
    key = study.study.key
    weight = Decimal(str(subject.weight_kg))
    return {
        "resourceType": "Observation",
        "id": weight_observation_id(key, subject.subject_id, subject.enrolled_on),
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                        "display": "Vital Signs",
                    }
                ]
            }
        ],
        "code": {
            "coding": [{"system": LOINC, "code": "29463-7", "display": "Body weight"}],
            "text": "Body weight",
        },
        "subject": reference("Patient", patient_id(key, subject.subject_id)),
        "effectiveDateTime": subject.enrolled_on.isoformat(),
        "valueQuantity": {"value": _number(weight), "unit": "kg", "system": UCUM, "code": "kg"},
    }
