"""The protocol as FHIR R4: ResearchStudy with its sponsor, site and visit schedule (PlanDefinition).

Everything comes from StudyConfig (mappings/study.yaml). Order matters: referenced resources come first,
so one transaction bundle can create them all.
"""

from __future__ import annotations

from adapter.ids import reference, stable_id
from adapter.model import Resource
from adapter.study import StudyConfig

PHASE_SYSTEM = "http://terminology.hl7.org/CodeSystem/research-study-phase"
PURPOSE_SYSTEM = "http://terminology.hl7.org/CodeSystem/research-study-prim-purp-type"
OBJECTIVE_SYSTEM = "http://terminology.hl7.org/CodeSystem/research-study-objective-type"
PLAN_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/plan-definition-type"
UCUM = "http://unitsofmeasure.org"


def study_id(study: StudyConfig) -> str:
    return stable_id("study", study.study.key)


def plan_id(study: StudyConfig) -> str:
    return stable_id("plan", study.study.key)


def sponsor_id(study: StudyConfig) -> str:
    return stable_id("org", study.study.key, study.sponsor.id)


def site_id(study: StudyConfig) -> str:
    return stable_id("loc", study.study.key, study.site.id)


def _days(value: int) -> dict:
    return {"value": value, "unit": "d", "system": UCUM, "code": "d"}


def sponsor_resource(study: StudyConfig) -> Resource:
    org = study.sponsor
    resource: Resource = {
        "resourceType": "Organization",
        "id": sponsor_id(study),
        "identifier": [{"system": study.system("organization"), "value": org.id}],
        "active": True,
        "name": org.name,
    }
    if org.city or org.country:
        resource["address"] = [{k: v for k, v in (("city", org.city), ("country", org.country)) if v}]
    return resource


def site_resource(study: StudyConfig) -> Resource:
    site = study.site
    resource: Resource = {
        "resourceType": "Location",
        "id": site_id(study),
        "identifier": [{"system": study.system("location"), "value": site.id}],
        "status": "active",
        "name": site.name,
        "managingOrganization": reference("Organization", sponsor_id(study)),
    }
    if site.city or site.country:
        resource["address"] = {k: v for k, v in (("city", site.city), ("country", site.country)) if v}
    return resource


def plan_resource(study: StudyConfig) -> Resource:
    """The schedule of activities: one action per visit, its window as a timing range in study days."""
    actions = []
    for visit in study.visits:
        low, high = visit.window
        actions.append(
            {
                "id": visit.id,
                "title": visit.name,
                "description": f"Study day {visit.target_day} (window {low}..{high}); Day 1 = reference date",
                "code": [{"coding": [{"system": study.system("CodeSystem/visits"), "code": visit.id}]}],
                "timingRange": {"low": _days(low), "high": _days(high)},
            }
        )
    return {
        "resourceType": "PlanDefinition",
        "id": plan_id(study),
        "identifier": [{"system": study.system("plan"), "value": f"{study.study.key}-schedule"}],
        "title": f"{study.study.key} schedule of activities",
        "type": {"coding": [{"system": PLAN_TYPE_SYSTEM, "code": "clinical-protocol"}]},
        "status": "active",
        "action": actions,
    }


def research_study_resource(study: StudyConfig) -> Resource:
    info = study.study
    resource: Resource = {
        "resourceType": "ResearchStudy",
        "id": study_id(study),
        "identifier": [{"use": i.use, "system": i.system, "value": i.value} for i in info.identifiers],
        "title": info.title,
        "protocol": [reference("PlanDefinition", plan_id(study))],
        "status": info.status,
        "primaryPurposeType": {"coding": [{"system": PURPOSE_SYSTEM, "code": info.primary_purpose}]},
        "phase": {"coding": [{"system": PHASE_SYSTEM, "code": info.phase}]},
        "condition": [{"coding": [info.condition.as_fhir()]}],
        "keyword": [{"text": k} for k in info.keywords],
        "description": info.description,
        "sponsor": reference("Organization", sponsor_id(study)),
        "site": [reference("Location", site_id(study))],
        "arm": [
            {"name": a.id, "type": {"text": a.type}, "description": f"{a.name}: {a.description}"}
            for a in study.arms
        ],
        "objective": [
            {"name": o.name, "type": {"coding": [{"system": OBJECTIVE_SYSTEM, "code": o.type}]}}
            for o in study.outcomes
        ],
    }
    if not resource["keyword"]:
        del resource["keyword"]
    if info.start or info.end:
        resource["period"] = {k: v for k, v in (("start", info.start), ("end", info.end)) if v}
    return resource


def study_resources(study: StudyConfig) -> list[Resource]:
    """Organization, Location, PlanDefinition, ResearchStudy: what `adapter study push` sends."""
    return [
        sponsor_resource(study),
        site_resource(study),
        plan_resource(study),
        research_study_resource(study),
    ]
