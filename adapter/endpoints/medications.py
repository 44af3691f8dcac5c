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
    """Whether the drug was being taken on `day`; None when that cannot be told (no start date and no
    end date before `day`)."""
    if statement.start is None:
        return False if statement.end is not None and statement.end < day else None
    return statement.start <= day and (statement.end is None or day <= statement.end)


def current_statements(
    meds: Iterable[MedStatement], day: date, priority: Sequence[str] = ()
) -> list[MedStatement]:
    """The statements that count on `day` (see the module docstring), by resource id: per drug, those of
    the preferred channel that started last; several started that same day (a morning and an evening
    dose written as two statements) all count."""
    rank = {source: i for i, source in enumerate(priority)}
    best: dict[str, list[MedStatement]] = {}
    for m in meds:
        if not active_on(m, day):
            continue
        kept = best.get(m.identity)
        if kept is None or _precedence(m, rank) > _precedence(kept[0], rank):
            best[m.identity] = [m]
        elif _precedence(m, rank) == _precedence(kept[0], rank):
            kept.append(m)
    return sorted((m for group in best.values() for m in group), key=lambda m: m.resource_id)


def _precedence(m: MedStatement, rank: dict[str, int]) -> tuple[int, str, date]:
    """Higher wins: the channel first in the priority list (then by name), then the later start."""
    assert m.start is not None
    return (-rank.get(m.source or "", len(rank)), "" if m.source is None else _invert(m.source), m.start)


def _invert(text: str) -> str:
    """A string that sorts in the reverse order of `text` (so the alphabetically first channel wins)."""
    return "".join(chr(0x10FFFF - ord(ch)) for ch in text)


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
