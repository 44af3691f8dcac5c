"""The enrollment roster: the link from hospital MRN to study subject, and each subject's Day 1.

The roster is the only place MRNs meet subject ids. It stays in the state directory (`adapter enroll`
copies it there) and never leaves the hospital.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from adapter.errors import ConfigError, InputError
from adapter.study import StudyConfig

COLUMNS = ("subject_id", "mrn", "arm", "enrolled_on", "infused_on", "sex", "birth_date", "weight_kg")
_SEX = {
    "m": "male",
    "male": "male",
    "nam": "male",
    "f": "female",
    "female": "female",
    "nữ": "female",
    "nu": "female",
    "o": "other",
    "other": "other",
    "u": "unknown",
    "unknown": "unknown",
    "": "unknown",
}


@dataclass(frozen=True)
class Subject:
    subject_id: str
    mrn: str
    arm: str
    enrolled_on: date
    infused_on: date | None
    sex: str
    birth_date: date | None
    weight_kg: float | None
    line: int = 0

    def day1(self, study: StudyConfig) -> date | None:
        """The reference date (study Day 1) of this subject, per the arm's rule in the study config."""
        arm = study.arm(self.arm)
        if arm is None:
            return None
        return self.infused_on if arm.day1 == "infused_on" else self.enrolled_on


@dataclass
class Roster:
    subjects: list[Subject]
    errors: list[InputError] = field(default_factory=list)
    source: str = ""

    def __post_init__(self) -> None:
        self._by_mrn = {s.mrn: s for s in self.subjects}
        self._by_id = {s.subject_id: s for s in self.subjects}

    def by_mrn(self, mrn: str) -> Subject | None:
        return self._by_mrn.get(mrn.strip())

    def by_subject(self, subject_id: str) -> Subject | None:
        return self._by_id.get(subject_id.strip())

    def __iter__(self) -> Iterator[Subject]:
        return iter(self.subjects)

    def __len__(self) -> int:
        return len(self.subjects)


def _parse_date(value: str, column: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError as exc:
        raise ValueError(f"{column}: {value!r} is not an ISO 8601 date (YYYY-MM-DD)") from exc


def _parse_row(row: dict[str, str], study: StudyConfig) -> Subject:
    subject_id = (row.get("subject_id") or "").strip()
    mrn = (row.get("mrn") or "").strip()
    if not subject_id:
        raise ValueError("subject_id: empty")
    if not mrn:
        raise ValueError("mrn: empty")
    arm = (row.get("arm") or "").strip()
    arm_cfg = study.arm(arm)
    if arm_cfg is None:
        raise ValueError(f"arm: {arm!r} is not an arm of the study ({', '.join(a.id for a in study.arms)})")
    enrolled = _parse_date(row.get("enrolled_on") or "", "enrolled_on")
    infused_raw = (row.get("infused_on") or "").strip()
    infused = _parse_date(infused_raw, "infused_on") if infused_raw else None
    sex_raw = (row.get("sex") or "").strip().lower()
    if sex_raw not in _SEX:
        raise ValueError(f"sex: {row.get('sex')!r} is not one of M, F, male, female, other, unknown")
    birth_raw = (row.get("birth_date") or "").strip()
    birth = _parse_date(birth_raw, "birth_date") if birth_raw else None
    weight_raw = (row.get("weight_kg") or "").strip().replace(",", ".")
    weight = None
    if weight_raw:
        try:
            weight = float(weight_raw)
        except ValueError as exc:
            raise ValueError(f"weight_kg: {weight_raw!r} is not a number") from exc
        if not 20 <= weight <= 300:
            raise ValueError(f"weight_kg: {weight} kg is outside 20..300")
    return Subject(subject_id, mrn, arm, enrolled, infused, _SEX[sex_raw], birth, weight)


def parse_roster(text: str, study: StudyConfig, source: str = "roster") -> Roster:
    """Parse roster CSV text; bad rows are collected as errors naming source:line and field."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in ("subject_id", "mrn", "arm", "enrolled_on") if c not in header]
    if missing:
        raise ConfigError(f"{source}: roster header lacks column(s): {', '.join(missing)}")
    reader.fieldnames = header
    subjects: list[Subject] = []
    errors: list[InputError] = []
    seen_ids: set[str] = set()
    seen_mrns: set[str] = set()
    for row in reader:
        line = reader.line_num
        try:
            subject = _parse_row(row, study)
            if subject.subject_id in seen_ids:
                raise ValueError(f"subject_id: {subject.subject_id} appears twice")
            if subject.mrn in seen_mrns:
                raise ValueError("mrn: the same MRN appears on two rows")
        except ValueError as exc:
            errors.append(InputError(str(exc), f"{source}:{line}"))
            continue
        seen_ids.add(subject.subject_id)
        seen_mrns.add(subject.mrn)
        subjects.append(Subject(**{**subject.__dict__, "line": line}))
    return Roster(subjects, errors, source)


def load_roster(path: Path, study: StudyConfig) -> Roster:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read roster: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: roster is not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    return parse_roster(text, study, source=str(path))
