"""Test data for the FHIR tests: a roster of n subjects and their clinical resources (valid R4)."""

from __future__ import annotations

from adapter.ids import patient_id, stable_id
from adapter.study import StudyConfig

LOINC = "http://loinc.org"


def roster_csv(n: int) -> str:
    rows = ["subject_id,mrn,arm,enrolled_on,infused_on,sex,birth_date,weight_kg"]
    for i in range(1, n + 1):
        arm, infused = ("cell-therapy", "2019-07-10") if i % 2 else ("control", "")
        rows.append(f"P{i:03d},MRN9{i:03d},{arm},2019-07-01,{infused},{'F' if i % 3 else 'M'},1960-01-01,70")
    return "\n".join(rows) + "\n"


def clinical(study: StudyConfig, subject_ids: list[str]) -> list[dict]:
    """Per subject: 3 glucose Observations, a DiagnosticReport, a MedicationStatement, an AdverseEvent;
    one Provenance per subject naming its report and observations (as an ingested message would)."""
    out: list[dict] = []
    for sid in subject_ids:
        pref = {"reference": f"Patient/{patient_id(study.study.key, sid)}"}
        obs_ids = []
        for visit, value in (("BASELINE", 9.1), ("M1", 8.4), ("M3", 7.95)):
            oid = stable_id("obs", study.study.key, sid, visit)
            obs_ids.append(oid)
            out.append(
                {
                    "resourceType": "Observation",
                    "id": oid,
                    "status": "final",
                    "code": {"coding": [{"system": LOINC, "code": "14771-0"}]},
                    "subject": pref,
                    "effectiveDateTime": "2019-07-01T07:30:00+07:00",
                    "valueQuantity": {
                        "value": value,
                        "unit": "mmol/L",
                        "system": "http://unitsofmeasure.org",
                        "code": "mmol/L",
                    },
                }
            )
        dr = stable_id("dr", study.study.key, sid)
        out.append(
            {
                "resourceType": "DiagnosticReport",
                "id": dr,
                "status": "final",
                "code": {"text": "chemistry panel"},
                "subject": pref,
                "result": [{"reference": f"Observation/{o}"} for o in obs_ids],
            }
        )
        out.append(
            {
                "resourceType": "MedicationStatement",
                "id": stable_id("ms", study.study.key, sid),
                "status": "active",
                "medicationCodeableConcept": {"text": "metformin"},
                "subject": pref,
                "effectivePeriod": {"start": "2019-06-01"},
            }
        )
        out.append(
            {
                "resourceType": "AdverseEvent",
                "id": stable_id("ae", study.study.key, sid),
                "actuality": "actual",
                "subject": pref,
                "event": {"text": "headache"},
                "date": "2019-07-12",
            }
        )
        out.append(
            {
                "resourceType": "Provenance",
                "id": stable_id("prov", study.study.key, sid),
                "target": [{"reference": f"DiagnosticReport/{dr}"}]
                + [{"reference": f"Observation/{o}"} for o in obs_ids],
                "recorded": "2019-07-01T08:00:00+07:00",
                "agent": [{"who": {"display": "adapter"}}],
            }
        )
    return out
