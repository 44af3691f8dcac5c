"""Enrolled subjects as FHIR R4: pseudonymised Patient, ResearchSubject, the cohort Group, intervention.

Pseudonymised by default (design page, "Privacy"): Patient carries the study subject id, sex and birth
year only. Identified mode (a hospital-internal server) adds the MRN as an identifier.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path

from adapter.converters import ConvertContext
from adapter.errors import ConfigError
from adapter.ids import patient_id, reference, research_subject_id, stable_id
from adapter.mapping.study import study_id, study_resources
from adapter.model import Conversion, InputAccount, Resource
from adapter.roster import Roster, Subject, load_roster
from adapter.study import StudyConfig


def group_id(study: StudyConfig) -> str:
    return stable_id("group", study.study.key)


def patient_resource(subject: Subject, study: StudyConfig, identified: bool = False) -> Resource:
    identifiers = [{"use": "usual", "system": study.system("subject-id"), "value": subject.subject_id}]
    if identified:
        identifiers.append({"use": "official", "system": study.system("mrn"), "value": subject.mrn})
    resource: Resource = {
        "resourceType": "Patient",
        "id": patient_id(study.study.key, subject.subject_id),
        "identifier": identifiers,
        "gender": subject.sex,
    }
    if subject.birth_date:
        resource["birthDate"] = f"{subject.birth_date.year:04d}"
    return resource


def research_subject_resource(subject: Subject, study: StudyConfig) -> Resource:
    return {
        "resourceType": "ResearchSubject",
        "id": research_subject_id(study.study.key, subject.subject_id),
        "identifier": [{"system": study.system("subject-id"), "value": subject.subject_id}],
        "status": "on-study",
        "period": {"start": subject.enrolled_on.isoformat()},
        "study": reference("ResearchStudy", study_id(study)),
        "individual": reference("Patient", patient_id(study.study.key, subject.subject_id)),
        "assignedArm": subject.arm,
        "actualArm": subject.arm,
    }


def group_resource(subjects: Sequence[Subject], study: StudyConfig) -> Resource:
    """The actual cohort: lets `pull --bulk` export exactly the study's patients (Group/[id]/$export)."""
    members = sorted(subjects, key=lambda s: s.subject_id)
    return {
        "resourceType": "Group",
        "id": group_id(study),
        "identifier": [{"system": study.system("group"), "value": f"{study.study.key}-enrolled"}],
        "type": "person",
        "actual": True,
        "name": f"{study.study.key} enrolled subjects",
        "quantity": len(members),
        "member": [
            {
                "entity": reference("Patient", patient_id(study.study.key, s.subject_id)),
                "period": {"start": s.enrolled_on.isoformat()},
            }
            for s in members
        ],
    }


def _intervention(subject: Subject, study: StudyConfig) -> list[Resource]:
    """Infusion/harvest Procedures and body weight, when the intervention mapping is installed."""
    try:
        module = importlib.import_module("adapter.mapping.intervention")
    except ModuleNotFoundError:
        return []
    return module.intervention_resources(subject, study)


def subject_resources(roster: Roster, study: StudyConfig, identified: bool = False) -> list[Resource]:
    """Per subject: Patient, ResearchSubject, intervention resources; then the Group of them all."""
    out: list[Resource] = []
    for subject in roster:
        out.append(patient_resource(subject, study, identified))
        out.append(research_subject_resource(subject, study))
        out.extend(_intervention(subject, study))
    if len(roster):
        out.append(group_resource(list(roster), study))
    return out


def roster_conversion(roster: Roster, study: StudyConfig, identified: bool = False) -> Conversion:
    """The study and its subjects, with an account line per roster row (rejected rows named)."""
    conversion = Conversion(resources=study_resources(study) + subject_resources(roster, study, identified))
    source = Path(roster.source).name if roster.source else "roster"
    by_subject: dict[str, list[str]] = {}
    for resource in conversion.resources:
        subject_ref = (resource.get("individual") or resource.get("subject") or {}).get("reference")
        if resource["resourceType"] == "Patient":
            subject_ref = f"Patient/{resource['id']}"
        if subject_ref:
            by_subject.setdefault(subject_ref, []).append(f"{resource['resourceType']}/{resource['id']}")
    for subject in roster:
        ref = f"Patient/{patient_id(study.study.key, subject.subject_id)}"
        conversion.accounts.append(
            InputAccount(
                kind="roster",
                source=source,
                index=subject.line,
                outcome="converted",
                resources=by_subject.get(ref, []),
            )
        )
    for error in roster.errors:
        line = int(str(error.source).rsplit(":", 1)[-1]) if error.source else 0
        conversion.accounts.append(
            InputAccount(kind="roster", source=source, index=line, outcome="rejected", reason=error.reason)
        )
    return conversion


def convert_roster_files(paths: Sequence[Path], ctx: ConvertContext) -> Conversion:
    """Converter for kind `roster`: each file is a whole roster (the study comes with it)."""
    if not paths:
        raise ConfigError("convert roster needs a roster CSV file")
    result = Conversion()
    for path in paths:
        result.extend(roster_conversion(load_roster(path, ctx.study), ctx.study, ctx.identified))
    return result
