"""HOMA1 indices from fasting glucose (mmol/L) and fasting insulin (uIU/mL) collected on the same day.

HOMA-IR = G x I / 22.5 and HOMA-%B = 20 x I / (G - 3.5) (Matthews et al., Diabetologia 1985;28:412-9).
%B is undefined when G <= 3.5 mmol/L. Values from insulin-treated subjects are flagged: exogenous insulin
makes the insulin assay (and so HOMA1) invalid. Each index is also a FHIR Observation with `derivedFrom`
pointing at its two inputs, with a deterministic id so writing it back is idempotent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from adapter.endpoints.config import HomaConfig
from adapter.endpoints.records import CENSORED_INPUT, Candidate, MedStatement
from adapter.ids import patient_id, reference, stable_id
from adapter.model import Resource
from adapter.study import StudyConfig

IR_DIVISOR = 22.5
BETA_FACTOR = 20.0
BETA_GLUCOSE_FLOOR = 3.5
INSULIN_TREATED = "insulin-treated"
UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def homa_ir(glucose: float, insulin: float) -> float:
    return glucose * insulin / IR_DIVISOR


def homa_beta(glucose: float, insulin: float) -> float | None:
    """HOMA-%B, or None when glucose <= 3.5 mmol/L (the formula's denominator is zero or negative)."""
    if glucose <= BETA_GLUCOSE_FLOOR:
        return None
    return BETA_FACTOR * insulin / (glucose - BETA_GLUCOSE_FLOOR)


@dataclass(frozen=True)
class HomaPair:
    """The glucose and insulin of one subject's day that an index was computed from."""

    subject_id: str
    day: date
    glucose: Candidate
    insulin: Candidate
    insulin_treated: bool


def insulin_treated_on(meds: Iterable[MedStatement], day: date) -> bool:
    """True when an insulin MedicationStatement is active on `day` (start <= day <= end, or ongoing)."""
    return any(
        m.drug_class == "insulin"
        and m.start is not None
        and m.start <= day
        and (m.end is None or day <= m.end)
        for m in meds
    )


def _latest(values: Sequence[Candidate]) -> Candidate:
    """Of several results on one day, the later one (time, then id: independent of input order)."""
    return max(values, key=lambda c: (c.stamp, c.key))


def pairs(
    subject_id: str,
    glucose: Sequence[Candidate],
    insulin: Sequence[Candidate],
    meds: Sequence[MedStatement],
) -> list[HomaPair]:
    """Every day with both a fasting glucose and a fasting insulin result (the later of each on that day)."""
    by_day: dict[date, tuple[list[Candidate], list[Candidate]]] = defaultdict(lambda: ([], []))
    for c in glucose:
        by_day[c.day][0].append(c)
    for c in insulin:
        by_day[c.day][1].append(c)
    out = []
    for day in sorted(by_day):
        g, i = by_day[day]
        if g and i:
            out.append(HomaPair(subject_id, day, _latest(g), _latest(i), insulin_treated_on(meds, day)))
    return out


def candidates(pair: HomaPair, config: HomaConfig) -> tuple[Candidate, Candidate]:
    """The HOMA-IR and HOMA-%B values of one pair, as window candidates."""
    g = pair.glucose.value
    i = pair.insulin.value
    assert g is not None and i is not None
    flags: list[str] = []
    if pair.glucose.censored or pair.insulin.censored:
        flags.append(CENSORED_INPUT)
    if pair.insulin_treated:
        flags.append(INSULIN_TREATED)
    ids = (*pair.glucose.source_ids, *pair.insulin.source_ids)
    later = pair.glucose if pair.glucose.stamp >= pair.insulin.stamp else pair.insulin
    beta = homa_beta(g, i)
    common = {"source_ids": ids, "flags": tuple(flags), "subject_id": pair.subject_id, "stamp": later.stamp}
    ir = Candidate(config.ir, pair.day, later.moment, homa_ir(g, i), **common)  # type: ignore[arg-type]
    b = Candidate(
        config.beta,
        pair.day,
        later.moment,
        beta,
        reason=None if beta is not None else "fasting glucose <= 3.5 mmol/L: HOMA-%B undefined",
        **common,  # type: ignore[arg-type]
    )
    return ir, b


def observation_id(study: StudyConfig, subject_id: str, param: str, day: date) -> str:
    """Business identity of a derived index: study, subject, parameter, day (a correction updates it)."""
    return stable_id("obs-derived", study.study.key, subject_id, param, day.isoformat())


def observation(study: StudyConfig, pair: HomaPair, value: Candidate, insulin_factor: float) -> Resource:
    """One HOMA index as an R4 Observation, `derivedFrom` its glucose and insulin Observations."""
    param = study.parameter(value.param)
    assert param is not None and value.value is not None
    if param.loinc:
        code = {"coding": [{"system": LOINC, "code": param.loinc[0].code, "display": param.loinc[0].display}]}
    else:
        assert param.code is not None
        code = {"coding": [param.code.as_fhir()]}
    code["text"] = param.name
    unit = param.unit
    formula = (
        "HOMA1-IR = fasting glucose (mmol/L) x fasting insulin (uIU/mL) / 22.5"
        if param.loinc
        else "HOMA1-%B = 20 x fasting insulin (uIU/mL) / (fasting glucose (mmol/L) - 3.5)"
    )
    notes = []
    if (pair.insulin.orig_unit or "").casefold() == "pmol/l":
        notes.append(f"Insulin reported in pmol/L, converted with {insulin_factor:g} pmol/L per uIU/mL.")
    if INSULIN_TREATED in value.flags:
        notes.append("Subject on insulin therapy that day: HOMA1 from insulin is not valid.")
    if CENSORED_INPUT in value.flags:
        notes.append("An input was reported with a comparator (censored); its limit was used.")
    resource: Resource = {
        "resourceType": "Observation",
        "id": observation_id(study, pair.subject_id, value.param, pair.day),
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": "laboratory"}]}],
        "code": code,
        "subject": reference("Patient", patient_id(study.study.key, pair.subject_id)),
        "effectiveDateTime": pair.day.isoformat(),
        "valueQuantity": {
            "value": round(value.value, 6),
            "unit": param.unit_label or unit,
            "system": UCUM,
            "code": unit,
        },
        "method": {"text": formula},
        "derivedFrom": [{"reference": ref} for ref in value.source_ids],
    }
    if notes:
        resource["note"] = [{"text": n} for n in notes]
    return resource
