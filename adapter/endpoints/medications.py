"""Medication endpoints from MedicationStatements: total daily insulin (IU/d, IU/kg/d) and the
antidiabetic regimen at each visit's target date.

A statement is active on a date when start <= date <= end (no end = still taken). INSDOSE sums dose x
times per day over the insulin statements active on the target date (Day 1 for the baseline); a subject on
no insulin has INSDOSE 0. INSDOSEKG divides by the latest body weight on or before that date.

One drug counts once per date. The same course often reaches the server twice: the HIS export and the
pharmacy's RDE messages, or the monthly BHYT claims whose refills overlap, or two dose periods that share
their boundary day. So, per drug (its identity across channels: the site drug code, else ATC, else the
name) and date: only the channel first in `source_priority` among those that have it active counts, and
within that channel the statement started last (the current order or refill). Different drugs add up.
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


def current_statements(
    meds: Iterable[MedStatement], day: date, priority: Sequence[str] = ()
) -> list[MedStatement]:
    """The statements that count on `day`: one per drug (see the module docstring), by resource id."""
    rank = {source: i for i, source in enumerate(priority)}
    best: dict[str, MedStatement] = {}
    for m in meds:
        if not active_on(m, day):
            continue
        key = (rank.get(m.source or "", len(rank)), m.source or "")
        kept = best.get(m.identity)
        if kept is None:
            best[m.identity] = m
            continue
        kept_key = (rank.get(kept.source or "", len(rank)), kept.source or "")
        if key < kept_key or (key == kept_key and (m.start, m.resource_id) > (kept.start, kept.resource_id)):
            best[m.identity] = m
    return sorted(best.values(), key=lambda m: m.resource_id)


def insulin_daily_dose(meds: Iterable[MedStatement], day: date, priority: Sequence[str] = ()) -> DoseValue:
    """Total daily insulin on `day` (IU/d); unknown (with the reason) if an active statement lacks a dose."""
    insulin = [m for m in meds if m.drug_class == "insulin"]
    for m in sorted(insulin, key=lambda m: m.resource_id):
        if active_on(m, day) is None:
            return DoseValue(
                None, (f"MedicationStatement/{m.resource_id}",), "an insulin statement has no start date"
            )
    total = 0.0
    ids: list[str] = []
    for m in current_statements(insulin, day, priority):
        ref = f"MedicationStatement/{m.resource_id}"
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


def regimen_on(meds: Sequence[MedStatement], day: date, priority: Sequence[str] = ()) -> Regimen:
    drugs = current_statements((m for m in meds if m.drug_class != "other"), day, priority)
    return Regimen(tuple(sorted(drugs, key=lambda m: (m.drug_class, m.drug.casefold(), m.resource_id))))
