"""Medication endpoints from MedicationStatements: total daily insulin (IU/d, IU/kg/d) and the
antidiabetic regimen at each visit's target date.

A statement is active on a date when start <= date <= end (no end = still taken). INSDOSE sums dose x
times per day over the insulin statements active on the target date (Day 1 for the baseline); a subject on
no insulin has INSDOSE 0. INSDOSEKG divides by the latest body weight on or before that date.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from adapter.endpoints.records import MedStatement, Weight


@dataclass(frozen=True)
class DoseValue:
    value: float | None
    source_ids: tuple[str, ...] = ()
    reason: str | None = None


def active_on(statement: MedStatement, day: date) -> bool | None:
    """Whether the drug was being taken on `day`; None when the statement has no start date."""
    if statement.start is None:
        return None
    return statement.start <= day and (statement.end is None or day <= statement.end)


def insulin_daily_dose(meds: Iterable[MedStatement], day: date) -> DoseValue:
    """Total daily insulin on `day` (IU/d); unknown (with the reason) if an active statement lacks a dose."""
    total = 0.0
    ids: list[str] = []
    for m in sorted((m for m in meds if m.drug_class == "insulin"), key=lambda m: m.resource_id):
        active = active_on(m, day)
        if active is False:
            continue
        ref = f"MedicationStatement/{m.resource_id}"
        if active is None:
            return DoseValue(None, (ref,), "an insulin statement has no start date")
        if m.daily_dose is None:
            return DoseValue(None, (ref,), f"insulin daily dose unknown: {m.dose_problem or 'no dose'}")
        total += m.daily_dose
        ids.append(ref)
    return DoseValue(total, tuple(ids))


def latest_weight(weights: Iterable[Weight], day: date) -> Weight | None:
    """The latest body weight on or before `day` (same day: the larger id, for determinism)."""
    eligible = [w for w in weights if w.day <= day]
    return max(eligible, key=lambda w: (w.day, w.resource_id)) if eligible else None


def dose_per_kg(dose: DoseValue, weight: Weight | None, day: date) -> DoseValue:
    if dose.value is None:
        return dose
    if dose.value == 0:  # no insulin is 0 IU/kg/d whatever the weight
        return DoseValue(0.0, dose.source_ids)
    if weight is None:
        return DoseValue(None, dose.source_ids, f"no body weight on or before {day.isoformat()}")
    return DoseValue(dose.value / weight.kg, (*dose.source_ids, f"Observation/{weight.resource_id}"))


@dataclass(frozen=True)
class Regimen:
    """What a subject took on a date: the antidiabetic drugs active then, each with its daily dose."""

    drugs: tuple[MedStatement, ...]

    @property
    def agents(self) -> int:
        """Number of distinct antidiabetic agents: distinct ATC codes of the active ingredients (a fixed
        combination counts each component; a drug without ATC counts once, by its name)."""
        return len({a for m in self.drugs for a in (m.agents or (m.drug.casefold(),))})


def regimen_on(meds: Sequence[MedStatement], day: date) -> Regimen:
    drugs = [m for m in meds if m.drug_class != "other" and active_on(m, day)]
    return Regimen(tuple(sorted(drugs, key=lambda m: (m.drug_class, m.drug.casefold(), m.resource_id))))
